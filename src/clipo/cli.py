"""The ``clipo`` command: every Snakemake rule is one call of it.

Each area of the package contributes its subcommands through a ``register(subparsers)`` function in
its own ``commands`` module, listed in COMMAND_MODULES; heavy imports happen inside the handlers so
``clipo --help`` stays fast. User errors (ConfigError, SchemaError, ...) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "clipo.data.commands",  # data fetch, data synth
    "clipo.mini.commands",  # sft
    "clipo.commands",  # train, evaluate --backend mini|verl (one parser each, two backends)
    "clipo.analysis.commands",  # tables, figures, report, significance
    "clipo.doctor",  # doctor: preflight of a GPU node
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipo", description=__doc__.splitlines()[0])
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


def main(argv: list[str] | None = None) -> int:
    from clipo.errors import ConfigError, SchemaError, UserError
    from clipo.lock import RunFolderLocked

    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
    except (ConfigError, SchemaError, UserError, FileNotFoundError, RunFolderLocked) as e:
        print(f"clipo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, read-only or mistyped output folder: no traceback, the path named
        print(f"clipo {args.command}: error: {os_error_message(e)}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
