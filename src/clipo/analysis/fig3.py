"""Figure 3: gain of each contrastive loss (InfoNCE, SupCon, SoftNN) over GRPO on the track's averages,
from Table 13/14-shaped scores (``scores.csv``), with paired-bootstrap intervals from the per-sample
records (``samples.parquet``) wherever they exist. ``fig3`` draws it, writes PNG + PDF and returns the
data it plotted, so what is on the page can be checked against the inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipo.analysis import style, vocab
from clipo.analysis.registry import FIGURES
from clipo.data.registry import AVERAGE_NAMES
from clipo.errors import MissingInput
from clipo.methods import TRACKS

def _averages(scores: pd.DataFrame, track: str) -> pd.Series:
    """average name → unweighted mean of its member benchmarks, for one run's scores."""
    per_bench = scores.drop_duplicates("benchmark").set_index("benchmark")["score"]
    return pd.Series(vocab.group_means(per_bench, track), dtype=float)


def _pick_tau(cands: pd.DataFrame, track: str) -> float | None:
    """The τ shared by most losses (the figure compares losses at equal settings); ties → track default."""
    taus = cands.dropna(subset=["tau"]).groupby("tau")["clipo"].nunique()
    if taus.empty:
        return None
    best = taus[taus == taus.max()].index
    default = TRACKS[track].clipo_temperature if track in TRACKS else None
    return float(default) if default in set(best) else float(min(best))


def loss_gains(
    scores: pd.DataFrame,
    track: str,
    model: str | None = None,
    method: str = "grpo",
    tau: float | None = None,
    group_size: int | None = None,
) -> pd.DataFrame:
    """Gain of each contrastive loss over ``method`` on the track's averages, from tidy scores.

    Picks one model (default: the track's most frequent), the track's default group size when present,
    and one τ for all losses (``_pick_tau``). A loss's gain is averaged over the seeds it shares with the
    base runs. Returns columns loss, average, gain, score, base_score, n_seeds, tau, group_size, model.
    """
    s = scores[(scores["track"] == track) & (scores["method"] == method)]
    s = s[s["clipo"].isin(("none", *vocab.losses()))]
    if model is None and len(s):
        model = s.groupby("model")["clipo"].nunique().idxmax()
    s = s[s["model"] == model]
    if group_size is None and len(s):
        default = TRACKS[track].rollout_n if track in TRACKS else None
        group_size = default if default in set(s["group_size"]) else int(s["group_size"].mode().iloc[0])
    s = s[s["group_size"] == group_size]
    base = s[s["clipo"] == "none"]
    cands = s[s["clipo"] != "none"]
    if tau is None:
        tau = _pick_tau(cands, track)
    cands = cands[np.isclose(cands["tau"], tau)] if tau is not None else cands.iloc[0:0]
    if base.empty or cands.empty:
        raise MissingInput(
            f"fig3: need {method} without CLIPO and with at least one of {', '.join(vocab.losses())} "
            f"on track {track} (model {model}, G={group_size}); found "
            f"{'no base run' if base.empty else 'no CLIPO run'}"
        )
    rows = []
    for loss in vocab.losses():
        runs = cands[cands["clipo"] == loss]
        seeds = sorted(set(runs["seed"]) & set(base["seed"]))  # gains pair runs of equal seed
        if not seeds:
            continue
        avg = pd.DataFrame([_averages(runs[runs["seed"] == s], track) for s in seeds])
        base_avg = pd.DataFrame([_averages(base[base["seed"] == s], track) for s in seeds])
        for name in avg.columns.intersection(base_avg.columns):
            gains = avg[name] - base_avg[name]
            rows.append(
                {
                    "loss": loss,
                    "average": name,
                    "gain": float(gains.mean()),
                    "score": float(avg[name].mean()),
                    "base_score": float(base_avg[name].mean()),
                    "n_seeds": len(seeds),
                    "tau": tau,
                    "group_size": group_size,
                    "model": model,
                }
            )
    if not rows:
        raise MissingInput(f"fig3: no average of track {track} has every member benchmark in both runs")
    return pd.DataFrame(rows)


def fig3(
    scores: pd.DataFrame,
    out_dir: str | Path,
    track: str | None = None,
    model: str | None = None,
    method: str = "grpo",
    tau: float | None = None,
    errors: pd.DataFrame | None = None,
    figure: str = "fig3",
    source: str = "",
    interval_name: str = "95% bootstrap intervals",
    why_no_intervals: str = "no per-sample records",
    value_labels: bool | None = None,
    label_format: str = "%+.1f",
) -> pd.DataFrame:
    """Grouped bars: one group per average, one bar per loss; writes ``FIGURES[figure].stem``.

    ``errors`` (loss, average, model, group_size, tau, ci_low, ci_high; from ``gain_errors``) draws each
    gain's interval as a whisker, named ``interval_name`` in the title. Without any interval the bars
    carry value labels (``label_format``) and the title names ``why_no_intervals``, so a bare number
    never passes for a measured effect; ``value_labels`` forces labels on (placed beyond the whiskers)
    or off. ``source`` starts the title ('Paper'). Returns the plotted gains (with ci_low/ci_high).
    """
    track = track or default_track(scores)
    data = loss_gains(scores, track, model=model, method=method, tau=tau)
    if errors is not None and len(errors):
        keys = [k for k in ("loss", "average", "model", "group_size", "tau") if k in errors.columns]
        data = data.merge(errors[[*keys, "ci_low", "ci_high"]], on=keys, how="left")
    with_intervals = "ci_low" in data and bool(data["ci_low"].notna().any())
    averages = [a for a in [*AVERAGE_NAMES.get(track, {}).values(), "Avg."] if a in set(data["average"])]
    losses = [loss for loss in vocab.losses() if loss in set(data["loss"])]
    width = 0.8 / len(losses)
    with style.context():
        fig, (ax,) = style.new_figure(style.COLUMN_WIDTH, 2.3)
        for i, loss in enumerate(losses):
            d = data[data["loss"] == loss].set_index("average").reindex(averages)
            x = np.arange(len(averages)) + (i - (len(losses) - 1) / 2) * width
            yerr = None
            if with_intervals:
                yerr = np.vstack([(d["gain"] - d["ci_low"]).fillna(0), (d["ci_high"] - d["gain"]).fillna(0)])
            n_seeds = int(d["n_seeds"].max())
            seeds = f" ({n_seeds} seeds)" if n_seeds > 1 else ""
            ax.bar(x, d["gain"], width * 0.92, yerr=yerr, capsize=2, error_kw={"linewidth": 0.7},
                   label=f"{vocab.loss_label(loss)}{seeds}", color=style.OKABE_ITO[i])
            if value_labels or (value_labels is None and not with_intervals):
                _label_bars(ax, x, d, label_format)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(np.arange(len(averages)), averages)
        ax.set_ylabel(f"Gain over {method.upper()} (pp)")
        where = f"{source}, track {track}" if source else f"Track {track}"
        ax.set_title(f"{where}: " + (interval_name if with_intervals else f"no intervals ({why_no_intervals})"),
                     loc="left")
        ax.grid(axis="x", visible=False)
        ax.margins(y=0.18)
        ax.legend(ncols=len(losses), loc="upper center", bbox_to_anchor=(0.5, 1.3))
        style.save(fig, Path(out_dir) / FIGURES[figure].stem)
    return data


def _label_bars(ax, x: np.ndarray, bars: pd.DataFrame, label_format: str) -> None:
    """Each bar's gain written just beyond the end of its whisker (or of the bar, without one), with a
    true minus sign like the axis ticks."""
    for xi, row in zip(x, bars.itertuples()):
        if pd.isna(row.gain):
            continue
        up = row.gain >= 0
        end = getattr(row, "ci_high" if up else "ci_low", np.nan)
        end = row.gain if pd.isna(end) else end
        ax.annotate((label_format % row.gain).replace("-", "−"), (xi, end), xytext=(0, 1.5 if up else -1.5),
                    textcoords="offset points", ha="center", va="bottom" if up else "top", fontsize=5)


def gain_errors(samples: pd.DataFrame, track: str, n_boot: int = 10_000) -> pd.DataFrame:
    """Bootstrap CI of each loss's gain over GRPO (seeds pooled) as fig3 error bars: loss, average, ci_*."""
    from clipo.analysis.stats import bootstrap_table

    table = bootstrap_table(samples, n_boot=n_boot, pool_seeds=True)
    table = table[
        (table["track"] == track)
        & (table["method"] == "grpo")
        & (table["reference"] == "none")
        & table["clipo"].isin(vocab.losses())
        & table["is_average"]
    ]
    table = table.rename(columns={"clipo": "loss", "benchmark": "average"})
    return table[["loss", "average", "model", "group_size", "tau", "ci_low", "ci_high"]]


def default_track(scores: pd.DataFrame) -> str:
    """The track a figure of mixed scores shows: I, then II, then mini."""
    tracks = [t for t in ("I", "II", "mini") if t in set(scores["track"])] or sorted(set(scores["track"]))
    if not tracks:
        raise MissingInput("fig3: the scores are empty")
    return tracks[0]


def draw(results: Path, out: Path, *, scores: pd.DataFrame | None = None, track: str | None = None,
         runs: list[str] | None = None, intervals: bool = True, **_) -> pd.DataFrame:
    """Figure 3 of a run set, with bootstrap intervals wherever its per-sample records allow (unless
    ``intervals`` is off); ``scores`` replaces the run set's (``clipo figures --source paper``)."""
    from clipo.analysis.stats import load_samples

    if scores is not None:
        return fig3(scores, out, track=track, source="Paper", why_no_intervals="the paper reports none",
                    label_format="%+.2f")
    from clipo.analysis.results import load_scores

    try:
        scores = load_scores(results, runs)
    except FileNotFoundError as e:
        raise MissingInput(f"fig3: {e}") from None
    track = track or default_track(scores)
    samples = load_samples(results, runs) if intervals else None
    if samples is None:
        return fig3(scores, out, track=track, why_no_intervals="not asked for")
    if samples.empty:
        print(f"fig3: no per-sample records under {results}/eval/*/samples.parquet; drawn without intervals")
        return fig3(scores, out, track=track)
    return fig3(scores, out, track=track, errors=gain_errors(samples, track))
