"""Does CLIPO reduce lucky answers? Paired-bootstrap intervals of Δ on the process metrics.

Every step-checked sample (``samples.parquet``, column ``process``: sound / lucky / wrong,
clipo.data.stepcheck) gives, per problem, the share of its samples that are sound and that are lucky.
For each comparison of ``clipo.analysis.stats`` (CLIPO minus its base method, seeds pooled where a
configuration has several) this module bootstraps, with the same paired design (problems drawn jointly
for both runs, seeds drawn where there are several):

* sound Pass@1: a mean over problems like Pass@1, so its Δ goes through ``stats.bootstrap_ci``;
* the lucky share of correct answers, a ratio (lucky samples / correct samples over the benchmark): each
  replicate recomputes both runs' ratios on the drawn problems; a replicate where a run has no correct
  answer is undefined and left out.

The verdict ("does CLIPO reduce lucky answers?") is read off the interval of the lucky share's Avg. Δ,
whatever its sign.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clipo.analysis import markdown, stats, vocab
from clipo.errors import SchemaError
from clipo.runs import RunSpec
from clipo.scores import LUCKY_SHARE, METRIC_LABELS, SOUND_PASS_AT_1

COLUMNS = ("run_id", "benchmark", "problem_id", "correct", "process")
HEADLINE = "Avg."
"""The Δ the verdict is read from: the track's average over its greedy benchmarks."""

TABLE_COLUMNS = ["pair", "track", "model", "method", "clipo", "tau", "group_size", "seeds", "reference", "metric",
                 "benchmark", "is_average", "n_problems", "value", "value_reference", "delta", "ci_low", "ci_high",
                 "significant"]


def load_process_samples(results_dir: str | Path, runs: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Step-checked samples of a run set: the benchmarks whose every sample has a ``process`` label; and
    the run ids whose records have no labels (written before the step checker), to be named."""
    frames, unlabelled = [], []
    for path in stats.find_samples(results_dir, runs):
        names = set(pq.read_schema(path).names)
        missing = [c for c in ("benchmark", "problem_id", "correct") if c not in names]
        if missing:
            raise SchemaError(f"{path}: missing column(s) {', '.join(missing)}")
        if "process" not in names:
            unlabelled.append(path.parent.name)
            continue
        df = pd.read_parquet(path, columns=[c for c in COLUMNS if c in names])
        if "run_id" not in df.columns:
            df["run_id"] = path.parent.name
        bad = sorted(set(df["process"].dropna()) - {"sound", "lucky", "wrong"})
        if bad:
            raise SchemaError(f"{path}: column process: unknown label(s) {', '.join(map(str, bad))}; "
                              "expected sound, lucky or wrong")
        checked = df.groupby("benchmark")["process"].transform(lambda s: s.notna().all())
        frames.append(df[checked.astype(bool)][list(COLUMNS)])
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS)), unlabelled
    return pd.concat(frames, ignore_index=True), unlabelled


def per_problem_shares(samples: pd.DataFrame) -> pd.DataFrame:
    """Per (run, benchmark, problem): the share of its samples that are correct, sound and lucky."""
    s = samples.assign(correct=samples["correct"].astype(float), sound=(samples["process"] == "sound").astype(float),
                       lucky=(samples["process"] == "lucky").astype(float))
    return s.groupby(["run_id", "benchmark", "problem_id"], sort=True)[["correct", "sound", "lucky"]].mean().reset_index()


def paired_shares(pp: pd.DataFrame, pair: stats.SeedPairs) -> dict[str, dict[str, np.ndarray]]:
    """benchmark → {'correct', 'sound', 'lucky'} → [2 (variant, reference), seeds, problems], on the problems
    every run of the pair answered."""
    needed = [r for p in pair.runs for r in p]
    out = {}
    for bench, g in pp[pp["run_id"].isin(needed)].groupby("benchmark"):
        parts = {}
        for col in ("correct", "sound", "lucky"):
            wide = g.pivot(index="problem_id", columns="run_id", values=col)
            if not set(needed) <= set(wide.columns):
                break
            wide = wide[needed].dropna()
            parts[col] = np.stack([[wide[v].to_numpy() for v, _ in pair.runs],
                                   [wide[r].to_numpy() for _, r in pair.runs]])
        if len(parts) == 3 and parts["correct"].shape[-1]:
            out[bench] = parts
    return out


def share(lucky: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Lucky share in % over the last axis (problems); NaN where nothing is correct."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * lucky.sum(axis=-1) / correct.sum(axis=-1)


def lucky_share_replicates(lucky: np.ndarray, correct: np.ndarray, seed_picks: np.ndarray,
                           rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of Δ lucky share (variant − reference, mean over the drawn seeds), in points.

    ``lucky``/``correct``: [2, seeds, problems]; the problems are drawn once per replicate for both runs
    and every seed (they answer the same problems), the seeds by ``seed_picks`` [n_boot, seeds]. As in
    ``stats.bootstrap_means``, drawing n problems is a multinomial draw over the distinct per-problem
    records (few: shares are multiples of 1/k), which is exact and much cheaper than one over problems.
    """
    n = lucky.shape[-1]
    records = np.concatenate([lucky.reshape(-1, n), correct.reshape(-1, n)]).T  # [problems, 2·2·seeds]
    values, counts = np.unique(records, axis=0, return_counts=True)
    picks = rng.multinomial(n, counts / n, size=len(seed_picks)).astype(float)  # [n_boot, distinct]
    half = values.shape[1] // 2
    shape = (len(values), *lucky.shape[:2])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = 100 * (np.einsum("bd,dks->bks", picks, values[:, :half].reshape(shape))
                       / np.einsum("bd,dks->bks", picks, values[:, half:].reshape(shape)))
    delta = ratio[:, 0] - ratio[:, 1]  # [n_boot, seeds]
    return (delta * seed_picks).sum(axis=1) / seed_picks.shape[1]


def comparison_ci(parts: dict[str, dict[str, np.ndarray]], track: str, n_boot: int = 10_000, seed: int = 0,
                  level: float = 0.95) -> pd.DataFrame:
    """Both process metrics' Δ with intervals, per benchmark and average, and each side's value (seed mean)."""
    sound = stats.bootstrap_ci({b: p["sound"][0] - p["sound"][1] for b, p in parts.items()}, track, n_boot, seed,
                               level)
    rng = np.random.default_rng(seed)
    order = stats.benchmark_order(parts, track)
    seed_picks = stats.seed_draws(stats.n_seeds_of({b: parts[b]["lucky"] for b in order}), n_boot, rng)
    reps = {b: lucky_share_replicates(parts[b]["lucky"], parts[b]["correct"], seed_picks, rng) for b in order}
    sides = {b: share(parts[b]["lucky"], parts[b]["correct"]).mean(axis=-1) for b in order}  # [2]: seed means
    point = {b: float(sides[b][0] - sides[b][1]) for b in order}
    sizes = {b: parts[b]["lucky"].shape[-1] for b in order}
    lucky = stats.interval_rows(reps, point, sizes, order, track, level)
    frames = []
    for metric, table, values in (
            (SOUND_PASS_AT_1, sound, {b: 100 * p["sound"].mean(axis=(1, 2)) for b, p in parts.items()}),
            (LUCKY_SHARE, lucky, sides)):
        side = {i: {b: float(v[i]) for b, v in values.items()} for i in (0, 1)}
        for i, name in ((0, "value"), (1, "value_reference")):
            means = {**side[i], **vocab.group_means(side[i], track)}
            table[name] = [means.get(b, math.nan) for b in table["benchmark"]]
        frames.append(table.assign(metric=metric))
    return pd.concat(frames, ignore_index=True)


def process_table(samples: pd.DataFrame, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Every comparison among the step-checked runs, seeds pooled where a configuration has several."""
    if samples.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    pp = per_problem_shares(samples)
    frames = []
    for pair in stats.seed_pairs(pp["run_id"].unique(), pool_seeds=True):
        parts = paired_shares(pp, pair)
        if not parts:
            continue
        v = pair.variant
        ci = comparison_ci(parts, v.track, n_boot, seed)
        frames.append(ci.assign(pair=pair.label, track=v.track, model=v.model, method=v.method, clipo=v.clipo,
                                tau=math.nan if v.tau is None else v.tau, group_size=v.group_size,
                                seeds=",".join(str(RunSpec.parse(a).seed) for a, _ in pair.runs),
                                reference=pair.reference.clipo))
    return pd.concat(frames, ignore_index=True)[TABLE_COLUMNS] if frames else pd.DataFrame(columns=TABLE_COLUMNS)


# ------------------------------------------------------------------------------------------------
# What it says
# ------------------------------------------------------------------------------------------------
def headline_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """The comparisons the verdict is about: learned-head CLIPO minus its base method, those over most seeds."""
    if table.empty:
        return table
    rows = table[table["reference"] == "none"]
    n_seeds = rows["seeds"].astype(str).str.count(",") + 1
    return rows[n_seeds == n_seeds.max()] if len(rows) else rows


def verdict(row) -> str:
    """'yes' (the interval of Δ lucky share is below 0), 'no' (above 0: more lucky answers), 'not resolved'."""
    if pd.isna(row.ci_low) or pd.isna(row.ci_high):
        return "not resolved"
    if row.ci_high < 0:
        return "yes"
    return "no" if row.ci_low > 0 else "not resolved"


def interval(row) -> str:
    return f"{row.delta:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"


def process_markdown(table: pd.DataFrame) -> str:
    """The process table in Markdown: both sides' values, Δ with its 95% CI, ✓ where the CI excludes 0."""
    if table.empty:
        return "_No comparison (CLIPO run and its base run) has step-checked per-sample records for both runs._\n"
    labels = stats.short_labels(table)
    return markdown.table(
        ["Comparison", "Metric", "Benchmark", "Reference", "CLIPO", "Δ", "95% CI", "CI excludes 0"],
        "lllrrrcc",
        ([markdown.cell(label), METRIC_LABELS[r.metric], str(r.benchmark), f"{r.value_reference:.2f}",
          f"{r.value:.2f}", f"{r.delta:+.2f}", f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]", "✓" if r.significant else ""]
         for label, r in zip(labels, table.itertuples())),
    )
