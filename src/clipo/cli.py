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


def main(argv: list[str] | None = None) -> int:
    from clipo.errors import ConfigError, SchemaError, UserError

    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
    except (ConfigError, SchemaError, UserError, FileNotFoundError) as e:
        print(f"clipo {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
