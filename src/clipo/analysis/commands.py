"""Subcommands of the analysis area: paper tables (here), figures, significance and report.

Each subcommand's handler imports its module lazily so ``clipo --help`` stays fast.
"""

from __future__ import annotations

import argparse


def _tables(args: argparse.Namespace) -> int:
    from clipo.analysis.tables import run_tables_command

    return run_tables_command(args.source, args.out, args.only)


def register(sub) -> None:
    p = sub.add_parser(
        "tables",
        help="render the paper's tables (Markdown, LaTeX, CSV) from the paper's numbers or a run set",
        description="Render Tables 1, 2, 3, 5-7 and 11-19 in the paper's layout from results/paper "
                    "('--source paper') or from every scores.csv under a results folder; mini-track run "
                    "sets get Table-1/3/13-shaped tables. Tables with missing runs are rendered partially "
                    "with a note naming the missing runs.",
    )
    p.add_argument("--source", required=True, metavar="paper|RESULTS_DIR",
                   help="'paper' for the transcribed numbers, or a folder searched for scores.csv files")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for tableN.{md,tex,csv}")
    p.add_argument("--only", default=None, metavar="table1,table2",
                   help="comma-separated table ids to render (default: every table the data supports)")
    p.set_defaults(handler=_tables)
