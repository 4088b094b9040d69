"""``clipo train`` and ``clipo evaluate``: one parser each for both backends, so a run is described the
same way everywhere.

The run axes (track, model, method, CLIPO variant, τ, G, seed) are shared; each backend reads the
options it needs and rejects the ones it cannot honour. Values not given come from clipo.methods.
The evaluation backend defaults to the one named in the run id.
"""

from __future__ import annotations

import argparse

from clipo.methods import CLIPO_VARIANTS, METHODS, TRACKS
from clipo.runs import BACKENDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="RL training of one run (mini: CPU trainer; verl: GPU cluster)")
    p.add_argument("--backend", choices=BACKENDS, required=True,
                   help="mini: the CPU trainer (track mini); verl: verl on GPUs (the other tracks)")
    p.add_argument("--track", choices=sorted(TRACKS), required=True,
                   help="I: Qwen2.5-3B on GSM8K; II: Qwen2.5-7B on MATH; small: one-GPU Track I; mini: CPU")
    p.add_argument("--model", help="short model name (run id) — defaults to the track's model")
    p.add_argument("--model-path", help="folder or hub id of the initial policy (overrides the default)")
    p.add_argument("--method", choices=sorted(METHODS), required=True,
                   help="policy-optimisation method; its loss and settings come from clipo.methods")
    p.add_argument("--clipo", choices=CLIPO_VARIANTS, default="none", help="CLIPO variant (default: none)")
    p.add_argument("--tau", type=float, help="contrastive temperature τ (default: the track's)")
    p.add_argument("--group-size", type=int, help="rollouts per prompt G (default: the track's)")
    p.add_argument("--lam", type=float, help="λ of the contrastive reward (default: per loss)")
    p.add_argument("--head-output-size", type=int, help="contrastive head output size d")
    p.add_argument("--head-kind", choices=("linear", "mlp"), help="contrastive head (default linear)")
    p.add_argument("--reference-eps", type=float, help="released-code numerics compatibility (default 0)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every random stream: sampling, prompt order, head init (default 0)")
    p.add_argument("--data-dir", default="data", help="folder with the dataset files (clipo data ...)")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl, embeddings, final model)")
    p.add_argument("--steps", type=int, help="number of RL steps (mini default: the track's; verl: total_training_steps)")
    p.add_argument("--head-warmup-steps", type=int, help="steps that train only the head (policy frozen)")
    p.add_argument("--checkpoint-every", type=int, help="mini: checkpoint interval in steps")
    p.add_argument("--test-freq", type=int,
                   help="mini: validate every N steps and before the first (-1: never; default the track's)")
    p.add_argument("--fixed-head", action="store_true", default=None,
                   help="CLIPO-fixed ablation for any loss: the head keeps its random initialisation")
    p.add_argument("--train-batch-size", type=int, help="mini: prompts per step (default: the track's)")
    p.add_argument("--mini-batch-size", type=int, help="mini: prompts per optimiser update")
    p.add_argument("--max-new-tokens", type=int, help="mini: response length limit (default: the track's)")
    p.add_argument("--lr", type=float, help="mini: policy learning rate (default: the track's)")
    p.add_argument("--output-gain-lr", type=float,
                   help="mini: learning rate of the final norm's gain, the output temperature (default: the track's)")
    p.add_argument("--threads", type=int, help="mini: torch CPU threads (default: torch's)")
    p.add_argument("--logger", metavar="NAME,...",
                   help="mini: console (progress), tensorboard (event files in OUT/tensorboard/); default console")
    p.add_argument("--restart-if-changed", action="store_true",
                   help="mini: when --out holds checkpoints of another configuration, base model or data (or "
                        "beyond --steps), move them to OUT/discarded/<n>/ and start afresh instead of failing")
    p.add_argument("--dry-run", action="store_true", help="verl: print the full command and exit")
    p.add_argument("overrides", nargs="*", help="verl: extra Hydra overrides appended verbatim")
    p.set_defaults(handler=_run)

    p = sub.add_parser("evaluate", help="Pass@1 of a model folder on the eval benchmarks of a run's track")
    p.add_argument("--backend", choices=BACKENDS,
                   help="mini: HF generate (CPU or one GPU); verl: SGLang's offline engine (default: the run id's)")
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
    p.add_argument("--batch-size", type=int,
                   help=f"sequences generated at once (default: mini {EVAL_BATCH_SIZE['mini']}, "
                        f"verl {EVAL_BATCH_SIZE['verl']} requests handed to the engine)")
    p.add_argument("--benchmarks", help="comma-separated subset of the track's benchmarks, e.g. Test,SYM")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling streams")
    p.add_argument("--device", help="mini: torch device (default: cuda if available, else cpu)")
    p.add_argument("--tp-size", type=int,
                   help=f"verl: tensor parallel size of the engine (default {ENGINE_DEFAULTS['tp_size']})")
    p.add_argument("--dp-size", type=int,
                   help=f"verl: data parallel replicas, e.g. a node's GPUs (default {ENGINE_DEFAULTS['dp_size']})")
    p.add_argument("--mem-fraction", type=float,
                   help=f"verl: GPU memory share of SGLang (default {ENGINE_DEFAULTS['mem_fraction']})")
    p.set_defaults(handler=_evaluate)


EVAL_BATCH_SIZE = {"mini": 128, "verl": 1024}
ENGINE_DEFAULTS = {"tp_size": 1, "dp_size": 1, "mem_fraction": 0.85}
"""SGLang engine options of ``--backend verl`` (the mini evaluator refuses them)."""
_EVAL_ONLY = {"mini": ("device",), "verl": tuple(ENGINE_DEFAULTS)}


def _run(args: argparse.Namespace) -> int:
    if args.backend == "mini":
        from clipo.mini.train import main as train_main
    else:
        if args.restart_if_changed:
            from clipo.errors import ConfigError

            raise ConfigError("--restart-if-changed is a mini option (verl resumes by its own checkpoints)")
        from clipo.verl.launch import main as train_main
    return train_main(args)


def _evaluate(args: argparse.Namespace) -> int:
    from clipo.errors import ConfigError
    from clipo.runs import RunSpec

    spec = RunSpec.parse(args.run_id)
    # the mini track is evaluated on the CPU whichever backend trained it (verl's merged final/ included)
    named = "mini" if spec.track == "mini" else spec.backend
    if args.backend is not None and args.backend != named:
        raise ConfigError(f"--backend {args.backend} but run id {args.run_id!r} names backend {named!r}")
    args.backend = named
    other = "verl" if named == "mini" else "mini"
    for name in _EVAL_ONLY[other]:
        if getattr(args, name) is not None:
            raise ConfigError(f"--{name.replace('_', '-')} is an option of --backend {other}, not {named}")
    if args.batch_size is None:
        args.batch_size = EVAL_BATCH_SIZE[named]
    if named == "mini":
        from clipo.evaluate import main
    else:
        from clipo.verl.evaluate import main

        for name, default in ENGINE_DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, default)
    return main(args)
