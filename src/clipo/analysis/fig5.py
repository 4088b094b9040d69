"""Figure 5: mean within-group cosine similarity of the contrastive head's embeddings vs training step,
for positive (correct–correct), negative (incorrect–incorrect) and cross (correct–incorrect) pairs, one
line per CLIPO variant and τ, seeds as a band (``runs/<run_id>/metrics.jsonl``, keys ``clipo/cos_*``).

The paper plots only positive pairs; negative and cross pairs show whether the head separates correct
from incorrect rollouts or pulls every rollout of a prompt together (collapse: all three near 1).
``fig5`` draws it, writes PNG + PDF and returns the curves.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from clipo.analysis import curves, style, vocab
from clipo.analysis.registry import FIGURES
from clipo.errors import ConfigError, MissingInput
from clipo.runs import RunSpec

PAIRS = {
    "positive": ("clipo/cos_pos", "Positive pairs (correct–correct)"),
    "negative": ("clipo/cos_neg", "Negative pairs (incorrect–incorrect)"),
    "cross": ("clipo/cos_cross", "Cross pairs (correct–incorrect)"),
}
"""Pair kind → (metrics.jsonl key, panel title)."""


def family_key(spec: RunSpec) -> RunSpec:
    """What the runs of one Figure 5 share: track, model, method, group size (not variant, τ or seed)."""
    return replace(spec, clipo="none", tau=None, seed=0)


def clipo_family(
    runs_dir: str | Path, run: str | None = None, runs: list[str] | None = None
) -> dict[RunSpec, dict[int, pd.DataFrame]]:
    """Setting → seed → metrics for the CLIPO runs of one family: ``run``'s, else the one with most
    settings (among ``runs``)."""
    metrics = curves.run_metrics(runs_dir, runs)
    settings = curves.by_setting({s: m for s, m in metrics.items() if s.clipo != "none"})
    families: dict[RunSpec, dict[RunSpec, dict[int, pd.DataFrame]]] = {}
    for setting, seeds in settings.items():
        families.setdefault(family_key(setting), {})[setting] = seeds
    if run is not None:
        spec = RunSpec.parse(run)
        if spec.clipo == "none":
            raise ConfigError(f"--run {run}: CLIPO is off in that run, it has no head embeddings to compare")
        family = families.get(family_key(spec))
        if not family:
            raise MissingInput(f"fig5: no metrics.jsonl for run {run} under {runs_dir}")
        return family
    if not families:
        raise MissingInput(f"fig5: no CLIPO run with metrics.jsonl under {runs_dir}/*/")
    return max(families.values(), key=len)


def fig5(settings: dict[RunSpec, dict[int, pd.DataFrame]], out_dir: str | Path,
         alpha: float = curves.SMOOTHING) -> pd.DataFrame:
    """One panel per pair kind present, one line per setting (``settings``: setting → seed → metrics).

    Returns the plotted curves: pair, setting (legend label), clipo, tau, n_seeds_total and the columns
    of ``curves.seed_curve`` (step, raw, smooth, low, high, n_seeds).
    """
    order = sorted(settings, key=lambda s: vocab.variant_order(s.clipo, s.tau))
    rows = []
    for pair, (key, _) in PAIRS.items():
        for setting in order:
            curve = curves.seed_curve(settings[setting], key, alpha)
            if curve is None:
                continue
            seeds = vocab.seeds_label(settings[setting])
            name = f"{vocab.clipo_label(setting.clipo, setting.tau)}, {seeds}"
            rows.append(curve.assign(pair=pair, setting=name, clipo=setting.clipo, tau=setting.tau,
                                     n_seeds_total=len(settings[setting])))
    if not rows:
        keys = ", ".join(repr(k) for k, _ in PAIRS.values())
        raise MissingInput(f"fig5: the metrics of the runs hold no value of {keys} with a 'step' (they are "
                           "null at steps where no group has the pair)")
    data = pd.concat(rows, ignore_index=True)
    pairs = [p for p in PAIRS if p in set(data["pair"])]
    setting_names = list(dict.fromkeys(data["setting"]))
    colour = dict(zip(setting_names, style.series_colours(len(setting_names))))
    first = order[0]
    with style.context():
        fig, axes = style.new_figure(style.FULL_WIDTH, 2.5, ncols=len(pairs), sharey=True)
        for ax, pair in zip(axes, pairs):
            d = data[data["pair"] == pair]
            for name in setting_names:
                curve = d[d["setting"] == name]
                if len(curve):
                    curves.plot_curve(ax, curve, colour[name], name)
            ax.set_title(PAIRS[pair][1])
            ax.set_xlabel("Training step")
        axes[0].set_ylabel("Mean cosine similarity")
        curves.figure_legend(fig, axes, ncols=3)
        fig.suptitle("How alike the contrastive head makes the rollouts of one prompt, per pair kind\n"
                     f"{vocab.method_label(first.method)} + CLIPO; {first.track} track, {first.model}, "
                     f"G = {first.group_size}")
        style.save(fig, Path(out_dir) / FIGURES["fig5"].stem)
    return data


def draw(results: Path, out: Path, *, run: str | None = None, runs: list[str] | None = None,
         **_) -> pd.DataFrame:
    """Figure 5 of a run set: the CLIPO runs of ``run``'s family, else of the family with most settings."""
    return fig5(clipo_family(results / "runs", run, runs), out)
