"""`clipo report`: one Markdown file with a run set's tables, figures, significance and paper comparison.

Everything in the report is read from files (``tables/*.md``, ``figures/*.png``, scores and samples)
or computed from them here; the prose paragraphs are generated from those numbers, never written by
hand. Missing inputs are listed at the top instead of failing the report.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clipo.analysis import html, markdown, registry
from clipo.analysis.paper_tables import LOSS_LABELS
from clipo.analysis.results import PAPER, load_scores, paper_scores_path
from clipo.analysis.stats import (
    AVERAGES,
    bootstrap_markdown,
    se_markdown,
    short_labels,
    significance_tables,
    summarize_se,
    variant_name,
)
from clipo.data.registry import benchmark_groups, benchmarks
from clipo.errors import ConfigError, UserError
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
# The run set: what ran, read from its own records
# ------------------------------------------------------------------------------------------------
RUN_AXES = ["track", "model", "method", "clipo", "tau", "group_size"]


def run_name(method: str, clipo: str, tau=None, show_tau: bool = False) -> str:
    """'grpo', 'infonce', 0.05 → 'GRPO+InfoNCE τ=0.05' (τ only where ``show_tau``: the run set varies it)."""
    name = variant_name(method, clipo)
    return name + (f" τ={float(tau):g}" if show_tau and tau is not None and not pd.isna(tau) else "")


def _seeds(values) -> str:
    seeds = sorted({int(v) for v in values})
    return f"s{seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))


def _table_order(method: str, clipo: str, tau) -> tuple:
    """Sort key of a run in the tables' order: base model, then per method without CLIPO, the losses
    (InfoNCE, SupCon, SoftNN) by τ, the fixed heads last."""
    loss = clipo.removesuffix("-fixed")
    losses = ["none", *LOSS_LABELS]
    return (method != "base", method, clipo.endswith("-fixed"),
            losses.index(loss) if loss in losses else len(losses), loss, -1.0 if pd.isna(tau) else float(tau))


def _run_configs(scores: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(readable name, its rows over every seed) per configuration of the run set, in table order."""
    show_tau = scores["tau"].dropna().nunique() > 1
    varies = [c for c in ("track", "model", "group_size") if scores[c].astype(str).nunique() > 1]
    groups = sorted(scores.groupby(RUN_AXES, dropna=False, sort=False),
                    key=lambda kv: (*kv[1][varies[:2]].astype(str).iloc[0],
                                    _table_order(*kv[1][["method", "clipo", "tau"]].iloc[0])))

    def name(g) -> str:
        r = g.iloc[0]
        prefix = " ".join(str(r[c]) for c in varies if c != "group_size")
        text = run_name(r["method"], r["clipo"], r["tau"], show_tau)
        return (f"{prefix} " if prefix else "") + text + (f" G={r['group_size']}" if "group_size" in varies else "")

    return [(name(g), g) for _, g in groups]


def _run_records(results: Path, runs: list[str] | None) -> list[dict]:
    """run.json of every trained run read (``runs``, else every run folder of the run set)."""
    paths = (sorted(results.glob("runs/*/run.json")) if runs is None
             else [results / "runs" / r / "run.json" for r in runs])
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def _values(records: list[dict], *keys: str) -> list:
    """Distinct values of a nested key across run records, in first-seen order."""
    seen = []
    for rec in records:
        node = rec
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        if node is not None and node not in seen:
            seen.append(node)
    return seen


def _listed(values: list) -> str:
    return " / ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in values) if values else "?"


def _train_problems(records: list[dict]) -> str:
    counts = []
    for path in _values(records, "config", "train_file"):
        try:
            counts.append(f"{pq.read_metadata(path).num_rows:,} (`{path}`)")
        except (OSError, ValueError):
            counts.append(f"? (`{path}` not found from here)")
    return _listed(counts)


def run_set_facts(results: Path, scores: pd.DataFrame, runs: list[str] | None = None) -> dict[str, str]:
    """What ran, as text: tracks, runs, training settings (runs' run.json) and evaluation sizes (scores)."""
    ours = scores[scores["source"] != "paper"]
    tracks = sorted(ours["track"].astype(str).unique())
    records = _run_records(results, runs)
    params = _values(records, "derived", "policy_parameters")
    facts = {
        "tracks": ", ".join(tracks),
        "mini": "yes" if set(tracks) == {"mini"} else "",
        "size": _listed([f"{p / 1e6:.1f} M" for p in params]) + " parameters" if params else "size not recorded",
        "n_runs": str(len(ours.drop_duplicates(["track", "model", "method", "clipo", "tau", "group_size", "seed"]))),
        "runs": "; ".join(f"{name} ({_seeds(g['seed'])})" for name, g in _run_configs(ours)),
        "steps": _listed(_values(records, "config", "steps")) if records else "",
    }
    if records:
        facts["training"] = (
            f"{facts['steps']} steps per run, {_listed(_values(records, 'config', 'train_batch_size'))} prompts × "
            f"{_listed(_values(records, 'config', 'group_size'))} rollouts per step; policy of {facts['size']}; "
            f"training problems: {_train_problems(records)}")
    per_bench = ours.groupby("benchmark", sort=False)[["n_problems", "n_samples"]].agg(
        lambda v: _listed(sorted({int(x) for x in v})))
    order = ([b for b in benchmarks(tracks[0]) if b in per_bench.index] if len(tracks) == 1
             else list(per_bench.index))
    facts["evaluation"] = ", ".join(
        f"{b} {per_bench.loc[b, 'n_problems']} × {per_bench.loc[b, 'n_samples']}" for b in order)
    facts["problems"] = _listed(sorted({int(n) for n in ours["n_problems"]}))
    return facts


def run_set_section(facts: dict[str, str] | None) -> str:
    """The report's first section: which runs, their settings and what the numbers can and cannot say."""
    if facts is None:
        return "## The run set\n\n_No scores of the run set read, so nothing is known about its runs._\n"
    lines = ["## The run set\n"]
    if facts["mini"]:
        lines.append(
            f"**Not the paper's experiment.** The mini track trains a tiny model ({facts['size']}) on CPU on "
            "synthetic arithmetic problems. It runs every stage of the paper's method (group rollouts, "
            "verifiable rewards, the contrastive head and its loss) at toy scale; its numbers say how the "
            "method behaves on this toy, not whether the paper's results on GSM8K or competition "
            "mathematics reproduce, and they are not comparable with the paper's tables.\n"
        )
    else:
        lines.append(
            f"Track(s) {facts['tracks']}: the paper's benchmarks; see *Reproduced vs paper* for the cells "
            "shared with the paper, and each run's `run.json` for settings that differ from its Table 8.\n"
        )
    lines.append(f"- **Runs** ({facts['n_runs']}): {facts['runs']}")
    lines.append("- **Training**: " + facts.get("training", "no `runs/<run_id>/run.json` found (settings unknown)"))
    lines.append(f"- **Evaluation** (problems × samples per problem): {facts['evaluation']}")
    lines.append(
        "- **Intervals**: paired bootstrap over problems (and over seeds where a configuration has several); "
        "about 1 interval in 20 excludes 0 by chance when nothing changed.\n"
    )
    return "\n".join(lines) + "\n"


def run_set_point(facts: dict[str, str]) -> str:
    """The run set and its caveat in one summary line."""
    what = [facts["size"]] if facts["size"] != "size not recorded" else []
    what += [f"{facts['steps']} training steps"] if facts["steps"] else []
    what.append(f"{facts['problems']} problems per benchmark")
    caveat = ("synthetic arithmetic on CPU, not the paper's experiment" if facts["mini"]
              else "the paper's benchmarks")
    return f"{facts['n_runs']} runs on track {facts['tracks']} ({', '.join(what)}): {caveat}."


def _average_scores(cells: pd.DataFrame) -> pd.DataFrame:
    """Per run and seed: its benchmarks plus the track's averages (unweighted means of the members)."""
    keys = [*RUN_AXES, "seed"]
    rows = []
    for key, g in cells.groupby(keys, dropna=False, sort=False):
        by_bench = g.set_index("benchmark")["score"]
        rows += [dict(zip(keys, key), benchmark=b, score=v) for b, v in by_bench.items()]
        for name, members in benchmark_groups(str(key[0])).items():
            if members and all(m in by_bench.index for m in members):
                rows.append(dict(zip(keys, key), benchmark=name, score=by_bench[members].mean()))
    return pd.DataFrame(rows)


def score_points(scores: pd.DataFrame) -> list[str]:
    """Summary lines on the scores themselves: each run's Avg. and the base method's largest change."""
    ours = scores[scores["source"] != "paper"]
    if ours.empty:
        return []
    try:
        full = _average_scores(ours)
    except ConfigError:
        return []
    configs = _run_configs(full)
    means = [g.groupby("benchmark", sort=False)["score"].mean() for _, g in configs]
    avg = [f"{name} {m['Avg.']:.2f}" + (f" ({_seeds(g['seed'])})" if g["seed"].nunique() > 1 else "")
           for (name, g), m in zip(configs, means) if "Avg." in m]
    points = [f"Avg. Pass@1 (mean over seeds): {'; '.join(avg)}." if avg else ""]
    bases = {(g["track"].iloc[0], g["model"].iloc[0]): m for (_, g), m in zip(configs, means)
             if (g["method"] == "base").all()}
    for (name, g), m in zip(configs, means):
        base = bases.get((g["track"].iloc[0], g["model"].iloc[0]))
        if base is None or not ((g["clipo"] == "none") & (g["method"] != "base")).all():
            continue
        change = (m - base).dropna().drop(list(AVERAGES), errors="ignore")
        if change.empty:
            continue
        b = change.abs().idxmax()
        points.append(
            f"{name} vs the base model: largest change on {b}, {base[b]:.2f} → {m[b]:.2f} ({change[b]:+.2f}); "
            f"Avg. {base.get('Avg.', np.nan):.2f} → {m.get('Avg.', np.nan):.2f}."
        )
    return [p for p in points if p]


def reward_points(results: Path, runs: list[str] | None = None) -> list[str]:
    """Summary lines on training itself, per method without CLIPO (means over its seeds): the validation
    reward at the first and the last validation, and the training reward over the first and the second
    half of the steps."""
    from clipo.analysis import curves, labels

    points = []
    for setting, by_seed in curves.by_setting(curves.run_metrics(results / "runs", runs)).items():
        train = curves.seed_curve(by_seed, "reward/outcome", alpha=1.0)
        if setting.clipo != "none" or train is None or len(train) < 2:
            continue
        half, steps = len(train) // 2, train["step"].astype(int)
        parts = []
        val = curves.seed_curve(by_seed, "val/reward", alpha=1.0)
        if val is not None and len(val) > 1:
            parts.append(f"validation reward (`val/reward`) {val['raw'].iloc[0]:.2f} at step "
                         f"{int(val['step'].iloc[0])} → {val['raw'].iloc[-1]:.2f} at step {int(val['step'].iloc[-1])}")
        parts.append(f"training reward {train['raw'].iloc[:half].mean():.2f} over steps {steps.iloc[0]}-"
                     f"{steps.iloc[half - 1]} → {train['raw'].iloc[half:].mean():.2f} over steps "
                     f"{steps.iloc[half]}-{steps.iloc[-1]}")
        name = f"{labels.variant_label(setting.method, 'none')} ({_seeds(by_seed)})"
        points.append(f"{name}: " + "; ".join(parts) + ".")
    return points


def _interval(r) -> str:
    return f"{r.delta:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"


def delta_points(boot: pd.DataFrame) -> list[str]:
    """Summary lines on the run set's Δ: every average Δ with its interval, how many intervals exclude 0
    against how many would by chance, and which do, below 0 as well as above."""
    if boot.empty:
        return []
    table = boot.assign(label=short_labels(boot))
    pooled = table["seeds"].astype(str).str.contains(",")
    table = pd.concat([table[pooled], table[~pooled]])  # seeds pooled first: they include training noise
    avg = table[table["benchmark"] == "Avg."]
    points = ["Avg. Δ (CLIPO minus its base method, 95% CI): " + "; ".join(
        f"{r.label} {_interval(r)}" for r in avg.itertuples()) + "."]
    bench = table[~table["is_average"].astype(bool)]
    avgs = table[table["is_average"].astype(bool)]
    sig = table[table["significant"].astype(bool)]
    points.append(
        f"Intervals excluding 0: {int(bench['significant'].sum())} of {len(bench)} per-benchmark Δ "
        f"(≈{len(bench) / 20:.1f} expected by chance) and {int(avgs['significant'].sum())} of {len(avgs)} "
        f"average Δ (≈{len(avgs) / 20:.1f} by chance)."
    )
    for word, rows in (("above", sig[sig["delta"] > 0]), ("below", sig[sig["delta"] < 0])):
        if len(rows):
            points.append(f"Significantly {word} 0: " + "; ".join(
                f"{r.label} on {r.benchmark} {_interval(r)}" for r in rows.itertuples()) + ".")
    return points


def paper_se_point(se_paper: pd.DataFrame) -> str:
    """The paper-SE analysis in one line (its section has the detail)."""
    s = summarize_se(se_paper)["printed"]
    b, a = s["benchmark"], s["average"]
    if b["n"] + a["n"] == 0:
        return ""
    return (
        f"The paper's own printed Δ: {b['exceeds_2se']} of {b['n']} per-benchmark Δ and {a['exceeds_2se']} of "
        f"{a['n']} average Δ exceed 2 binomial standard errors (≈{(b['n'] + a['n']) / 20:.0f} of the "
        f"{b['n'] + a['n']} would by chance alone); see *The paper's Δ against their standard errors*."
    )


def delta_interval_table(boot: pd.DataFrame) -> str:
    """Every Δ with its interval in the tables' layout: one row per comparison, one column per benchmark
    and average; bold where the interval excludes 0."""
    table = boot.assign(label=short_labels(boot))
    known = [b for t in table["track"].astype(str).unique() for b in [*benchmarks(t), *benchmark_groups(t)]]
    columns = list(dict.fromkeys(b for b in known if b in set(table["benchmark"])))
    rows = []
    for label, g in table.groupby("label", sort=False):
        by = {r.benchmark: r for r in g.itertuples()}
        rows.append([markdown.cell(label)] + [
            ("" if b not in by else (f"**{_interval(by[b])}**" if by[b].significant else _interval(by[b])))
            for b in columns])
    return markdown.table(["Comparison", *columns], "l" + "r" * len(columns), rows)


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
    table = table.assign(pair=short_labels(table))
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
    table = table.assign(pair=short_labels(table))
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
@dataclass(frozen=True)
class Report:
    markdown: str
    """The whole report (report.md)."""
    summary: str
    """Its summary as a short Markdown block (summary.md, the README's results paragraph)."""


def build_report(
    results: str | Path, out: str | Path, paper: str | Path | None = PAPER, n_boot: int = 10_000,
    runs: list[str] | None = None, tables: list[str] | None = None, figures: list[str] | None = None,
) -> Report:
    """The report and its summary. ``runs``, ``tables`` (ids) and ``figures`` (fig3, ...) name what the
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
    sig = significance_tables(results, paper, n_boot=n_boot, runs=runs)
    boot = sig["bootstrap"]

    # Tables, then every Δ of them with its interval
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
    elif tables == []:
        parts.append("_No tables requested._\n")
    else:
        missing.append(
            f"tables: nothing under `{results / 'tables'}` "
            f"(run `clipo tables --source {results} --out {results / 'tables'}`)"
        )
        parts.append("_No tables rendered._\n")
    if len(boot):
        parts.append("### Every Δ with its 95% interval\n")
        parts.append(
            "Δ = CLIPO minus its base method (the fixed head minus learned-head CLIPO), in points, with the "
            "paired-bootstrap 95% CI; **bold**: the interval excludes 0. Rows over several seeds pool them.\n"
        )
        parts.append(delta_interval_table(boot))

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
    parts.append("## Is a Δ real?\n")
    parts.append("### This run set: paired bootstrap over problems\n")
    if len(boot):
        parts.append(
            "Δ = CLIPO minus its base method (same track, model, method, group size and seed; the "
            "fixed head minus learned-head CLIPO), in percentage points, on the problems both runs "
            f"answered; 95% percentile CI from {n_boot:,} resamples of problems, drawn jointly for both "
            "runs and for every benchmark of an average. The CI covers which problems a benchmark happens "
            "to hold and the sampling of answers; it does not cover run-to-run variation of training "
            "unless several seeds are pooled (rows with seeds '0, 1, …': a two-stage bootstrap that also "
            "resamples the seeds).\n"
        )
        parts.append(bootstrap_paragraph(boot) + "\n")
    else:
        missing.append(
            f"per-sample records: no CLIPO run and its base run both have `{results}/eval/<run_id>/"
            "samples.parquet`, so no bootstrap CIs"
        )
    parts.append(bootstrap_markdown(boot))
    for name, table in sig.items():
        if name.startswith("se_") and name != "se_paper" and len(table):
            parts.append(f"### This run set ({name[3:]}): binomial standard errors\n")
            parts.append(
                "The same binomial standard errors for the run set's own scores, for comparison with "
                "the bootstrap above.\n"
            )
            parts.append(se_markdown(table))

    # The paper's Δ, in a section of their own: they are about the paper, not this run set
    if "se_paper" in sig:
        parts.append("## The paper's Δ against their standard errors\n")
        se_paper = sig["se_paper"]
        parts.append(paper_se_paragraph(se_paper) + "\n")
        beyond = se_paper[se_paper["exceeds_2se"].astype(bool) | se_paper["exceeds_2se_optimistic"].astype(bool)]
        parts.append(
            f"The Δ beyond 2 SE by either standard error ({len(beyond)} of {len(se_paper)}; every Δ is in "
            "`significance/se_paper.md` and under Significance in `snakemake --report`):\n"
        )
        parts.append(se_markdown(beyond))

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

    ours = run_scores[run_scores["source"] != "paper"] if run_scores is not None else None
    facts = run_set_facts(results, ours, runs) if ours is not None and len(ours) else None
    points = ([run_set_point(facts)] if facts else []) + (score_points(ours) if facts else [])
    points += reward_points(results, runs) if facts else []
    points += delta_points(boot)
    if "se_paper" in sig:
        points.append(paper_se_point(sig["se_paper"]))
    points = [p for p in points if p]
    summary = "\n".join(f"- {p}" for p in points) + "\n" if points else "_Nothing to summarise yet._\n"

    head = [
        f"# CLIPO results report: `{results.name}`\n",
        f"Generated by `clipo report` from `{results}`"
        + (f" and the paper's transcription (`{_paper_name(paper)}`)" if paper is not None else "")
        + ". Every number below is read from those files or computed from them.\n",
    ]
    if missing:
        head.append("**Missing inputs** (the sections below show what exists):\n")
        head.append("\n".join(f"- {m}" for m in missing) + "\n")
    head.append(run_set_section(facts))
    head.append("## Summary\n\n" + summary)
    return Report("\n".join(head + parts), summary)


README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def readme_block(summary: str, results: str | Path) -> str:
    """The README's results paragraph: the report's summary, saying where it comes from."""
    return (
        f"What the numbers of `{results}` say (generated by `clipo report` into `{results}/summary.md`, "
        "copied here by `clipo readme-results`; the write-up with every table and interval is "
        f"`{results}/report.md`, or `snakemake --report report.html`):\n\n{summary.strip()}\n"
    )


def rewrite_readme(readme_text: str, block: str, name: str = "README") -> str:
    """``readme_text`` with the text between the results markers replaced by ``block``."""
    if readme_text.count(README_BEGIN) != 1 or readme_text.count(README_END) != 1 or (
            readme_text.index(README_BEGIN) > readme_text.index(README_END)):
        raise UserError(f"{name}: needs one {README_BEGIN} line followed by one {README_END} line")
    before, rest = readme_text.split(README_BEGIN)
    _, after = rest.split(README_END)
    return f"{before}{README_BEGIN}\n{block.strip()}\n{README_END}{after}"


def run_readme_command(results: str | Path, readme: str | Path) -> int:
    """`clipo readme-results`: copy RESULTS/summary.md into the README's results block."""
    results, readme = Path(results), Path(readme)
    summary = results / "summary.md"
    if not summary.is_file():
        raise FileNotFoundError(f"--results {results}: no summary.md (run `clipo report` first)")
    if not readme.is_file():
        raise FileNotFoundError(f"--readme {readme}: no such file")
    text = rewrite_readme(readme.read_text(encoding="utf-8"), readme_block(summary.read_text(), results),
                          str(readme))
    atomic_write(readme, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    print(f"readme-results: {readme} results block rewritten from {summary}")
    return 0


def run_report_command(results: str | Path, out: str | Path, paper: str | Path | None = PAPER,
                       runs: list[str] | None = None, tables: list[str] | None = None,
                       figures: list[str] | None = None) -> int:
    """Write the report as Markdown (``out``), as HTML beside it and its summary as summary.md there."""
    results, out = Path(results), Path(out)
    if not results.is_dir():
        raise FileNotFoundError(f"--results {results}: no such folder")
    rep = build_report(results, out, paper, runs=runs, tables=tables, figures=figures)
    atomic_write(out, lambda tmp: Path(tmp).write_text(rep.markdown, encoding="utf-8"))
    page = html.write_page(out.with_suffix(".html"), f"CLIPO results report: {results.name}", rep.markdown,
                           images_from=out.parent)
    summary = atomic_write(out.parent / "summary.md",
                           lambda tmp: Path(tmp).write_text(rep.summary, encoding="utf-8"))
    print(f"report: wrote {out}, {page} and {summary}")
    return 0
