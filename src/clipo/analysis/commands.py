"""Subcommands of the analysis area: paper tables (here), figures, significance and report.

Each subcommand's handler imports its module lazily so ``clipo --help`` stays fast.
"""

from __future__ import annotations

import argparse

from clipo.analysis.registry import FIGURES

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
                               intervals=not args.no_intervals, track=args.track, runs=parse_runs(args.runs))


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


def _readme_results(args: argparse.Namespace) -> int:
    from clipo.analysis.report import run_readme_command

    return run_readme_command(args.results, args.readme)


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
        "figures", help="draw a run set's figures (PNG and PDF): Figures 3-5, reward, lucky, Δ forest, paper's Fig. 3",
        description="fig3: gains of InfoNCE/SupCon/SoftNN over GRPO with paired-bootstrap intervals where "
                    "eval/*/samples.parquet exist (eval/*/scores.csv, or the paper's numbers with --source "
                    "paper); fig4: t-SNE of head embeddings at the start and end of training "
                    "(runs/*/embeddings.parquet); fig5: positive, negative and cross pair cosines vs step "
                    "per variant and τ, seeds as bands (runs/*/metrics.jsonl); reward: training reward per "
                    "step per method and variant (runs/*/metrics.jsonl); lucky: lucky share of correct "
                    "rollouts and sound share per step, seeds as bands (runs/*/metrics.jsonl of the mini "
                    "trainer); forest: every CLIPO Δ with its bootstrap interval (eval/*/samples.parquet); "
                    "paperfig3: the paper's Figure 3 from "
                    "results/paper/scores.csv. A figure whose inputs are missing is skipped with a message "
                    "naming them, or fails with --only.",
    )
    p.add_argument("--results", required=True, metavar="DIR", help="run-set folder (runs/, eval/)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for the figures' .png and .pdf")
    p.add_argument("--only", default=None, metavar="fig3,reward,...",
                   help="comma-separated figures to draw: " + ", ".join(FIGURES))
    p.add_argument("--run", default=None, metavar="RUN_ID",
                   help="run for Figure 4 (default: a trained-head CLIPO run, InfoNCE first); for Figure 5, "
                        "the runs of its track, model, method and group size")
    p.add_argument("--source", default=None, choices=["paper"], help="Figure 3 from the paper's numbers")
    p.add_argument("--track", default=None,
                   help="track for Figure 3 and the forest plot (default: I, else II, else mini)")
    p.add_argument("--no-intervals", action="store_true",
                   help="Figure 3 without its bootstrap intervals (default: drawn where per-sample records exist)")
    p.add_argument("--runs", default=None, metavar="RUN_ID,...", help=RUNS_HELP)
    p.set_defaults(handler=_figures)

    p = sub.add_parser(
        "significance", help="is a Δ real? bootstrap CIs (per-sample records) and binomial SEs (paper)",
        description="Paired bootstrap 95% CI (problems resampled jointly for both runs) of every CLIPO-vs-"
                    "base Δ with per-sample records under RESULTS/eval/, the same for sound Pass@1 and the "
                    "lucky share of correct answers where the records are step-checked (mini track), and the "
                    "binomial standard error of every Δ of the folder's and the paper's scores. Writes "
                    "bootstrap.{csv,md}, process.{csv,md} and se_<source>.{csv,md}.",
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
        "report", help="assemble tables, figures and significance into one report (Markdown and HTML)",
        description="Writes a report from RESULTS/tables, RESULTS/figures and the significance tables: the "
                    "run set's settings and caveats, a summary, every Δ with its interval, the paper's Δ "
                    "against their standard errors, reproduced-vs-paper cells where the run set and the "
                    "paper share a cell; lists whatever is missing. Writes FILE (Markdown), FILE with .html "
                    "(self-contained, figures embedded) and summary.md (the summary alone, for the README) "
                    "beside it.",
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

    p = sub.add_parser(
        "readme-results", help="rewrite the README's results block from a run set's summary.md",
        description="Replaces the text between the README's '<!-- results:begin -->' and "
                    "'<!-- results:end -->' lines with RESULTS/summary.md (written by `clipo report`), so "
                    "the README quotes the same numbers as the report.",
    )
    p.add_argument("--results", required=True, metavar="DIR", help="run-set folder holding summary.md")
    p.add_argument("--readme", default="README.md", metavar="FILE", help="the README to rewrite (default: README.md)")
    p.set_defaults(handler=_readme_results)
