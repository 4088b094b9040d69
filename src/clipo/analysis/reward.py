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

from clipo.analysis import curves, style
from clipo.analysis.registry import FIGURES
from clipo.errors import MissingInput
from clipo.runs import RunSpec

KEY = "reward/outcome"
VAL_KEY = "val/reward"


def reward_curves(settings: dict[RunSpec, dict[int, pd.DataFrame]], out_dir: str | Path,
                  alpha: float = curves.SMOOTHING) -> pd.DataFrame:
    """One panel per track, one line per setting (``settings``: setting → seed → metrics).

    Returns the plotted curves: metric (``KEY`` or ``VAL_KEY``), track, setting (legend label), method,
    clipo, tau, n_seeds_total and the columns of ``curves.seed_curve`` (step, raw, smooth, low, high,
    n_seeds); the validation curve is not smoothed (smooth = raw).
    """
    data = curves.setting_curves(settings, {KEY: alpha, VAL_KEY: 1.0})
    if not (data["metric"] == KEY).any():
        raise MissingInput(f"reward: no trained run's metrics.jsonl holds {KEY!r} with a 'step'")
    panels = [(track, key) for track in dict.fromkeys(data.loc[data["metric"] == KEY, "track"])
              for key in (KEY, VAL_KEY) if ((data["track"] == track) & (data["metric"] == key)).any()]
    with style.context():
        fig, axes = style.new_figure(max(style.FULL_WIDTH, style.COLUMN_WIDTH * len(panels)), 3.0,
                                     ncols=len(panels))
        for ax, (track, key) in zip(axes, panels):
            curves.plot_settings(ax, data[data["track"] == track], key, markers=key == VAL_KEY)
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
