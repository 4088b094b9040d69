"""Subcommand `clipo sft`: the mini track's base model."""

from __future__ import annotations

import argparse

from clipo.methods import MiniSFT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sft", help="train the mini track's base model (tokenizer + tiny Qwen2, SFT)")
    p.add_argument("--data-dir", required=True, help="folder holding mini/train.parquet (clipo data synth)")
    p.add_argument("--out", required=True, help="output HF folder, e.g. results/mini/base-model")
    p.add_argument("--steps", type=int, help=f"optimiser steps (default {MiniSFT.steps})")
    p.add_argument("--batch-size", type=int, help=f"sequences per step (default {MiniSFT.batch_size})")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {MiniSFT.lr})")
    p.add_argument("--bare-answer-share", type=float, help="share of demonstrations cut to their bare answer "
                   f"(default {MiniSFT.bare_answer_share})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the model init, batch order and bare-answer rows (default 0)")
    p.add_argument("--stop-after", type=int,
                   help="stop after this many total steps with a checkpoint (train in chunks); re-run continues")
    p.set_defaults(handler=_sft)


def _sft(args: argparse.Namespace) -> int:
    # Imported when the subcommand runs: clipo.mini.sft loads torch and transformers, which would slow
    # every `clipo` start-up (and --help) by seconds.
    from clipo.mini.sft import main

    return main(args)
