"""``clipo train`` and ``clipo evaluate``: one parser each for both backends, so a run is described the
same way everywhere.

The run axes (track, model, method, CLIPO variant, τ, G, seed) are shared; each backend reads the
options it needs and rejects the ones it cannot honour. Values not given come from clipo.methods.
The evaluation backend defaults to the one named in the run id.
"""

from __future__ import annotations

import argparse

from clipo.runs import BACKENDS, add_train_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="RL training of one run (mini: CPU trainer; verl: GPU cluster)")
    add_train_arguments(p)
    p.add_argument("--restart-if-changed", action="store_true",
                   help="mini: when --out holds checkpoints of another configuration, base model or data (or "
                        "beyond --steps), move them to OUT/discarded/<n>/ and start afresh instead of failing")
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
