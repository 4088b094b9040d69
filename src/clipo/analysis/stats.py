"""Is a Δ real? Confidence intervals and standard errors for "CLIPO minus its base method".

Two sources of evidence:

* Per-sample records (``eval/<run_id>/samples.parquet``) of our own runs: a paired bootstrap that
  resamples *problems* (each with all its samples) jointly for both runs, so the problem-difficulty
  noise that both runs share cancels; averages (M/G/C-Avg., Avg.) are unweighted means of benchmark
  scores, and each bootstrap replicate resamples every member benchmark once.
* The paper's numbers (no per-sample data): the binomial standard error implied by each benchmark's
  size, ``n_problems`` problems × ``n_samples`` samples per problem (see ``binomial_se``).

Δ is always "variant minus reference", in percentage points: CLIPO minus its base method (same track,
model, method, group size and seed), and the fixed-head ablation minus learned-head CLIPO (same τ) as
the paper's Tables 3, 11 and 12 print it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clipo.analysis import html, markdown, vocab
from clipo.analysis.results import PAPER, load_scores
from clipo.data.registry import benchmark_groups, benchmarks
from clipo.errors import ConfigError, SchemaError
from clipo.records import atomic_write
from clipo.runs import RunSpec

CELL = ("source", "track", "model", "method", "clipo", "tau", "group_size", "seed")
"""Columns identifying one evaluated run in a scores table."""

AVERAGES = ("M-Avg.", "G-Avg.", "C-Avg.", "Avg.")


# ------------------------------------------------------------------------------------------------
# Which comparisons exist
# ------------------------------------------------------------------------------------------------
def _same(a, b) -> bool:
    """Equality that treats two missing values (NaN τ of runs without CLIPO) as equal."""
    if pd.isna(a) and pd.isna(b):
        return True
    return not pd.isna(a) and not pd.isna(b) and math.isclose(float(a), float(b))


def comparisons(cells: pd.DataFrame) -> list[tuple[dict, dict]]:
    """(variant cell, reference cell) for every evaluated CLIPO run whose reference was evaluated too."""
    rows = cells[list(CELL)].drop_duplicates().to_dict("records")
    pairs = []
    for var in rows:
        ref_clipo = vocab.reference_variant(var["clipo"])
        if ref_clipo is None:
            continue
        for ref in rows:
            if ref["clipo"] != ref_clipo:
                continue
            if any(ref[c] != var[c] for c in ("source", "track", "model", "method", "group_size", "seed")):
                continue
            if ref_clipo == "none" or _same(ref["tau"], var["tau"]):
                pairs.append((var, ref))
    return pairs


def pair_label(var: dict, ref: dict) -> str:
    """Readable name of one comparison, e.g. 'I qwen2.5-3b-instruct grpo+infonce τ=0.05 G=16 s0 vs grpo'."""
    tau = "" if pd.isna(var["tau"]) else f" τ={float(var['tau']):g}"
    against = ref["method"] if ref["clipo"] == "none" else f"{ref['method']}+{ref['clipo']}"
    return (
        f"{var['track']} {var['model']} {var['method']}+{var['clipo']}{tau} "
        f"G={var['group_size']} s{var['seed']} vs {against}"
    )


def short_labels(table: pd.DataFrame) -> pd.Series:
    """A label per row naming only what varies among the table's comparisons, e.g. 'GRPO+InfoNCE s0'
    where every comparison shares track, model, τ and G (the full name stays in the ``pair`` column).
    The base method a CLIPO run is compared with is implied; a fixed head names its learned-head twin."""
    if table.empty:
        return pd.Series([], dtype=str, index=table.index)
    seeds = table["seeds"] if "seeds" in table else table["seed"]
    varies = {c: table[c].astype(str).nunique() > 1 for c in ("track", "model", "tau", "group_size")}

    def label(r, seed) -> str:
        parts = [str(r["track"])] if varies["track"] else []
        parts += [str(r["model"])] if varies["model"] else []
        name = vocab.variant_name(r["method"], r["clipo"])
        if varies["tau"] and not pd.isna(r["tau"]):
            name += f" τ={float(r['tau']):g}"
        parts.append(name)
        parts += [f"G={r['group_size']}"] if varies["group_size"] else []
        seed = str(seed)
        parts.append(f"seeds {seed}" if "," in seed else f"s{seed}")
        if r["reference"] != "none":
            parts.append(f"vs {vocab.variant_name(r['method'], r['reference'])}")
        return " ".join(parts)

    return pd.Series([label(r, s) for (_, r), s in zip(table.iterrows(), seeds)], index=table.index)


# ------------------------------------------------------------------------------------------------
# The paper's numbers: binomial standard errors
# ------------------------------------------------------------------------------------------------
def binomial_se(score: float, n_problems: int, n_samples: int) -> tuple[float, float]:
    """Standard error (percentage points) of a Pass@1 score over ``n_problems`` × ``n_samples``.

    Returns ``(conservative, optimistic)``. Pass@1 is the mean over problems of each problem's mean
    correctness over its k samples. Its variance is [Var(p_i) + E p_i(1-p_i)/k] / n, where p_i is the
    solve rate of problem i. Without per-problem data we only know p = E p_i, which bounds it:
    *conservative* sqrt(p(1-p)/n) when every problem is solved always or never (k samples add nothing),
    *optimistic* sqrt(p(1-p)/(n·k)) when all problems are equally hard (samples count as independent).
    For k = 1 (Track I) both coincide. The conservative bound is the one a claim should survive.
    """
    if n_problems < 1 or n_samples < 1:
        raise SchemaError(f"n_problems={n_problems}, n_samples={n_samples}: both must be >= 1")
    p = min(max(score / 100.0, 0.0), 1.0)
    var = p * (1 - p)
    return 100 * math.sqrt(var / n_problems), 100 * math.sqrt(var / (n_problems * n_samples))


def _cell_scores(scores: pd.DataFrame, cell: dict) -> pd.DataFrame:
    mask = np.ones(len(scores), dtype=bool)
    for c in CELL:
        mask &= scores[c].isna().to_numpy() if pd.isna(cell[c]) else (scores[c] == cell[c]).to_numpy()
    rows = scores[mask]
    dup = rows["benchmark"].duplicated(keep=False)
    if dup.any():
        conflicting = rows[dup].groupby("benchmark")["score"].nunique()
        bad = conflicting[conflicting > 1]
        if len(bad):
            raise SchemaError(f"run {cell} has conflicting scores for benchmark(s) {', '.join(bad.index)}")
        rows = rows.drop_duplicates("benchmark")
    return rows.set_index("benchmark")


def _with_se(rows: pd.DataFrame, track: str) -> dict[str, tuple[float, float, float]]:
    """benchmark or average name → (score, se_conservative, se_optimistic); averages need every member."""
    out = {}
    for b, r in rows.iterrows():
        out[b] = (
            float(r["score"]),
            *binomial_se(float(r["score"]), int(r["n_problems"]), int(r["n_samples"])),
        )
    scores = {b: v[0] for b, v in out.items()}
    for name, mean in vocab.group_means(scores, track).items():
        members = benchmark_groups(track)[name]
        k = len(members)
        out[name] = (
            mean,
            math.sqrt(sum(out[m][1] ** 2 for m in members)) / k,
            math.sqrt(sum(out[m][2] ** 2 for m in members)) / k,
        )
    return out


def printed_deltas() -> dict[tuple, list[str]]:
    """(variant, reference) run keys → ids of the paper tables that print their Δ row."""
    from clipo.analysis.paper_tables import PAPER_TABLES

    out: dict[tuple, list[str]] = {}
    for tid, spec in PAPER_TABLES.items():
        for row in spec.rows:
            if row.is_delta:
                key = tuple(_select_key(s) for s in row.minus)
                out.setdefault(key, []).append(tid.removeprefix("table"))
    return out


def _select_key(sel) -> tuple:
    """A run's axes as a hashable key comparable between table specs and score rows (τ rounded)."""
    tau = sel["tau"] if isinstance(sel, dict) else sel.tau
    tau = None if tau is None or pd.isna(tau) else round(float(tau), 6)
    get = sel.get if isinstance(sel, dict) else lambda k: getattr(sel, k)
    return (
        str(get("track")),
        get("model"),
        get("method"),
        get("clipo"),
        tau,
        int(get("group_size")),
        int(get("seed")),
    )


def se_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Every Δ that can be formed from ``scores`` with its binomial SE and whether |Δ| > 2 SE.

    ``printed_in`` names the paper tables that print the comparison as a Δ row (for the paper's own
    numbers: the Δ the paper reports; the others, e.g. τ-sweep runs against GRPO, are formed here).

    The two runs are treated as independent evaluations, SE(Δ) = sqrt(SE₁² + SE₂²). They share the
    same problems, which correlates their errors positively, so this overstates SE(Δ) for a fixed
    problem set; it is the right scale for "would the gain hold on a fresh draw of problems".
    """
    records = []
    printed = printed_deltas()
    for var, ref in comparisons(scores):
        track = var["track"]
        tables = ",".join(printed.get((_select_key(var), _select_key(ref)), []))
        try:
            v, r = _with_se(_cell_scores(scores, var), track), _with_se(_cell_scores(scores, ref), track)
        except ConfigError:
            continue  # a track the registry does not know has no benchmark groups to average
        order = [b for b in benchmarks(track) + list(AVERAGES) if b in v and b in r]
        for b in order:
            delta = v[b][0] - r[b][0]
            se_c = math.hypot(v[b][1], r[b][1])
            se_o = math.hypot(v[b][2], r[b][2])
            records.append(
                {
                    **{c: var[c] for c in CELL},
                    "reference": ref["clipo"],
                    "pair": pair_label(var, ref),
                    "printed_in": tables,
                    "benchmark": b,
                    "is_average": b in AVERAGES,
                    "score": v[b][0],
                    "score_reference": r[b][0],
                    "delta": delta,
                    "se_delta": se_c,
                    "se_delta_optimistic": se_o,
                    "exceeds_2se": abs(delta) > 2 * se_c,
                    "exceeds_2se_optimistic": abs(delta) > 2 * se_o,
                }
            )
    return pd.DataFrame.from_records(records, columns=_SE_COLUMNS)


_SE_COLUMNS = [
    *CELL,
    "reference",
    "pair",
    "printed_in",
    "benchmark",
    "is_average",
    "score",
    "score_reference",
    "delta",
    "se_delta",
    "se_delta_optimistic",
    "exceeds_2se",
    "exceeds_2se_optimistic",
]


# ------------------------------------------------------------------------------------------------
# Per-sample records: paired bootstrap over problems
# ------------------------------------------------------------------------------------------------
def per_problem(samples: pd.DataFrame) -> pd.DataFrame:
    """Mean correctness of each (run, benchmark, problem) over its samples."""
    missing = [c for c in ("run_id", "benchmark", "problem_id", "correct") if c not in samples.columns]
    if missing:
        raise SchemaError(f"samples: missing column(s) {', '.join(missing)}")
    s = samples.assign(correct=samples["correct"].astype(float))
    return (
        s.groupby(["run_id", "benchmark", "problem_id"], sort=True)["correct"]
        .mean()
        .rename("p")
        .reset_index()
    )


def bootstrap_means(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap replicates of ``d.mean()``.

    Resampling n items with replacement is a multinomial draw of how often each *distinct* value is
    picked; per-problem differences of Pass@1 take few distinct values (multiples of 1/k), so this is
    O(n_boot · distinct) instead of O(n_boot · n) and exact, not an approximation.
    """
    values, counts = np.unique(np.asarray(d, dtype=float), return_counts=True)
    n = counts.sum()
    picks = rng.multinomial(n, counts / n, size=n_boot)
    return picks @ values / n


@dataclass(frozen=True)
class SeedPairs:
    """One comparison, possibly over several seeds: (variant run id, reference run id) per seed."""

    variant: RunSpec
    reference: RunSpec
    runs: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        seeds = ",".join(str(RunSpec.parse(v).seed) for v, _ in self.runs)
        cell = {**self.variant.as_dict(), "source": "", "seed": seeds}
        ref = {**self.reference.as_dict(), "source": ""}
        return pair_label(cell, ref)


def _reference_spec(spec: RunSpec) -> RunSpec | None:
    ref = vocab.reference_variant(spec.clipo)
    if ref is None or spec.method == "base":
        return None
    return replace(spec, clipo=ref, tau=None if ref == "none" else spec.tau)


def seed_pairs(run_ids, pool_seeds: bool = False) -> list[SeedPairs]:
    """Comparisons among ``run_ids`` (ids that do not parse as run ids are ignored).

    With ``pool_seeds`` the seeds of one configuration form one comparison (Δ averaged over seeds).
    """
    specs = {}
    for rid in run_ids:
        try:
            specs[rid] = RunSpec.parse(rid)
        except ConfigError:
            continue
    by_id = {s.run_id: rid for rid, s in specs.items()}
    groups: dict[tuple, list[tuple[str, str]]] = {}
    heads: dict[tuple, tuple[RunSpec, RunSpec]] = {}
    for rid, spec in sorted(specs.items()):
        ref = _reference_spec(spec)
        if ref is None or ref.run_id not in by_id:
            continue
        key = (replace(spec, seed=0), replace(ref, seed=0)) if pool_seeds else (spec, ref)
        groups.setdefault(key, []).append((rid, by_id[ref.run_id]))
        heads.setdefault(key, (spec, ref))
    return [SeedPairs(heads[k][0], heads[k][1], tuple(v)) for k, v in groups.items()]


def paired_differences(pp: pd.DataFrame, pair: SeedPairs) -> dict[str, np.ndarray]:
    """benchmark → per-problem differences (variant − reference), one row per seed pair: [seeds, problems].

    Only problems every run of the pair answered are kept, so both sides are scored on the same set.
    """
    out = {}
    for bench, g in pp[pp["run_id"].isin({r for p in pair.runs for r in p})].groupby("benchmark"):
        wide = g.pivot(index="problem_id", columns="run_id", values="p")
        needed = [r for p in pair.runs for r in p]
        if not set(needed) <= set(wide.columns):
            continue
        wide = wide[needed].dropna()
        if len(wide):
            out[bench] = np.stack([wide[v].to_numpy() - wide[r].to_numpy() for v, r in pair.runs])
    return out


def bootstrap_seed_means(d: np.ndarray, seed_picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two-stage bootstrap replicates of the mean of ``d`` [seeds, problems], one per row of ``seed_picks``.

    ``seed_picks`` [n_boot, seeds] says how often each seed is drawn in a replicate (the same draw for
    every benchmark of a comparison: a seed's training run moves all of them); the problems are drawn
    here, once per replicate for all seeds (every seed answers the same problems). The interval then
    covers seed-to-seed variation of training as well as the sampling of problems; with one seed it is
    ``bootstrap_means``.
    """
    d = np.atleast_2d(np.asarray(d, dtype=float))
    n_seeds, n = d.shape
    if n_seeds == 1:
        return bootstrap_means(d[0], len(seed_picks), rng)
    problem_picks = rng.multinomial(n, np.full(n, 1 / n), size=len(seed_picks))  # [n_boot, problems]
    per_seed = problem_picks @ d.T / n  # [n_boot, seeds]: each seed's mean over the drawn problems
    return (per_seed * seed_picks).sum(axis=1) / n_seeds


def seed_draws(n_seeds: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, seeds]: how often each seed is drawn per replicate; one draw shared by every benchmark of a
    comparison (a seed's training run moves all of them), all ones for a single seed."""
    if n_seeds == 1:
        return np.ones((n_boot, 1), dtype=int)
    return rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)


def interval_rows(reps: dict[str, np.ndarray], point: dict[str, float], sizes: dict[str, int], order: list[str],
                  track: str, level: float = 0.95) -> pd.DataFrame:
    """Per benchmark of ``order`` and per average of the track whose members are all there: Δ (``point``)
    and the percentile interval of its replicates; an average's replicate is the unweighted mean of its
    members' (the paper's averages are unweighted means too). Undefined replicates (NaN) are left out."""
    reps, point, sizes, order = dict(reps), dict(point), dict(sizes), list(order)
    groups = benchmark_groups(track)
    for name, mean in vocab.group_means(point, track).items():
        members = groups[name]
        reps[name] = vocab.mean_over(reps, members)
        point[name] = mean
        sizes[name] = sum(sizes[m] for m in members)
        order.append(name)
    alpha = (1 - level) / 2
    rows = []
    for b in order:
        defined = reps[b][~np.isnan(reps[b])]
        lo, hi = np.quantile(defined, [alpha, 1 - alpha]) if len(defined) else (math.nan, math.nan)
        rows.append(
            {
                "benchmark": b,
                "is_average": b in AVERAGES,
                "n_problems": sizes[b],
                "delta": point[b],
                "ci_low": float(lo),
                "ci_high": float(hi),
                "significant": bool(lo > 0 or hi < 0),
            }
        )
    return pd.DataFrame(rows)


def bootstrap_ci(
    diffs: dict[str, np.ndarray], track: str, n_boot: int = 10_000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Δ (percentage points) and its percentile bootstrap CI per benchmark and per average.

    Each replicate resamples the problems of every benchmark once, and the seeds where ``diffs`` holds
    several (``bootstrap_seed_means``); averages as in ``interval_rows``.
    """
    rng = np.random.default_rng(seed)
    order = benchmark_order(diffs, track)
    seed_picks = seed_draws(n_seeds_of(diffs), n_boot, rng)
    reps = {b: 100 * bootstrap_seed_means(diffs[b], seed_picks, rng) for b in order}
    point = {b: 100 * float(np.mean(diffs[b])) for b in order}
    sizes = {b: np.atleast_2d(diffs[b]).shape[1] for b in order}
    return interval_rows(reps, point, sizes, order, track, level)


def benchmark_order(per_benchmark: dict, track: str) -> list[str]:
    """The benchmarks of a comparison in the track's column order, unknown ones after them."""
    known = benchmarks(track)
    return [b for b in known if b in per_benchmark] + sorted(set(per_benchmark) - set(known))


def n_seeds_of(per_benchmark: dict[str, np.ndarray]) -> int:
    """Seeds of a comparison: the first axis of its 2-D arrays, which must agree over benchmarks."""
    counts = {np.atleast_2d(d).shape[-2] for d in per_benchmark.values()}
    if len(counts) > 1:
        raise ValueError(f"benchmarks of one comparison hold different numbers of seeds: {sorted(counts)}")
    return counts.pop() if counts else 1


def bootstrap_table(
    samples: pd.DataFrame, n_boot: int = 10_000, seed: int = 0, pool_seeds: bool = False
) -> pd.DataFrame:
    """Paired bootstrap CI of every comparison found among the runs in ``samples``."""
    pp = per_problem(samples)
    frames = []
    for pair in seed_pairs(pp["run_id"].unique(), pool_seeds=pool_seeds):
        diffs = paired_differences(pp, pair)
        if not diffs:
            continue
        ci = bootstrap_ci(diffs, pair.variant.track, n_boot=n_boot, seed=seed)
        v = pair.variant
        ci.insert(0, "pair", pair.label)
        for i, (col, val) in enumerate(
            (
                ("track", v.track),
                ("model", v.model),
                ("method", v.method),
                ("clipo", v.clipo),
                ("tau", math.nan if v.tau is None else v.tau),
                ("group_size", v.group_size),
                ("seeds", ",".join(str(RunSpec.parse(a).seed) for a, _ in pair.runs)),
                ("reference", pair.reference.clipo),
            )
        ):
            ci.insert(1 + i, col, val)
        frames.append(ci)
    cols = [
        "pair",
        "track",
        "model",
        "method",
        "clipo",
        "tau",
        "group_size",
        "seeds",
        "reference",
        "benchmark",
        "is_average",
        "n_problems",
        "delta",
        "ci_low",
        "ci_high",
        "significant",
    ]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


# ------------------------------------------------------------------------------------------------
# Loading and writing
# ------------------------------------------------------------------------------------------------
def find_samples(results_dir: str | Path, runs: list[str] | None = None) -> list[Path]:
    """Every eval/*/samples.parquet, or those of ``runs`` that exist (records are optional)."""
    if runs is None:
        return sorted(Path(results_dir).glob("eval/*/samples.parquet"))
    return [p for p in (Path(results_dir) / "eval" / run / "samples.parquet" for run in runs) if p.is_file()]


def load_samples(results_dir: str | Path, runs: list[str] | None = None) -> pd.DataFrame:
    """All per-sample records of a run set, or of ``runs`` (run_id taken from the file, else its folder)."""
    frames = []
    for path in find_samples(results_dir, runs):
        names = set(pq.read_schema(path).names)
        missing = [c for c in ("benchmark", "problem_id", "correct") if c not in names]
        if missing:
            raise SchemaError(f"{path}: missing column(s) {', '.join(missing)}")
        df = pd.read_parquet(
            path, columns=[c for c in ("run_id", "benchmark", "problem_id", "correct") if c in names]
        )
        if "run_id" not in df.columns:
            df["run_id"] = path.parent.name
        frames.append(df[["run_id", "benchmark", "problem_id", "correct"]])
    if not frames:
        return pd.DataFrame(columns=["run_id", "benchmark", "problem_id", "correct"])
    return pd.concat(frames, ignore_index=True)


def se_markdown(table: pd.DataFrame) -> str:
    """The SE table in Markdown: one row per Δ; ✓ where |Δ| > 2 SE; 'Paper tables' = where it is printed."""
    return markdown.table(
        ["Comparison", "Paper tables", "Benchmark", "Δ", "SE (conservative)", markdown.cell("|Δ|>2SE"),
         "SE (optimistic)", markdown.cell("|Δ|>2SE")],
        "lllrrcrc",
        ([markdown.cell(label), str(r.printed_in), str(r.benchmark), f"{r.delta:+.2f}", f"{r.se_delta:.2f}",
          "✓" if r.exceeds_2se else "", f"{r.se_delta_optimistic:.2f}", "✓" if r.exceeds_2se_optimistic else ""]
         for label, r in zip(short_labels(table), table.itertuples())),
    )


def bootstrap_markdown(table: pd.DataFrame) -> str:
    """The bootstrap table in Markdown: Δ with its 95% CI; ✓ where the CI excludes 0."""
    if table.empty:
        return "_No comparison (CLIPO run and its base run) has per-sample records for both runs._\n"
    return markdown.table(
        ["Comparison", "Benchmark", "Problems", "Δ", "95% CI", "CI excludes 0"],
        "llrrcc",
        ([markdown.cell(label), str(r.benchmark), str(r.n_problems), f"{r.delta:+.2f}",
          f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]", "✓" if r.significant else ""]
         for label, r in zip(short_labels(table), table.itertuples())),
    )


def summarize_se(table: pd.DataFrame) -> dict:
    """Counts for the write-up, for every Δ ('all') and for the Δ rows the paper prints ('printed'):
    how many there are, how many point the way the paper claims (CLIPO above its base, the fixed head
    below learned-head CLIPO) and how many exceed 2 SE, per benchmark and for averages."""
    printed = table["printed_in"].fillna("").astype(str) != ""
    out = {}
    for subset, rows in (("all", table), ("printed", table[printed])):
        out[subset] = {}
        for kind, sub in (
            ("benchmark", rows[~rows["is_average"].astype(bool)]),
            ("average", rows[rows["is_average"].astype(bool)]),
        ):
            favour = np.where(sub["reference"] == "none", sub["delta"] > 0, sub["delta"] < 0)
            out[subset][kind] = {
                "n": len(sub),
                "favourable": int(favour.sum()),
                "exceeds_2se": int(sub["exceeds_2se"].sum()),
                "exceeds_2se_optimistic": int(sub["exceeds_2se_optimistic"].sum()),
            }
    return out


def significance_tables(
    results: str | Path, paper: str | Path | None = PAPER, n_boot: int = 10_000, seed: int = 0,
    runs: list[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every significance table for a results folder: 'bootstrap' (per-sample records, each seed and
    seeds pooled; empty without records), 'process' (Δ of sound Pass@1 and of the lucky share where the
    records are step-checked, clipo.analysis.process; empty elsewhere) and 'se_<source>' (binomial SEs) for the folder's scores and
    ``paper``'s ('paper' = the repository's transcription; None to leave it out). ``runs``: only those
    run ids of the folder (the workflow's grid), not every run that has files there."""
    results = Path(results)
    tables: dict[str, pd.DataFrame] = {}
    samples = load_samples(results, runs)
    boot = bootstrap_table(samples, n_boot=n_boot, seed=seed)
    pooled = bootstrap_table(samples, n_boot=n_boot, seed=seed, pool_seeds=True)
    pooled = pooled[pooled["seeds"].astype(str).str.contains(",")]  # one-seed comparisons are in `boot`
    tables["bootstrap"] = pd.concat([boot, pooled], ignore_index=True) if len(pooled) else boot
    from clipo.analysis import process

    checked, unlabelled = process.load_process_samples(results, runs)
    if unlabelled:
        print(f"no process labels (samples.parquet written before the step checker): {', '.join(unlabelled)}")
    tables["process"] = process.process_table(checked, n_boot=n_boot, seed=seed)  # empty without step checks
    frames = []
    for source, selected in ((results, runs), (paper, None)):
        if source is None:
            continue
        try:
            frames.append(load_scores(source, selected))
        except FileNotFoundError as e:
            if selected is not None:  # runs named explicitly must have their scores
                raise
            print(f"no scores: {e}")
    if frames:
        scores = pd.concat(frames, ignore_index=True).drop_duplicates()
        for source, sub in scores.groupby("source", sort=True):
            tables[f"se_{source}"] = se_table(sub)
    return tables


def run_significance_command(
    results: str | Path,
    out: str | Path,
    paper: str | Path | None = PAPER,
    n_boot: int = 10_000,
    seed: int = 0,
    runs: list[str] | None = None,
) -> int:
    """`clipo significance`: write each table as CSV, Markdown and HTML under ``out``."""
    results, out = Path(results), Path(out)
    if not results.exists():
        raise FileNotFoundError(f"--results {results}: no such folder")
    tables = significance_tables(results, paper, n_boot, seed, runs)
    if tables["bootstrap"].empty:
        print(
            f"no comparison with per-sample records under {results}/eval/*/samples.parquet: "
            "bootstrap table is empty"
        )
    if not any(k.startswith("se_") for k in tables):
        print(f"no scores.csv under {results} nor paper scores: no standard-error table")
    from clipo.analysis.process import process_markdown

    for name, table in tables.items():
        md = {"bootstrap": bootstrap_markdown, "process": process_markdown}.get(name, se_markdown)(table)
        title = {"bootstrap": "Paired bootstrap 95% CI of every Δ",
                 "process": "Paired bootstrap 95% CI of every Δ of sound Pass@1 and of the lucky share"}.get(
            name, f"Binomial standard errors of every Δ ({name.removeprefix('se_')})")
        atomic_write(out / f"{name}.csv", lambda tmp, t=table: t.to_csv(tmp, index=False))
        atomic_write(out / f"{name}.md", lambda tmp, m=md: tmp.write_text(m))
        html.write_page(out / f"{name}.html", title, f"# {title}\n\n{md}")
        print(f"{name}: {len(table)} rows → {out / name}.{{csv,md,html}}")
    return 0
