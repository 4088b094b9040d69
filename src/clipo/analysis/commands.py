"""Subcommands of the analysis area: paper tables (here), figures, significance and report.

Each subcommand's handler imports its module lazily so ``clipo --help`` stays fast.
"""

from __future__ import annotations

import argparse

RUNS_HELP = ("comma-separated run ids to read (the workflow passes its config's runs); default: every run "
             "under the folder, including runs an earlier config left there")


def _ids(text: str | None) -> list[str] | None:
    """A comma-separated list option; 'none' is the empty list (a config with no table or figure)."""
    if text is None:
        return None
    return [] if text.strip() == "none" else [t.strip() for t in text.split(",") if t.strip()]


def _tables(args: argparse.Namespace) -> int:
    from clipo.analysis.results import parse_runs
    from clipo.analysis.tables import run_tables_command

    return run_tables_command(args.source, args.out, args.only, runs=parse_runs(args.runs))


def _figures(args: argparse.Namespace) -> int:
    from clipo.analysis.figures import run_figures_command
    from clipo.analysis.results import parse_runs

    return run_figures_command(args.results, args.out, only=args.only, run=args.run, source=args.source,
                               error_bars=args.error_bars, track=args.track, runs=parse_runs(args.runs))


def _significance(args: argparse.Namespace) -> int:
    from clipo.analysis.results import parse_runs
    from clipo.analysis.stats import run_significance_command

    return run_significance_command(args.results, args.out, paper=None if args.paper == "none" else args.paper,
                                    n_boot=args.n_boot, seed=args.seed, runs=parse_runs(args.runs))


def _report(args: argparse.Namespace) -> int:
    from clipo.analysis.report import run_report_command
    from clipo.analysis.results import parse_runs

    return run_report_command(args.results, args.out, paper=None if args.paper == "none" else args.paper,
                              runs=parse_runs(args.runs), tables=_ids(args.tables), figures=_ids(args.figures))


def register(sub) -> None:
    p = sub.add_parser(
        "tables",
        help="render the paper's tables (Markdown, LaTeX, CSV) from the paper's numbers or a run set",
        description="Render Tables 1, 2, 3, 5-7 and 11-19 in the paper's layout from results/paper "
                    "('--source paper') or from every scores.csv under a results folder; mini-track run "
                    "sets get Table-1/3/13-shaped tables. Tables with missing runs are rendered partially "
                    "with a note naming the missing runs.",
    )
    p.add_argument("--runs", default=None, metavar="RUN_ID,...", help=RUNS_HELP + " (needs a folder --source)")
    p.add_argument("--source", required=True, metavar="paper|RESULTS_DIR",
                   help="'paper' for the transcribed numbers, or a folder searched for scores.csv files")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for tableN.{md,tex,csv}")
    p.add_argument("--only", default=None, metavar="table1,table2",
                   help="comma-separated table ids to render (default: every table the data supports)")
    p.set_defaults(handler=_tables)

    p = sub.add_parser(
        "figures", help="draw the paper's Figures 3-5 (PNG and PDF) from a run set",
        description="Figure 3: gains of InfoNCE/SupCon/SoftNN over GRPO (eval/*/scores.csv, or the paper's "
                    "numbers with --source paper); Figure 4: t-SNE of head embeddings at the start and end of "
                    "training (runs/*/embeddings.parquet); Figure 5: positive-pair cosine vs step per τ "
                    "(runs/*/metrics.jsonl). A figure whose inputs are missing is skipped with a message, or "
                    "fails with --only.",
    )
    p.add_argument("--results", required=True, metavar="DIR", help="run-set folder (runs/, eval/)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for fig3/4/5 .png and .pdf")
    p.add_argument("--only", default=None, metavar="fig3|fig4|fig5", help="comma-separated figures to draw")
    p.add_argument("--run", default=None, metavar="RUN_ID",
                   help="run for Figure 4 (default: a trained-head CLIPO run, InfoNCE first); for Figure 5, its τ family")
    p.add_argument("--source", default=None, choices=["paper"], help="Figure 3 from the paper's numbers")
    p.add_argument("--track", default=None, help="track for Figure 3 (default: I, else II, else mini)")
    p.add_argument("--error-bars", action="store_true",
                   help="Figure 3 error bars: paired bootstrap 95%% CI from eval/*/samples.parquet")
    p.add_argument("--runs", default=None, metavar="RUN_ID,...", help=RUNS_HELP)
    p.set_defaults(handler=_figures)

    p = sub.add_parser(
        "significance", help="is a Δ real? bootstrap CIs (per-sample records) and binomial SEs (paper)",
        description="Paired bootstrap 95% CI (problems resampled jointly for both runs) of every CLIPO-vs-"
                    "base Δ with per-sample records under RESULTS/eval/, and the binomial standard error of "
                    "every Δ of the folder's and the paper's scores. Writes bootstrap.{csv,md} and "
                    "se_<source>.{csv,md}.",
    )
    p.add_argument("--results", required=True, metavar="DIR", help="run-set folder (or results/paper)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--paper", default="paper", metavar="paper|FILE|none",
                   help="the paper's scores to add an SE table for ('none' to leave out)")
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    p.add_argument("--runs", default=None, metavar="RUN_ID,...", help=RUNS_HELP)
    p.set_defaults(handler=_significance)

    p = sub.add_parser(
        "report", help="assemble tables, figures and significance into one Markdown report",
        description="Writes a Markdown report from RESULTS/tables, RESULTS/figures and the significance "
                    "tables, with reproduced-vs-paper cells side by side where the run set and the paper "
                    "share a cell; lists whatever is missing.",
    )
    p.add_argument("--results", required=True, metavar="DIR", help="run-set folder")
    p.add_argument("--out", required=True, metavar="FILE", help="report path, e.g. DIR/report.md")
    p.add_argument("--paper", default="paper", metavar="paper|FILE|none", help="the paper's scores")
    p.add_argument("--runs", default=None, metavar="RUN_ID,...", help=RUNS_HELP)
    p.add_argument("--tables", default=None, metavar="table1,...",
                   help="table ids to include from RESULTS/tables, 'none' for none (default: every .md there)")
    p.add_argument("--figures", default=None, metavar="fig3,...",
                   help="figures to include from RESULTS/figures, 'none' for none (default: every one drawn)")
    p.set_defaults(handler=_report)
