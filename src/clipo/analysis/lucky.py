"""Lucky answers over training: the share of correct rollouts whose work is unsound
(``process/lucky_share`` in ``runs/<run_id>/metrics.jsonl``, clipo.data.stepcheck), one line per method and
CLIPO variant, seeds as a band; where runs log it, the same on the fixed validation prompts
(``val/lucky_share``) in a panel of its own, unsmoothed, as the reward figure draws ``val/reward``.

The paper's claim is that RLVR pays process-wrong but outcome-correct rollouts and that CLIPO steers the
policy away from them; on the mini track the steps can be checked, so this is that claim measured during
training. The trainer only measures it (the reward is the outcome). A step without a correct rollout has no
lucky share (null) and is skipped. Runs trained before the step checker do not log the keys: they are named
on the figure, and a run set where no run logs them has no figure (MissingInput says why).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from clipo.analysis import curves, style, vocab
from clipo.analysis.registry import FIGURES
from clipo.errors import MissingInput
from clipo.runs import RunSpec

KEY = "process/lucky_share"
VAL_KEY = "val/lucky_share"
PANELS = {KEY: "Training", VAL_KEY: "Validation"}


def _logs(by_seed: dict[int, pd.DataFrame], key: str) -> bool:
    return any(key in m.columns and m[key].notna().any() for m in by_seed.values())


def lucky_curves(settings: dict[RunSpec, dict[int, pd.DataFrame]], out_dir: str | Path,
                 alpha: float = curves.SMOOTHING) -> pd.DataFrame:
    """One row of panels per track (training, validation where logged; in %), one line per setting that logs
    ``KEY`` (``settings``: setting → seed → metrics). Returns the plotted curves (metric, track, setting,
    method, clipo, tau and the columns of ``curves.seed_curve``, in %; the validation curve unsmoothed);
    ``attrs['unlogged']`` lists the settings without ``KEY``."""
    logged = {s: by_seed for s, by_seed in settings.items() if _logs(by_seed, KEY)}
    unlogged = [s for s in settings if s not in logged]
    if not logged:
        raise MissingInput(f"lucky: no trained run's metrics.jsonl holds {KEY!r} (runs trained before the step "
                           "checker, or on a track without step chains, do not log it; retrain them to draw it)")
    curve = curves.setting_curves(logged, {KEY: alpha, VAL_KEY: 1.0})
    data = curve.assign(**{c: 100 * curve[c] for c in ("raw", "smooth", "low", "high")})
    tracks = sorted(set(data["track"]))
    data.attrs["unlogged"] = [f"{curves.setting_label(s, set())}, {vocab.seeds_label(settings[s])}" for s in unlogged]
    panels = [(track, key) for track in tracks for key in PANELS
              if ((data["track"] == track) & (data["metric"] == key)).any()]
    ncols = max(sum(t == track for t, _ in panels) for track in tracks)
    with style.context():
        fig, axes = style.new_figure(max(style.FULL_WIDTH, style.COLUMN_WIDTH * ncols), 3.0 * len(tracks),
                                     ncols=ncols, nrows=len(tracks))
        slots = {(track, key): tracks.index(track) * ncols + i
                 for track in tracks for i, key in enumerate(k for t, k in panels if t == track)}
        for i, ax in enumerate(axes):
            if i not in slots.values():
                ax.set_visible(False)
        for (track, key), slot in slots.items():
            ax = axes[slot]
            curves.plot_settings(ax, data[data["track"] == track], key, markers=key == VAL_KEY)
            ax.set_title(f"{PANELS[key]}: lucky share, {track} track")
            ax.set_xlabel("Training step")
            ax.set_ylabel("Lucky share of correct answers (%)")
        if unlogged:
            fig.suptitle(f"Not logged ({KEY} absent: trained before the step checker):\n"
                         + textwrap.fill("; ".join(data.attrs["unlogged"]), 120), fontsize="small")
        curves.figure_legend(fig, axes, ncols=2)
        style.save(fig, Path(out_dir) / FIGURES["lucky"].stem)
    return data


def draw(results: Path, out: Path, *, runs: list[str] | None = None, **_) -> pd.DataFrame:
    """The lucky figure of a run set: every trained run with metrics (among ``runs``)."""
    metrics = curves.run_metrics(results / "runs", runs)
    if not metrics:
        raise MissingInput(f"lucky: no metrics.jsonl under {results / 'runs'}/*/ (written by training runs)")
    data = lucky_curves(curves.by_setting(metrics), out)
    if data.attrs["unlogged"]:
        print(f"lucky: no {KEY} in the metrics of {'; '.join(data.attrs['unlogged'])} "
              "(trained before the step checker)")
    return data
