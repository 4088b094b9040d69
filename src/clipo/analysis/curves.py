"""Per-step training curves from ``runs/<run_id>/metrics.jsonl`` (Figure 5, the reward and lucky figures).

A *setting* is a run id without its seed; its seeds are drawn as one curve: the mean of the seeds'
smoothed curves, a faint line of the seeds' mean raw values, and a band from the lowest to the highest
smoothed seed curve (min-max rather than ±sd: with the two or three seeds a setting has, an sd says
little, while min-max shows every seed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from clipo import records
from clipo.analysis import style, vocab
from clipo.errors import ConfigError
from clipo.runs import RunSpec

SMOOTHING = 0.3
"""Weight of the newest value in the exponential moving average."""


def read_metrics(path: str | Path) -> pd.DataFrame:
    """metrics.jsonl as a frame (``clipo.records.read_metrics``: a torn last line is skipped)."""
    return pd.DataFrame.from_records(records.read_metrics(path))


def smooth(values: pd.Series, alpha: float = SMOOTHING) -> pd.Series:
    """Light exponential moving average (bias-corrected, so the first points are not pulled to 0)."""
    return values.ewm(alpha=alpha, adjust=True).mean()


def run_metrics(runs_dir: str | Path, runs: list[str] | None = None) -> dict[RunSpec, pd.DataFrame]:
    """Every run folder with a metrics.jsonl (among ``runs``) whose name is a run id → its metrics."""
    out = {}
    for path in records.run_files(runs_dir, records.METRICS_FILE, runs):
        try:
            spec = RunSpec.parse(path.parent.name)
        except ConfigError:
            continue
        out[spec] = read_metrics(path)
    return out


def by_setting(metrics: dict[RunSpec, pd.DataFrame]) -> dict[RunSpec, dict[int, pd.DataFrame]]:
    """Runs grouped by setting (the run with seed 0 as key) → seed → metrics, in sorted order."""
    out: dict[RunSpec, dict[int, pd.DataFrame]] = {}
    for spec in sorted(metrics):
        out.setdefault(replace(spec, seed=0), {})[spec.seed] = metrics[spec]
    return out


def seed_curve(by_seed: dict[int, pd.DataFrame], key: str, alpha: float = SMOOTHING) -> pd.DataFrame | None:
    """One setting's curve of metric ``key``: step, raw (seed mean), smooth (mean of the seeds' EMAs),
    low/high (min/max of the seeds' EMAs), n_seeds (seeds with a value so far); None without values.

    Steps where the metric is null (e.g. no group with two correct rollouts) are skipped per seed; a
    seed's EMA carries over such gaps, so the band never narrows just because one seed has no value.
    """
    raw, smoothed = {}, {}
    for seed, m in sorted(by_seed.items()):
        if key not in m.columns or "step" not in m.columns:
            continue
        d = m[["step", key]].dropna().sort_values("step")
        if len(d):
            values = pd.Series(d[key].astype(float).to_numpy(), index=d["step"].to_numpy())
            raw[seed], smoothed[seed] = values, smooth(values, alpha)
    if not raw:
        return None
    raw_wide = pd.DataFrame(raw).sort_index()
    smooth_wide = pd.DataFrame(smoothed).sort_index().ffill()
    return pd.DataFrame({
        "step": raw_wide.index.to_numpy(),
        "raw": raw_wide.mean(axis=1).to_numpy(),
        "smooth": smooth_wide.mean(axis=1).to_numpy(),
        "low": smooth_wide.min(axis=1).to_numpy(),
        "high": smooth_wide.max(axis=1).to_numpy(),
        "n_seeds": smooth_wide.notna().sum(axis=1).to_numpy(),
    })


def plot_curve(ax, curve: pd.DataFrame, colour: str, label: str, on_top: bool = False,
               markers: bool = False) -> None:
    """Faint raw line, solid smoothed line, and the seed band where more than one seed has a value;
    ``on_top`` keeps a baseline visible where other lines run over it; ``markers`` marks the points of
    a sparse curve (one every few steps). Steps are whole numbers."""
    from matplotlib.ticker import MaxNLocator

    z = 3 if on_top else 2
    ax.plot(curve["step"], curve["raw"], color=colour, alpha=0.25, linewidth=0.6, zorder=z)
    ax.plot(curve["step"], curve["smooth"], color=colour, label=label, zorder=z + 0.5,
            marker="o" if markers else None, markersize=3)
    several = curve["n_seeds"].to_numpy() > 1
    if several.any():
        ax.fill_between(curve["step"], curve["low"], curve["high"], where=several, color=colour, alpha=0.18,
                        linewidth=0, zorder=z - 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))



def figure_legend(fig, axes, ncols: int) -> None:
    """One legend below all panels, each series once (a series may be absent from some panels)."""
    entries = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(name, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncols=min(ncols, len(entries)))


def setting_label(setting: RunSpec, varies: set[str]) -> str:
    """The variant in words, plus the model or group size where they differ within the panel."""
    parts = [vocab.variant_label(setting.method, setting.clipo, setting.tau)]
    if "model" in varies:
        parts.append(setting.model)
    if "group_size" in varies:
        parts.append(f"G = {setting.group_size}")
    return ", ".join(parts)


def setting_curves(settings: dict[RunSpec, dict[int, pd.DataFrame]], keys: dict[str, float]) -> pd.DataFrame:
    """The seed curve of each metric in ``keys`` (key → smoothing weight) for every setting that logs it,
    in the figures' order: per track, the base methods first, then CLIPO variants by loss and τ.

    Columns: metric, track, setting (legend label), method, clipo, tau, n_seeds_total and those of
    ``seed_curve``. The reward and lucky figures draw from it, so their lines agree in order and colour.
    """
    rows = []
    for track in sorted({s.track for s in settings}):
        in_track = sorted((s for s in settings if s.track == track),
                          key=lambda s: (s.clipo != "none", s.method, vocab.variant_order(s.clipo, s.tau),
                                         s.model, s.group_size))
        varies = {axis for axis in ("model", "group_size") if len({getattr(s, axis) for s in in_track}) > 1}
        for setting in in_track:
            name = f"{setting_label(setting, varies)}, {vocab.seeds_label(settings[setting])}"
            for key, smoothing in keys.items():
                curve = seed_curve(settings[setting], key, smoothing)
                if curve is not None:
                    rows.append(curve.assign(metric=key, track=track, setting=name, method=setting.method,
                                             clipo=setting.clipo, tau=setting.tau,
                                             n_seeds_total=len(settings[setting])))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["metric", "track", "setting"])


def plot_settings(ax, in_track: pd.DataFrame, key: str, markers: bool = False) -> None:
    """Draw ``key``'s curve of every setting of one track; a setting keeps its colour in every panel (the
    base method, when the track has one, first and on top)."""
    names = list(dict.fromkeys(in_track["setting"]))
    baseline = in_track["clipo"].iloc[0] == "none"
    colours = dict(zip(names, style.series_colours(len(names), baseline_first=baseline)))
    d = in_track[in_track["metric"] == key]
    for name in dict.fromkeys(d["setting"]):
        plot_curve(ax, d[d["setting"] == name], colours[name], name, on_top=baseline and name == names[0],
                   markers=markers)
