"""The ``clipo`` command: every Snakemake rule is one call of it.

Each area of the package contributes its subcommands through a ``register(subparsers)`` function in
its own ``commands`` module, listed in COMMAND_MODULES; heavy imports happen inside the handlers so
``clipo --help`` stays fast. User errors (ConfigError, SchemaError, ...) print one line and exit 2.
A command that succeeds ends with one line naming what it wrote and how long it took.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

COMMAND_MODULES = (
    "clipo.data.commands",  # data fetch, data synth
    "clipo.mini.commands",  # sft
    "clipo.commands",  # train, evaluate --backend mini|verl (one parser each, two backends)
    "clipo.analysis.commands",  # tables, figures, report, significance
    "clipo.doctor",  # doctor: preflight of a GPU node
)


def package_version() -> str:
    """The installed package's version (pyproject.toml), which results and bug reports should name."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clipo")
    except PackageNotFoundError:
        return "(version unknown: clipo is imported from a source tree, not installed; pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipo", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real missing dependency, not an area that is not built yet
                raise
            continue
        module.register(sub)
    return parser


def os_error_message(e: OSError) -> str:
    """One line for a filesystem error: the path, what went wrong and what to do."""
    import errno

    path = " → ".join(str(p) for p in (e.filename, e.filename2) if p is not None) or "(no path given)"
    advice = {
        errno.ENOSPC: "free space on that file system (or point the output elsewhere) and run the same "
                      "command again; interrupted training resumes from its last checkpoint",
        errno.EDQUOT: "the disk quota is full: free space and run the same command again",
        errno.EACCES: "the folder is not writable by you: fix its permissions or choose another output",
        errno.EPERM: "the folder is not writable by you: fix its permissions or choose another output",
        errno.EROFS: "that file system is read-only: choose an output folder on a writable one",
        errno.ENOTDIR: "a file is in the way where a folder is expected: move it or choose another path",
        errno.EEXIST: "a file is in the way where a folder is expected: move it or choose another path",
        errno.EISDIR: "a folder is in the way where a file is expected: move it or choose another path",
    }.get(e.errno, "check the path and run the same command again")
    return f"{path}: {e.strerror or e}; {advice}"


OUTPUT_OPTION = {
    "data fetch": "dest", "data synth": "data_dir", "sft": "out", "train": "out", "evaluate": "out",
    "tables": "out", "figures": "out", "significance": "out", "report": "out",
}
"""The option naming each command's output (file or folder); commands not listed write nothing."""
NAMES_SHOWN = 12
"""Changed entries of an output folder named in the closing line; the rest are counted."""
CLOCK_SLACK_S = 0.05
"""File times come from a coarser clock than time.time(): a file written at the very start may look older."""


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def command_name(args: argparse.Namespace) -> str:
    return " ".join(filter(None, (args.command, getattr(args, "data_command", None))))


def written_entries(folder: Path, since: float) -> list[str]:
    """Entries directly in ``folder`` created or changed since ``since`` (folders end in '/'), sorted;
    hidden ones (the run folder's lock) left out."""
    with os.scandir(folder) as entries:
        return sorted(e.name + "/" * e.is_dir(follow_symlinks=False) for e in entries
                      if not e.name.startswith(".") and e.stat(follow_symlinks=False).st_mtime >= since)


def closing_line(args: argparse.Namespace, started: float, seconds: float) -> str | None:
    """``clipo train: wrote runs/<id>/ (final/, metrics.jsonl, summary.json) in 112 s``; None when the
    command writes nothing (doctor, a dry run)."""
    option = OUTPUT_OPTION.get(command_name(args))
    if option is None or getattr(args, "dry_run", False):
        return None
    head, took = f"clipo {command_name(args)}:", duration(seconds)
    if getattr(args, option) is None:
        return f"{head} done in {took}"
    path = Path(getattr(args, option))
    if path.is_file():
        return f"{head} wrote {path} in {took}"
    if not path.is_dir():
        return f"{head} nothing written to {path} in {took}"
    since = started - CLOCK_SLACK_S
    names = written_entries(path, since)
    while len(names) == 1 and names[0].endswith("/"):  # data synth: data/ → data/mini/ and its files
        path = path / names[0].rstrip("/")
        names = written_entries(path, since)
    if not names:
        return f"{head} {path}/ already up to date, nothing written ({took})"
    if len(names) > NAMES_SHOWN:
        names = [*names[:NAMES_SHOWN], f"and {len(names) - NAMES_SHOWN} more"]
    return f"{head} wrote {path}/ ({', '.join(names)}) in {took}"


def main(argv: list[str] | None = None) -> int:
    from clipo.errors import ConfigError, SchemaError, UserError
    from clipo.lock import RunFolderLocked

    if not sys.stderr.isatty():  # a log file: no carriage-return bars of transformers (weight loading/saving)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    started, clock = time.time(), time.perf_counter()
    try:
        result = args.handler(args)
    except (ConfigError, SchemaError, UserError, FileNotFoundError, RunFolderLocked) as e:
        print(f"clipo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, read-only or mistyped output folder: no traceback, the path named
        print(f"clipo {args.command}: error: {os_error_message(e)}", file=sys.stderr)
        return 1
    if not result and (line := closing_line(args, started, time.perf_counter() - clock)):
        print(line, file=sys.stderr)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
