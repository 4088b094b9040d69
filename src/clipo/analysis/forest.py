"""Forest plot of every Δ (CLIPO variant minus its base method; the fixed-head ablation minus learned-head
CLIPO) per benchmark and average, with its 95% paired-bootstrap interval and a line at 0.

The numbers are those of ``clipo significance`` (``clipo.analysis.stats.bootstrap_table``: each seed
alone, and the seeds of a setting pooled where it has several), so the plot and ``bootstrap.csv`` agree.
``forest`` draws it, writes PNG + PDF and returns the rows it plotted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipo.analysis import stats, style, vocab
from clipo.analysis.registry import FIGURES
from clipo.data.registry import benchmarks
from clipo.errors import MissingInput

PANELS_PER_ROW = 5
ROW_HEIGHT = 0.16
"""Inches per comparison row."""


def bootstrap_rows(samples: pd.DataFrame, n_boot: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """The rows of ``clipo significance``'s bootstrap table: every comparison per seed, plus seeds pooled
    where a setting has several; column ``pooled`` marks the latter."""
    single = stats.bootstrap_table(samples, n_boot=n_boot, seed=seed)
    pooled = stats.bootstrap_table(samples, n_boot=n_boot, seed=seed, pool_seeds=True)
    pooled = pooled[pooled["seeds"].astype(str).str.contains(",")]
    return pd.concat([single.assign(pooled=False), pooled.assign(pooled=True)], ignore_index=True)


def row_label(r, varies: set[str]) -> str:
    """A comparison in words: 'InfoNCE (τ = 0.05), seed 0', '... − learned head, 3 seeds (0, 1, 2) pooled'."""
    tau = None if pd.isna(r.tau) else float(r.tau)
    name = (vocab.variant_label(r.method, r.clipo, tau) if "method" in varies
            else vocab.clipo_label(r.clipo, tau))
    if r.reference != "none":
        name += " − learned head"
    extra = [str(r.model)] if "model" in varies else []
    extra += [f"G = {r.group_size}"] if "group_size" in varies else []
    seeds = vocab.seeds_label(str(r.seeds).split(","))
    return ", ".join([name, *extra, seeds + (" pooled" if r.pooled else "")])


def forest(table: pd.DataFrame, out_dir: str | Path, track: str) -> pd.DataFrame:
    """One panel per benchmark and average of ``track``, one row per comparison (``table``: rows of
    ``bootstrap_rows``). Returns the plotted rows with their label ('row') in plotting order."""
    t = table[table["track"] == track].copy()
    if t.empty:
        raise MissingInput(f"forest: no comparison with per-sample records on track {track}")
    varies = {axis for axis in ("method", "model", "group_size") if t[axis].nunique() > 1}
    t["row"] = [row_label(r, varies) for r in t.itertuples()]
    t["setting"] = [f"{r.method} {r.clipo} {r.tau} {r.reference}" for r in t.itertuples()]
    order = sorted(range(len(t)), key=lambda i: (
        t["reference"].iat[i] != "none", t["method"].iat[i], vocab.variant_order(t["clipo"].iat[i], t["tau"].iat[i]),
        t["model"].iat[i], t["group_size"].iat[i], bool(t["pooled"].iat[i]), str(t["seeds"].iat[i])))
    t = t.iloc[order]
    rows = list(dict.fromkeys(t["row"]))
    settings = list(dict.fromkeys(t["setting"]))
    colour = dict(zip(settings, style.series_colours(len(settings))))
    known = [*benchmarks(track), *stats.AVERAGES]
    panels = [b for b in known if b in set(t["benchmark"])] + sorted(set(t["benchmark"]) - set(known))
    ncols = min(PANELS_PER_ROW, len(panels))
    nrows = -(-len(panels) // ncols)
    y = {name: i for i, name in enumerate(rows)}
    with style.context():
        fig, axes = style.new_figure(style.FULL_WIDTH, nrows * (0.7 + ROW_HEIGHT * len(rows)) + 0.3,
                                     ncols=ncols, nrows=nrows, sharey=True)
        for ax, bench in zip(axes, panels):
            d = t[t["benchmark"] == bench]
            ax.axvline(0, color="black", linewidth=0.6)
            for r in d.itertuples():
                c = colour[r.setting]
                ax.plot([r.ci_low, r.ci_high], [y[r.row]] * 2, color=c, linewidth=1.0)
                ax.plot(r.delta, y[r.row], marker="D" if r.pooled else "o", markersize=3.5 if r.pooled else 3,
                        color=c, markerfacecolor=c if r.significant else "white", markeredgewidth=0.8)
            ax.set_title(bench, fontweight="bold" if bench in stats.AVERAGES else "normal")
            ax.grid(axis="y", visible=False)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        axes[0].set_yticks(np.arange(len(rows)), rows)
        axes[0].set_ylim(len(rows) - 0.5, -0.5)
        for ax in axes[::ncols]:
            for tick in ax.get_yticklabels():
                tick.set_fontweight("bold" if tick.get_text().endswith(" pooled") else "normal")
        fig.supxlabel("Δ (percentage points)", fontsize=8)
        fig.suptitle(f"Every Δ with its 95% paired-bootstrap interval, {track} track\n"
                     "circle: one seed; diamond: seeds pooled; filled: the interval excludes 0")
        style.save(fig, Path(out_dir) / FIGURES["forest"].stem)
    return t.reset_index(drop=True)


def draw(results: Path, out: Path, *, track: str | None = None, runs: list[str] | None = None,
         **_) -> pd.DataFrame:
    """The forest plot of a run set's per-sample records (among ``runs``), on ``track`` (default: the
    first of I, II, mini that has a comparison)."""
    samples = stats.load_samples(results, runs)
    if samples.empty:
        raise MissingInput(f"forest: no per-sample records under {results}/eval/*/samples.parquet")
    table = bootstrap_rows(samples)
    if table.empty:
        raise MissingInput(f"forest: no CLIPO run under {results}/eval/ has per-sample records together with "
                           "its base run's")
    tracks = [t for t in ("I", "II", "mini") if t in set(table["track"])] or sorted(set(table["track"]))
    return forest(table, out, track or tracks[0])
