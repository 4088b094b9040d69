"""Subcommands `clipo sft` (mini base model) and `clipo evaluate` (any HF model folder)."""

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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-after", type=int,
                   help="stop after this many total steps with a checkpoint (train in chunks); re-run continues")
    p.set_defaults(handler=_sft)

    p = sub.add_parser("evaluate", help="Pass@1 of a model folder on the eval benchmarks of a run's track")
    p.add_argument("--model", required=True, help="HF model folder (base-model, runs/<run_id>/final, ...)")
    p.add_argument("--run-id", required=True, help="run id whose fields label the score rows (clipo.runs)")
    p.add_argument("--source", required=True, help="run-set name written to the 'source' column")
    p.add_argument("--data-dir", required=True, help="folder with the evaluation files")
    p.add_argument("--out", required=True, help="output folder for scores.csv and samples.parquet")
    p.add_argument("--n", type=int, help="samples per problem (default: the track's)")
    p.add_argument("--do-sample", action=argparse.BooleanOptionalAction, default=None,
                   help="sample instead of greedy decoding (default: the track's; temperature 0 = greedy)")
    p.add_argument("--temperature", type=float, help="sampling temperature (default: the track's)")
    p.add_argument("--top-p", type=float, help="nucleus sampling mass (default: the track's)")
    p.add_argument("--max-new-tokens", type=int, help="response length cap (default: the track's)")
    p.add_argument("--limit", type=int, help="evaluate only the first K problems of each benchmark")
    p.add_argument("--batch-size", type=int, default=256, help="sequences generated at once")
    p.add_argument("--benchmarks", help="comma-separated subset of the track's benchmarks, e.g. Test,SYM")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling streams")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(handler=_evaluate)


def _sft(args: argparse.Namespace) -> int:
    from clipo.mini.sft import main

    return main(args)


def _evaluate(args: argparse.Namespace) -> int:
    from clipo.evaluate import main

    return main(args)
