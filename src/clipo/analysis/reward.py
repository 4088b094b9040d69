"""The training reward per step (``reward/outcome`` in ``runs/<run_id>/metrics.jsonl``: the fraction of
correct rollouts), one line per method and CLIPO variant, seeds as a band: the first check of any RL
run (does the reward rise, do the variants train alike). Where runs log a validation reward
(``val/reward``: fixed prompts and random draws, clipo.mini.train.validate) it gets a panel of its own,
unsmoothed: each step's rollouts are new prompts, and which prompts come up moves the training reward
as much as many steps of learning, while the validation curve moves with the policy alone.
``reward_curves`` draws both, writes PNG + PDF and returns the curves.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipo.analysis import curves, style, vocab
from clipo.analysis.registry import FIGURES
from clipo.errors import MissingInput
from clipo.runs import RunSpec

KEY = "reward/outcome"
VAL_KEY = "val/reward"


def setting_label(setting: RunSpec, varies: set[str]) -> str:
    """The variant in words, plus the model or group size where they differ within the panel."""
    parts = [vocab.variant_label(setting.method, setting.clipo, setting.tau)]
    if "model" in varies:
        parts.append(setting.model)
    if "group_size" in varies:
        parts.append(f"G = {setting.group_size}")
    return ", ".join(parts)


def reward_curves(settings: dict[RunSpec, dict[int, pd.DataFrame]], out_dir: str | Path,
                  alpha: float = curves.SMOOTHING) -> pd.DataFrame:
    """One panel per track, one line per setting (``settings``: setting → seed → metrics).

    Returns the plotted curves: metric (``KEY`` or ``VAL_KEY``), track, setting (legend label), method,
    clipo, tau, n_seeds_total and the columns of ``curves.seed_curve`` (step, raw, smooth, low, high,
    n_seeds); the validation curve is not smoothed (smooth = raw).
    """
    rows = []
    for track in sorted({s.track for s in settings}):
        in_track = sorted((s for s in settings if s.track == track),
                          key=lambda s: (s.clipo != "none", s.method, vocab.variant_order(s.clipo, s.tau),
                                         s.model, s.group_size))
        varies = {axis for axis in ("model", "group_size") if len({getattr(s, axis) for s in in_track}) > 1}
        for setting in in_track:
            name = f"{setting_label(setting, varies)}, {vocab.seeds_label(settings[setting])}"
            for key, smoothing in ((KEY, alpha), (VAL_KEY, 1.0)):
                curve = curves.seed_curve(settings[setting], key, smoothing)
                if curve is not None:
                    rows.append(curve.assign(metric=key, track=track, setting=name, method=setting.method,
                                             clipo=setting.clipo, tau=setting.tau,
                                             n_seeds_total=len(settings[setting])))
    data = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["metric"])
    if not (data["metric"] == KEY).any():
        raise MissingInput(f"reward: no trained run's metrics.jsonl holds {KEY!r} with a 'step'")
    panels = [(track, key) for track in dict.fromkeys(data.loc[data["metric"] == KEY, "track"])
              for key in (KEY, VAL_KEY) if ((data["track"] == track) & (data["metric"] == key)).any()]
    with style.context():
        fig, axes = style.new_figure(max(style.FULL_WIDTH, style.COLUMN_WIDTH * len(panels)), 3.0,
                                     ncols=len(panels))
        for ax, (track, key) in zip(axes, panels):
            in_track = data[data["track"] == track]
            names = list(dict.fromkeys(in_track["setting"]))  # the same colour per setting in both panels
            baseline = in_track.drop_duplicates("setting")["clipo"].iloc[0] == "none"
            colours = dict(zip(names, style.series_colours(len(names), baseline_first=baseline)))
            d = in_track[in_track["metric"] == key]
            for name in dict.fromkeys(d["setting"]):
                curves.plot_curve(ax, d[d["setting"] == name], colours[name], name,
                                  on_top=baseline and name == names[0], markers=key == VAL_KEY)
            ax.set_title(f"{'Training' if key == KEY else 'Validation'} reward, {track} track")
            ax.set_xlabel("Training step")
        axes[0].set_ylabel("Outcome reward (fraction correct)")
        curves.figure_legend(fig, axes, ncols=2)
        style.save(fig, Path(out_dir) / FIGURES["reward"].stem)
    return data


def draw(results: Path, out: Path, *, runs: list[str] | None = None, **_) -> pd.DataFrame:
    """The reward figure of a run set: every trained run with metrics (among ``runs``)."""
    metrics = curves.run_metrics(results / "runs", runs)
    if not metrics:
        raise MissingInput(f"reward: no metrics.jsonl under {results / 'runs'}/*/ (written by training runs)")
    return reward_curves(curves.by_setting(metrics), out)
