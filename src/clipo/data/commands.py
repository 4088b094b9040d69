"""``clipo data fetch`` (the paper's released files) and ``clipo data synth`` (the mini track's data)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def _fetch(args: argparse.Namespace) -> int:
    from clipo.data.fetch import fetch

    for item in fetch(args.track, args.dest, args.source, args.only, progress=not args.no_progress):
        print(f"{item.key}: {item.action} {item.path}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from clipo.data.synthetic import write_mini

    for split, path in write_mini(args.data_dir, args.seed, args.n_train, args.n_eval).items():
        print(f"mini {split}: {path}")
    return 0


def register(sub) -> None:
    from clipo.data.synthetic import N_EVAL, N_TRAIN

    data = sub.add_parser("data", help="fetch the paper's datasets or generate the mini track's")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    f = data_sub.add_parser("fetch", help="download (or import) and verify a track's released parquet files")
    f.add_argument("--track", required=True, choices=("I", "II"), help="paper track whose files to fetch")
    f.add_argument("--dest", required=True, type=Path, help="data folder; files go to DEST/train, DEST/test")
    f.add_argument("--from", dest="source", type=Path, metavar="LOCALDIR",
                   help="import a local copy instead of downloading "
                        "(LOCALDIR/test/... or LOCALDIR/data/test/...)")
    f.add_argument("--only", type=_keys, metavar="KEY,...", help="only these registry keys (e.g. gsm8k,gsm_p1)")
    f.add_argument("--no-progress", action="store_true", help="no download progress bar")
    f.set_defaults(handler=_fetch)

    s = data_sub.add_parser("synth", help="generate the mini track's synthetic splits (deterministic by seed)")
    s.add_argument("--data-dir", required=True, type=Path, help="data folder; files go to DATA_DIR/mini")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--n-train", type=int, default=N_TRAIN, help=f"training problems (default {N_TRAIN})")
    s.add_argument("--n-eval", type=int, default=N_EVAL, help=f"problems per evaluation split (default {N_EVAL})")
    s.set_defaults(handler=_synth)
