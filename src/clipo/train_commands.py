"""``clipo train``: one parser for both backends, so a run is described the same way everywhere.

The run axes (track, model, method, CLIPO variant, τ, G, seed) are shared; each backend reads the
options it needs and rejects the ones it cannot honour. Values not given come from clipo.methods.
"""

from __future__ import annotations

import argparse

from clipo.methods import CLIPO_VARIANTS, METHODS, TRACKS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="RL training of one run (mini: CPU trainer; verl: GPU cluster)")
    p.add_argument("--backend", choices=("mini", "verl"), required=True)
    p.add_argument("--track", choices=sorted(TRACKS), required=True)
    p.add_argument("--model", help="short model name (run id) — defaults to the track's model")
    p.add_argument("--model-path", help="folder or hub id of the initial policy (overrides the default)")
    p.add_argument("--method", choices=sorted(METHODS), required=True)
    p.add_argument("--clipo", choices=CLIPO_VARIANTS, default="none", help="CLIPO variant (default: none)")
    p.add_argument("--tau", type=float, help="contrastive temperature τ (default: the track's)")
    p.add_argument("--group-size", type=int, help="rollouts per prompt G (default: the track's)")
    p.add_argument("--lam", type=float, help="λ of the contrastive reward (default: per loss)")
    p.add_argument("--head-output-size", type=int, help="contrastive head output size d")
    p.add_argument("--head-kind", choices=("linear", "mlp"))
    p.add_argument("--reference-eps", type=float, help="released-code numerics compatibility (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default="data", help="folder with the dataset files (clipo data ...)")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl, embeddings, final model)")
    p.add_argument("--steps", type=int, help="number of RL steps (mini default: the track's; verl: total_training_steps)")
    p.add_argument("--head-warmup-steps", type=int, help="steps that train only the head (policy frozen)")
    p.add_argument("--checkpoint-every", type=int, help="mini: checkpoint interval in steps")
    p.add_argument("--fixed-head", action="store_true", default=None,
                   help="CLIPO-fixed ablation for any loss: the head keeps its random initialisation")
    p.add_argument("--train-batch-size", type=int, help="mini: prompts per step (default: the track's)")
    p.add_argument("--mini-batch-size", type=int, help="mini: prompts per optimiser update")
    p.add_argument("--max-new-tokens", type=int, help="mini: response length limit (default: the track's)")
    p.add_argument("--lr", type=float, help="mini: policy learning rate (default: the track's)")
    p.add_argument("--output-gain-lr", type=float,
                   help="mini: learning rate of the final norm's gain, the output temperature (default: the track's)")
    p.add_argument("--threads", type=int, help="mini: torch CPU threads (default: torch's)")
    p.add_argument("--dry-run", action="store_true", help="verl: print the full command and exit")
    p.add_argument("overrides", nargs="*", help="verl: extra Hydra overrides appended verbatim")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.backend == "mini":
        from clipo.mini.train import main as train_main
    else:
        from clipo.verl.launch import main as train_main
    return train_main(args)
