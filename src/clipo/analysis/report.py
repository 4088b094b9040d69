"""`clipo report`: one Markdown file with a run set's tables, figures, significance and paper comparison.

Everything in the report is read from files (``tables/*.md``, ``figures/*.png``, scores and samples)
or computed from them here; the prose paragraphs are generated from those numbers, never written by
hand. Missing inputs are listed at the top instead of failing the report.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clipo import records
from clipo.analysis import html, markdown, registry, vocab
from clipo.analysis.results import PAPER, load_scores, paper_scores_path
from clipo.analysis.stats import (
    AVERAGES,
    bootstrap_markdown,
    se_markdown,
    short_labels,
    significance_tables,
    summarize_se,
)
from clipo.data.registry import benchmark_groups, benchmarks
from clipo.errors import ConfigError, UserError
from clipo.records import atomic_write
from clipo.scores import LUCKY_SHARE, METRIC, METRIC_LABELS, SOUND_PASS_AT_1

CELL_KEY = ["track", "model", "method", "clipo", "tau", "group_size", "benchmark"]


def _oneline(text: str) -> str:
    """A paragraph wrapped in the template, on one line."""
    return re.sub(r"\s*\n\s*", " ", text).strip()


@functools.cache
def prose():
    """The report's prose: the macros of templates/report.md.j2, called with the numbers."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("clipo.analysis", "templates"), autoescape=False,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["oneline"] = _oneline
    return env.get_template("report.md.j2").module


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
        rows += [{**dict(zip(run_key, key)), "benchmark": name, value: mean}
                 for name, mean in vocab.group_means(by_bench, str(key[0])).items()]
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


def _seeds(values) -> str:
    seeds = sorted({int(v) for v in values})
    return f"s{seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))


def _run_configs(scores: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(readable name, its rows over every seed) per configuration of the run set, in table order."""
    show_tau = scores["tau"].dropna().nunique() > 1
    varies = [c for c in ("track", "model", "group_size") if scores[c].astype(str).nunique() > 1]
    groups = sorted(scores.groupby(RUN_AXES, dropna=False, sort=False),
                    key=lambda kv: (*kv[1][varies[:2]].astype(str).iloc[0],
                                    vocab.variant_order(*kv[1][["clipo", "tau", "method"]].iloc[0])))

    def name(g) -> str:
        r = g.iloc[0]
        prefix = " ".join(str(r[c]) for c in varies if c != "group_size")
        text = vocab.variant_name(r["method"], r["clipo"], r["tau"] if show_tau else None)
        return (f"{prefix} " if prefix else "") + text + (f" G={r['group_size']}" if "group_size" in varies else "")

    return [(name(g), g) for _, g in groups]


def _run_records(results: Path, runs: list[str] | None) -> list[records.RunRecord]:
    """run.json of every trained run read (``runs``, else every run folder of the run set), either backend."""
    return [records.read_run(p) for p in records.run_files(results / "runs", records.RUN_FILE, runs)]


def _distinct(values) -> list:
    """The values that are not None, each once, in first-seen order."""
    return list(dict.fromkeys(v for v in values if v is not None))


def _listed(values: list) -> str:
    return " / ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in values) if values else "?"


def _train_problems(recs: list[records.RunRecord]) -> str:
    counts = []
    for path in _distinct(f for r in recs for f in r.train_files):
        try:
            counts.append(f"{pq.read_metadata(path).num_rows:,} (`{path}`)")
        except (OSError, ValueError):
            counts.append(f"? (`{path}` not found from here)")
    return _listed(counts)


def _training(recs: list[records.RunRecord], size: str) -> dict[str, str]:
    """Steps (or epochs where a verl run's steps are not known yet), prompts and rollouts per step."""
    steps = _listed(_distinct(r.steps for r in recs)) if all(r.steps is not None for r in recs) else ""
    length = f"{steps} steps" if steps else _listed(_distinct(r.length for r in recs))
    return {
        "steps": steps,
        "length": length,
        "training": (f"{length} per run, {_listed(_distinct(r.prompts_per_step for r in recs))} prompts × "
                     f"{_listed(_distinct(r.rollouts_per_prompt for r in recs))} rollouts per step; policy of "
                     f"{size}; training problems: {_train_problems(recs)}"),
    }


def run_set_facts(results: Path, scores: pd.DataFrame, runs: list[str] | None = None) -> dict[str, str]:
    """What ran, as text: tracks, runs, training settings (runs' run.json) and evaluation sizes (scores)."""
    ours = scores[scores["source"] != "paper"]
    tracks = sorted(ours["track"].astype(str).unique())
    recs = _run_records(results, runs)
    params = _distinct(r.policy_parameters for r in recs)
    facts = {
        "tracks": ", ".join(tracks),
        "mini": "yes" if set(tracks) == {"mini"} else "",
        "size": _listed([f"{p / 1e6:.1f} M" for p in params]) + " parameters" if params else "size not recorded",
        "n_runs": str(len(ours.drop_duplicates(["track", "model", "method", "clipo", "tau", "group_size", "seed"]))),
        "runs": "; ".join(f"{name} ({_seeds(g['seed'])})" for name, g in _run_configs(ours)),
        "steps": "",
        "length": "",
    }
    if recs:
        facts.update(_training(recs, facts["size"]))
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
    return str(prose().run_set(facts))


def run_set_point(facts: dict[str, str]) -> str:
    """The run set and its caveat in one summary line."""
    what = [facts["size"]] if facts["size"] != "size not recorded" else []
    what += ([f"{facts['steps']} training steps"] if facts["steps"]
             else [f"{facts['length']} of training"] if facts["length"] else [])
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
        rows += [dict(zip(keys, key), benchmark=name, score=mean)
                 for name, mean in vocab.group_means(by_bench, str(key[0])).items()]
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
    from clipo.analysis import curves

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
        name = f"{vocab.variant_label(setting.method, 'none')} ({_seeds(by_seed)})"
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


def process_score_points(process_scores: pd.DataFrame) -> list[str]:
    """Summary lines on the step-checked answers (scores.csv's process rows): the base model's lucky share
    of its correct sampled (Test-T1) and greedy Test answers, then every run's lucky share and sound Pass@1
    on those two, means over seeds."""
    if process_scores.empty:
        return []
    shown = [b for b in ("Test", "Test-T1") if b in set(process_scores["benchmark"])]
    points = []
    for metric in (LUCKY_SHARE, SOUND_PASS_AT_1):
        rows = process_scores[process_scores[METRIC] == metric]
        if rows.empty:
            continue
        means = []
        for name, g in _run_configs(rows):
            by = g.groupby("benchmark")["score"].mean()
            seeds = f" ({_seeds(g['seed'])})" if g["seed"].nunique() > 1 else ""
            means.append(f"{name} " + " / ".join(f"{by[b]:.2f}" if b in by else "–" for b in shown) + seeds)
        points.append(f"{METRIC_LABELS[metric]} (%), {' / '.join(shown)} (mean over seeds): {'; '.join(means)}.")
    base = process_scores[(process_scores["method"] == vocab.BASE) & (process_scores[METRIC] == LUCKY_SHARE)]
    for model, g in base.groupby("model", sort=True):
        by = g.groupby("benchmark")["score"].mean()
        parts = []
        if "Test-T1" in by:
            k = int(g.loc[g["benchmark"] == "Test-T1", "n_samples"].iloc[0])
            parts.append(f"{by['Test-T1']:.2f}% of its correct sampled Test answers (Test-T1, {k} per problem)")
        if "Test" in by:
            parts.append(f"{by['Test']:.2f}% of its correct greedy Test answers")
        if parts:
            who = vocab.BASE_LABEL + (f" ({model})" if base["model"].nunique() > 1 else "")
            points.insert(0, f"{who}: {' and '.join(parts)} are lucky (the outcome correct, the steps not).")
    return points


def lucky_answer_points(table: pd.DataFrame) -> list[str]:
    """The answer to "does CLIPO reduce lucky answers?" per headline comparison (clipo.analysis.process),
    read off the interval of the lucky share's Avg. Δ."""
    from clipo.analysis import process

    head = process.headline_comparisons(table)
    if head.empty:
        return []
    head = head.assign(label=short_labels(head))
    points = []
    for label, g in head.groupby("label", sort=False):
        by = {(r.metric, r.benchmark): r for r in g.itertuples()}
        lucky, sound = by.get((LUCKY_SHARE, process.HEADLINE)), by.get((SOUND_PASS_AT_1, process.HEADLINE))
        if lucky is None or sound is None:
            continue
        details = [f"{b} {process.interval(by[(LUCKY_SHARE, b)])}" for b in ("Test", "Test-T1")
                   if (LUCKY_SHARE, b) in by]
        comparison = f"{label} minus {vocab.method_label(lucky.method)}"
        points.append(str(prose().lucky_answer(comparison, process.verdict(lucky), process.interval(lucky),
                                                process.interval(sound), details)).strip())
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
    b, a = s["printed"]["benchmark"], s["printed"]["average"]
    if b["n"] + a["n"] == 0:
        return "No Δ row of the paper could be matched to its runs in the transcription."
    table = table.assign(pair=short_labels(table))
    printed = table[table["printed_in"].fillna("").astype(str) != ""]
    ratio = (printed["delta"].abs() / printed["se_delta"]).replace([np.inf], np.nan)
    top = printed.loc[ratio.idxmax()]
    where = str(top["printed_in"]).split(",")
    beyond = printed[printed["exceeds_2se"].astype(bool)]
    return str(prose().paper_se(
        s, printed["pair"].nunique(), top, ("Tables " if len(where) > 1 else "Table ") + ", ".join(where),
        [f"{r.benchmark} {r.delta:+.2f} ± {r.se_delta:.2f} ({r.pair})" for r in beyond.itertuples()],
        s["all"]["benchmark"]["n"] - b["n"]))


def bootstrap_paragraph(table: pd.DataFrame) -> str:
    """What the paired bootstrap says about the run set's own Δ."""
    if table.empty:
        return "No comparison with per-sample records on both sides was found."
    table = table.assign(pair=short_labels(table))
    is_average = table["is_average"].astype(bool)
    counts = [{"hits": int(t["significant"].sum()), "n": len(t)} for t in (table[~is_average], table[is_average])]

    def listed(rows: pd.DataFrame) -> list[str]:
        return [f"{r.benchmark} {r.delta:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}] ({r.pair})" for r in rows.itertuples()]

    pooled = table[table["seeds"].astype(str).str.contains(",")] if "seeds" in table else table.iloc[:0]
    headline = listed(pooled[pooled["benchmark"].isin(["Avg.", "Test", "Test-T1"])]) if len(pooled) else None
    return str(prose().bootstrap(table["pair"].nunique(), *counts, headline,
                                 listed(table[table["significant"].astype(bool)])))


# ------------------------------------------------------------------------------------------------
# Assembly
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    markdown: str
    """The whole report (report.md)."""
    summary: str
    """Its summary as a short Markdown block (summary.md, the README's results paragraph)."""


def _tables_section(results: Path, tables: list[str] | None, boot: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The rendered tables (Markdown), then every Δ of them with its interval; and what is missing."""
    missing: list[str] = []
    if tables is None:
        table_files = sorted((results / "tables").glob("*.md"), key=_natural)
    else:
        table_files = [results / "tables" / f"{t}.md" for t in tables]
        missing += [f"{t.stem}: no `{t}`" for t in table_files if not t.is_file()]
        table_files = [t for t in table_files if t.is_file()]
    parts = ["## Tables\n"]
    if table_files:
        parts += [t.read_text().strip() + "\n" for t in table_files]
    elif tables == []:
        parts.append("_No tables requested._\n")
    else:
        missing.append(
            f"tables: nothing under `{results / 'tables'}` "
            f"(run `clipo tables --source {results} --out {results / 'tables'}`)"
        )
        parts.append("_No tables rendered._\n")
    if len(boot):
        parts += ["### Every Δ with its 95% interval\n", str(prose().delta_table_intro()), delta_interval_table(boot)]
    return parts, missing


def _figures_section(results: Path, out: Path, figures: list[str] | None) -> tuple[list[str], list[str]]:
    """Each drawn figure with its caption; and the figures asked for that are not drawn."""
    parts, missing = ["## Figures\n"], []
    for fid, fig in registry.FIGURES.items():
        if figures is not None and fid not in figures:
            continue
        png = results / "figures" / f"{fig.stem}.png"
        if png.exists():
            rel = os.path.relpath(png, out.parent)
            pdf = os.path.relpath(png.with_suffix(".pdf"), out.parent)
            parts.append(f"**{fig.label}.** {fig.caption} ([PDF]({pdf}))\n\n![{fig.label}]({rel})\n")
        else:
            missing.append(
                f"{fig.label}: no `{png}` (run `clipo figures --results {results} --out {results / 'figures'}`)"
            )
    if len(parts) == 1:
        parts.append("_No figures drawn._\n")
    return parts, missing


def _significance_section(results: Path, sig: dict, n_boot: int) -> tuple[list[str], list[str]]:
    """Is a Δ real: the run set's paired bootstrap and standard errors, then the paper's Δ against theirs."""
    boot, missing = sig["bootstrap"], []
    parts = ["## Is a Δ real?\n", "### This run set: paired bootstrap over problems\n"]
    if len(boot):
        parts += [str(prose().bootstrap_intro(n_boot)), bootstrap_paragraph(boot) + "\n"]
    else:
        missing.append(
            f"per-sample records: no CLIPO run and its base run both have `{results}/eval/<run_id>/"
            "samples.parquet`, so no bootstrap CIs"
        )
    parts.append(bootstrap_markdown(boot))
    if len(sig.get("process", ())):
        from clipo.analysis.process import process_markdown

        parts += ["### Sound and lucky answers: CLIPO minus its base method\n", str(prose().process_intro(n_boot)),
                  process_markdown(sig["process"])]
    for name, table in sig.items():
        if name.startswith("se_") and name != "se_paper" and len(table):
            parts += [f"### This run set ({name[3:]}): binomial standard errors\n", str(prose().se_intro()),
                      se_markdown(table)]
    if "se_paper" in sig:  # a section of their own: they are about the paper, not this run set
        se_paper = sig["se_paper"]
        beyond = se_paper[se_paper["exceeds_2se"].astype(bool) | se_paper["exceeds_2se_optimistic"].astype(bool)]
        parts += ["## The paper's Δ against their standard errors\n", paper_se_paragraph(se_paper) + "\n",
                  str(prose().paper_se_beyond(len(beyond), len(se_paper))), se_markdown(beyond)]
    return parts, missing


def _reproduced_section(run_scores: pd.DataFrame | None, paper_scores: pd.DataFrame | None) -> list[str]:
    """The cells both the run set and the paper score, side by side."""
    parts = ["## Reproduced vs paper\n"]
    if run_scores is None or paper_scores is None:
        return parts + ["_Needs both the run set's and the paper's scores._\n"]
    ours = run_scores[run_scores["source"] != "paper"]
    both = side_by_side(ours, paper_scores) if len(ours) else pd.DataFrame()
    if len(both):
        return parts + [str(prose().overlap(len(both), both["difference"].abs().mean())), side_by_side_markdown(both)]
    if ours.empty:
        return parts + ["The results folder holds only the paper's numbers: nothing to compare.\n"]
    return parts + [str(prose().no_overlap(sorted(set(ours["track"].astype(str))),
                                           sorted(set(paper_scores["track"].astype(str)))))]


def _summary(results: Path, ours: pd.DataFrame | None, runs: list[str] | None, sig: dict):
    """The run set's facts (None without scores) and the summary's bullet points as Markdown."""
    facts = run_set_facts(results, ours, runs) if ours is not None and len(ours) else None
    points = ([run_set_point(facts)] + score_points(ours) + reward_points(results, runs)) if facts else []
    if facts:
        from clipo.analysis.tables import load_process_scores

        points += process_score_points(load_process_scores(results, runs))
    points += delta_points(sig["bootstrap"])
    if "process" in sig:
        points += lucky_answer_points(sig["process"])
    if "se_paper" in sig:
        points.append(paper_se_point(sig["se_paper"]))
    points = [p for p in points if p]
    return facts, "\n".join(f"- {p}" for p in points) + "\n" if points else "_Nothing to summarise yet._\n"


def build_report(
    results: str | Path, out: str | Path, paper: str | Path | None = PAPER, n_boot: int = 10_000,
    runs: list[str] | None = None, tables: list[str] | None = None, figures: list[str] | None = None,
) -> Report:
    """The report and its summary. ``runs``, ``tables`` (ids) and ``figures`` (fig3, ...) name what the
    workflow's config asks for; None takes whatever the folder holds (a stale table of an earlier
    config would then show up too)."""
    results, out = Path(results), Path(out)
    missing: list[str] = []
    run_scores = _try_scores(results, runs)
    paper_scores = _try_scores(paper) if paper is not None else None
    if run_scores is None:
        missing.append(f"scores: no scores.csv under `{results}` (run `clipo evaluate`)")
    if paper is not None and paper_scores is None:
        missing.append(f"the paper's scores (`{paper}`)")
    sig = significance_tables(results, paper, n_boot=n_boot, runs=runs)

    parts: list[str] = []
    for section, lacking in (_tables_section(results, tables, sig["bootstrap"]), _figures_section(results, out, figures),
                             _significance_section(results, sig, n_boot)):
        parts += section
        missing += lacking
    parts += _reproduced_section(run_scores, paper_scores)

    ours = run_scores[run_scores["source"] != "paper"] if run_scores is not None else None
    facts, summary = _summary(results, ours, runs, sig)
    head = [str(prose().head(results.name, results, _paper_name(paper) if paper is not None else None))]
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
