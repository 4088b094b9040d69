"""`clipo report`: one Markdown file with a run set's tables, figures, significance and paper comparison.

Everything in the report is read from files (``tables/*.md``, ``figures/*.png``, scores and samples)
or computed from them here; the prose paragraphs are generated from those numbers, never written by
hand. Missing inputs are listed at the top instead of failing the report.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from clipo.analysis import markdown, registry
from clipo.analysis.results import PAPER, load_scores, paper_scores_path
from clipo.analysis.stats import bootstrap_markdown, se_markdown, significance_tables, summarize_se
from clipo.data.registry import benchmark_groups
from clipo.records import atomic_write

FIGURES = tuple((f.stem, f.label, f.caption) for f in registry.FIGURES.values())
CELL_KEY = ["track", "model", "method", "clipo", "tau", "group_size", "benchmark"]


def _paper_name(paper) -> str:
    if str(paper) != PAPER:
        return str(paper)
    try:
        return os.path.relpath(paper_scores_path())
    except FileNotFoundError:
        return PAPER


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem)]


def _try_scores(source, runs: list[str] | None = None) -> pd.DataFrame | None:
    try:
        return load_scores(source, runs)
    except FileNotFoundError:
        if runs is not None:  # runs named explicitly must have their scores
            raise
        return None


# ------------------------------------------------------------------------------------------------
# Reproduced vs paper
# ------------------------------------------------------------------------------------------------
def _with_averages(cells: pd.DataFrame, value: str) -> pd.DataFrame:
    """Append the track's averages (unweighted means) for every run whose member benchmarks are all there."""
    rows = []
    run_key = [k for k in CELL_KEY if k != "benchmark"]
    for key, g in cells.groupby(run_key, dropna=False, sort=False):
        by_bench = g.set_index("benchmark")[value]
        for name, members in benchmark_groups(str(key[0])).items():
            if all(m in by_bench.index for m in members):
                rows.append({**dict(zip(run_key, key)), "benchmark": name, value: by_bench[members].mean()})
    return pd.concat([cells, pd.DataFrame(rows)], ignore_index=True) if rows else cells


def side_by_side(run_set: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Cells (track/model/method/clipo/τ/G/benchmark) scored both by the run set and the paper.

    The run set's seeds are averaged; for the paper the lowest seed is its main batch (the Track I τ
    sweep is a separate batch keyed seed 1, see results/paper/README.md).
    """

    def keyed(df):
        return df.assign(tau=df["tau"].round(6), track=df["track"].astype(str))

    ours = (
        keyed(run_set)
        .groupby(CELL_KEY, dropna=False)
        .agg(reproduced=("score", "mean"), seeds=("seed", "nunique"))
        .reset_index()
    )
    theirs = keyed(paper)
    theirs = theirs[theirs["seed"] == theirs.groupby(CELL_KEY[:-1], dropna=False)["seed"].transform("min")]
    theirs = theirs[CELL_KEY + ["score"]].rename(columns={"score": "paper"})
    ours = _with_averages(ours, "reproduced")
    ours["seeds"] = ours.groupby(CELL_KEY[:-1], dropna=False)["seeds"].transform("max")
    theirs = _with_averages(theirs, "paper")
    both = ours.merge(theirs, on=CELL_KEY, how="inner")
    both["difference"] = both["reproduced"] - both["paper"]
    return both[CELL_KEY + ["paper", "reproduced", "seeds", "difference"]]


def side_by_side_markdown(table: pd.DataFrame) -> str:
    return markdown.table(
        ["Track", "Model", "Method", "CLIPO", "τ", "G", "Benchmark", "Paper", "Reproduced", "Seeds",
         "Reproduced − paper"],
        "lllllrlrrrr",
        ([r.track, r.model, r.method, r.clipo, "" if pd.isna(r.tau) else f"{r.tau:g}", str(r.group_size),
          r.benchmark, f"{r.paper:.2f}", f"{r.reproduced:.2f}", str(int(r.seeds)), f"{r.difference:+.2f}"]
         for r in table.itertuples()),
    )


# ------------------------------------------------------------------------------------------------
# Prose generated from the numbers
# ------------------------------------------------------------------------------------------------
def paper_se_paragraph(table: pd.DataFrame) -> str:
    """What the binomial SEs say about the Δ the paper prints."""
    s = summarize_se(table)
    p = s["printed"]
    b, a = p["benchmark"], p["average"]
    if b["n"] + a["n"] == 0:
        return "No Δ row of the paper could be matched to its runs in the transcription."
    printed = table[table["printed_in"].fillna("").astype(str) != ""]
    ratio = (printed["delta"].abs() / printed["se_delta"]).replace([np.inf], np.nan)
    top = printed.loc[ratio.idxmax()]
    extra = s["all"]["benchmark"]["n"] - b["n"]
    where = str(top["printed_in"]).split(",")
    where = ("Tables " if len(where) > 1 else "Table ") + ", ".join(where)
    return (
        f"The paper prints {b['n']} per-benchmark Δ and {a['n']} Δ of averages (M/G/C-Avg., Avg.) for "
        f"{printed['pair'].nunique()} comparisons (CLIPO vs its base method, and the fixed head vs CLIPO). "
        f"{b['favourable']} of the {b['n']} per-benchmark Δ and {a['favourable']} of the {a['n']} average Δ "
        f"point the way the paper claims (CLIPO above its base, the fixed head below CLIPO). With the "
        f"conservative binomial standard error (problems are the sampling unit, "
        f"SE = sqrt(p(1−p)/n_problems) per score, the two runs independent), "
        f"**{b['exceeds_2se']} of {b['n']}** "
        f"per-benchmark Δ and **{a['exceeds_2se']} of {a['n']}** average Δ exceed two standard errors; "
        f"with the optimistic one (every sample independent, SE = sqrt(p(1−p)/(n_problems·k))) "
        f"{b['exceeds_2se_optimistic']} and {a['exceeds_2se_optimistic']}. The largest Δ relative to its "
        f"conservative SE is {top['delta']:+.2f} ± {top['se_delta']:.2f} on {top['benchmark']} "
        f"({top['pair']}, {where}).{_listing(printed[printed['exceeds_2se'].astype(bool)])} If CLIPO changed "
        f"nothing, about 1 Δ in 20 (≈{(b['n'] + a['n']) / 20:.0f} of these {b['n'] + a['n']}) would exceed "
        f"2 SE by "
        f"chance. Both runs answer the same problems, which the independent-runs SE ignores; per-problem "
        f"records (not published) would allow the sharper paired test used for our own runs. These errors "
        f"cover evaluation noise only: the paper "
        f"reports one training run per cell, so run-to-run variation of RL training, which these numbers "
        f"cannot see, would widen them further."
        + (
            f" The table below also lists {extra} per-benchmark Δ of runs the paper shows without a Δ row "
            f"(e.g. its τ sweep against GRPO); they are not counted above."
            if extra
            else ""
        )
    )


def _listing(rows: pd.DataFrame, limit: int = 10) -> str:
    if rows.empty:
        return ""
    shown = "; ".join(
        f"{r.benchmark} {r.delta:+.2f} ± {r.se_delta:.2f} ({r.pair})" for r in rows.head(limit).itertuples()
    )
    return f" Beyond 2 conservative SE: {shown}" + (" …" if len(rows) > limit else "") + "."


def bootstrap_paragraph(table: pd.DataFrame) -> str:
    """What the paired bootstrap says about the run set's own Δ."""
    if table.empty:
        return "No comparison with per-sample records on both sides was found."
    bench = table[~table["is_average"].astype(bool)]
    avg = table[table["is_average"].astype(bool)]
    sig = table[table["significant"].astype(bool)]
    text = (
        f"{table['pair'].nunique()} comparison(s) have per-sample records for both runs. The 95% paired "
        f"bootstrap CI excludes 0 for **{int(bench['significant'].sum())} of {len(bench)}** per-benchmark Δ "
        f"and **{int(avg['significant'].sum())} of {len(avg)}** average Δ. If no variant changed anything, "
        f"about 1 interval in 20 would exclude 0 by chance: ≈{len(bench) / 20:.1f} of the {len(bench)} "
        f"per-benchmark and ≈{len(avg) / 20:.1f} of the {len(avg)} average Δ (more often for the average "
        f"rows, which share their members' noise)."
    )
    pooled = table[table["seeds"].astype(str).str.contains(",")] if "seeds" in table else table.iloc[:0]
    if len(pooled):
        headline = pooled[pooled["benchmark"].isin(["Avg.", "Test", "Test-T1"])]
        text += " Seeds pooled (the interval resamples seeds as well as problems): " + ", ".join(
            f"{r.benchmark} {r.delta:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] ({r.pair})"
            for r in headline.itertuples()
        ) + "."
    if len(sig):
        shown = ", ".join(
            f"{r.benchmark} {r.delta:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] ({r.pair})"
            for r in sig.head(8).itertuples()
        )
        text += f" Those that do: {shown}" + (" …" if len(sig) > 8 else "") + "."
    return text


# ------------------------------------------------------------------------------------------------
# Assembly
# ------------------------------------------------------------------------------------------------
def build_report(
    results: str | Path, out: str | Path, paper: str | Path | None = PAPER, n_boot: int = 10_000,
    runs: list[str] | None = None, tables: list[str] | None = None, figures: list[str] | None = None,
) -> str:
    """The report's Markdown. ``runs``, ``tables`` (ids) and ``figures`` (fig3, ...) name what the
    workflow's config asks for; None takes whatever the folder holds (a stale table of an earlier
    config would then show up too)."""
    results, out = Path(results), Path(out)
    missing: list[str] = []
    parts: list[str] = []

    run_scores = _try_scores(results, runs)
    paper_scores = _try_scores(paper) if paper is not None else None
    if run_scores is None:
        missing.append(f"scores: no scores.csv under `{results}` (run `clipo evaluate`)")
    if paper is not None and paper_scores is None:
        missing.append(f"the paper's scores (`{paper}`)")

    # Tables
    if tables is None:
        table_files = sorted((results / "tables").glob("*.md"), key=_natural)
    else:
        table_files = [results / "tables" / f"{t}.md" for t in tables]
        missing += [f"{t.stem}: no `{t}`" for t in table_files if not t.is_file()]
        table_files = [t for t in table_files if t.is_file()]
    parts.append("## Tables\n")
    if table_files:
        for t in table_files:
            parts.append(t.read_text().strip() + "\n")
    else:
        missing.append(
            f"tables: nothing under `{results / 'tables'}` "
            f"(run `clipo tables --source {results} --out {results / 'tables'}`)"
        )
        parts.append("_No tables rendered._\n")

    # Figures
    parts.append("## Figures\n")
    drawn = 0
    for stem, name, caption in FIGURES:
        if figures is not None and stem.split("_")[0] not in figures:
            continue
        png = results / "figures" / f"{stem}.png"
        if png.exists():
            rel = os.path.relpath(png, out.parent)
            pdf = os.path.relpath(png.with_suffix(".pdf"), out.parent)
            parts.append(f"**{name}.** {caption} ([PDF]({pdf}))\n\n![{name}]({rel})\n")
            drawn += 1
        else:
            missing.append(
                f"{name}: no `{png}` (run `clipo figures --results {results} --out {results / 'figures'}`)"
            )
    if not drawn:
        parts.append("_No figures drawn._\n")

    # Is a Δ real?
    sig = significance_tables(results, paper, n_boot=n_boot, runs=runs)
    parts.append("## Is a Δ real?\n")
    parts.append("### This run set: paired bootstrap over problems\n")
    if len(sig["bootstrap"]):
        parts.append(
            "Δ = CLIPO minus its base method (same track, model, method, group size and seed; the "
            "fixed head minus learned-head CLIPO), in percentage points, on the problems both runs "
            f"answered; 95% percentile CI from {n_boot:,} resamples of problems, drawn jointly for both "
            "runs and for every benchmark of an average. The CI covers which problems a benchmark happens "
            "to hold and the sampling of answers; it does not cover run-to-run variation of training "
            "unless several seeds are pooled (rows with seeds '0,1,…': a two-stage bootstrap that also "
            "resamples the seeds).\n"
        )
        parts.append(bootstrap_paragraph(sig["bootstrap"]) + "\n")
        parts.append(bootstrap_markdown(sig["bootstrap"]))
    else:
        missing.append(
            f"per-sample records: no CLIPO run and its base run both have `{results}/eval/<run_id>/"
            "samples.parquet`, so no bootstrap CIs"
        )
        parts.append(bootstrap_markdown(sig["bootstrap"]))
    if "se_paper" in sig:
        parts.append("### The paper's numbers: binomial standard errors\n")
        parts.append(paper_se_paragraph(sig["se_paper"]) + "\n")
        parts.append(se_markdown(sig["se_paper"]))
    for name, table in sig.items():
        if name.startswith("se_") and name != "se_paper" and len(table):
            parts.append(f"### This run set ({name[3:]}): binomial standard errors\n")
            parts.append(
                "The same binomial standard errors for the run set's own scores, for comparison with "
                "the bootstrap above.\n"
            )
            parts.append(se_markdown(table))

    # Reproduced vs paper
    parts.append("## Reproduced vs paper\n")
    if run_scores is not None and paper_scores is not None:
        ours = run_scores[run_scores["source"] != "paper"]
        both = side_by_side(ours, paper_scores) if len(ours) else pd.DataFrame()
        if len(both):
            parts.append(
                f"{len(both)} cell(s) (same track, model, method, CLIPO variant, τ, G and benchmark) "
                f"are scored both here and in the paper; mean |reproduced − paper| = "
                f"{both['difference'].abs().mean():.2f} points.\n"
            )
            parts.append(side_by_side_markdown(both))
        elif ours.empty:
            parts.append("The results folder holds only the paper's numbers: nothing to compare.\n")
        else:
            mine = sorted(set(ours["track"].astype(str)))
            theirs = sorted(set(paper_scores["track"].astype(str)))
            why = (
                f"its track(s) {', '.join(mine)} are not the paper's ({', '.join(theirs)}); "
                "the mini track is "
                "a CPU-sized analogue that exercises the pipeline, not a reproduction of the paper's numbers"
                if not set(mine) & set(theirs)
                else "no run of it matches a run the paper reports"
            )
            parts.append(f"No overlap: the run set shares no cell with the paper — {why}.\n")
    else:
        parts.append("_Needs both the run set's and the paper's scores._\n")

    head = [
        f"# CLIPO results report: `{results.name}`\n",
        f"Generated by `clipo report` from `{results}`"
        + (f" and the paper's transcription (`{_paper_name(paper)}`)" if paper is not None else "")
        + ". Every number below is read from those files or computed from them.\n",
    ]
    if missing:
        head.append("**Missing inputs** (the sections below show what exists):\n")
        head.append("\n".join(f"- {m}" for m in missing) + "\n")
    return "\n".join(head + parts)


def run_report_command(results: str | Path, out: str | Path, paper: str | Path | None = PAPER,
                       runs: list[str] | None = None, tables: list[str] | None = None,
                       figures: list[str] | None = None) -> int:
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"--results {results}: no such folder")
    text = build_report(results, out, paper, runs=runs, tables=tables, figures=figures)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    print(f"report: {out}")
    return 0
