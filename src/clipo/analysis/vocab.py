"""The analysis vocabulary: how a method, a loss and a run are named, in which order they are listed,
and what "the mean over a benchmark group" is. Tables, figures, the report and the statistics all read
it from here, and it reads the names from the registries of ``clipo.methods``, so a registered method
or loss shows up everywhere without an edit to the analysis code.

Two styles of name, each for one kind of output:

* short, as the paper's tables print it: ``GRPO+InfoNCE-fixed`` (tables, report, significance);
* long, for figure legends and titles: ``GRPO + CLIPO InfoNCE, fixed head (τ = 0.05)``.

A reader of a figure should never see a raw run id like ``mini_mini-base_grpo_infonce_tau0.05_g8_s0_mini``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from clipo.data.registry import benchmark_groups, get_dataset
from clipo.methods import CLIPO_VARIANTS, CONTRASTIVE_LOSSES, METHODS, get_track
from clipo.runs import RunSpec

BASE = "base"
"""The pseudo-method of the untrained model."""
BASE_LABEL = "Base Model"
FIXED = "-fixed"
"""Suffix of a fixed-head ablation variant (``infonce-fixed``)."""


def _missing(tau) -> bool:
    return tau is None or (isinstance(tau, float) and math.isnan(tau))


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------
def methods() -> list[str]:
    """The registered methods in their table order (grpo, gspo, dapo, gmpo, then any added)."""
    return list(METHODS)


def losses() -> list[str]:
    """The registered contrastive losses in their table order (infonce, supcon, softnn, then any added)."""
    return list(CONTRASTIVE_LOSSES)


def method_label(method: str) -> str:
    """'grpo' → 'GRPO', 'base' → 'Base Model'."""
    if method == BASE:
        return BASE_LABEL
    return METHODS[method].label if method in METHODS else method.upper()


def loss_of(clipo: str) -> str:
    """The loss of a CLIPO variant: 'infonce-fixed' → 'infonce'."""
    return clipo.removesuffix(FIXED)


def is_fixed(clipo: str) -> bool:
    return clipo.endswith(FIXED)


def loss_label(clipo: str) -> str:
    """'infonce' or 'infonce-fixed' → 'InfoNCE' (the loss only)."""
    loss = loss_of(clipo)
    return CONTRASTIVE_LOSSES[loss].label if loss in CONTRASTIVE_LOSSES else loss


def variant_name(method: str, clipo: str, tau=None) -> str:
    """Short style: 'grpo', 'infonce-fixed' → 'GRPO+InfoNCE-fixed'; with ``tau`` ' τ=0.05' is added."""
    name = method_label(method)
    if clipo != "none":
        name += f"+{loss_label(clipo)}{FIXED if is_fixed(clipo) else ''}"
    return name if _missing(tau) else f"{name} τ={float(tau):g}"


def clipo_label(clipo: str, tau: float | None = None) -> str:
    """Long style of a variant alone: 'InfoNCE (τ = 0.05)', 'InfoNCE, fixed head (τ = 0.05)', 'no CLIPO'."""
    if clipo == "none":
        return "no CLIPO"
    head = ", fixed head" if is_fixed(clipo) else ""
    temp = "" if _missing(tau) else f" (τ = {float(tau):g})"
    return f"{loss_label(clipo)}{head}{temp}"


def variant_label(method: str, clipo: str, tau: float | None = None) -> str:
    """Long style: 'GRPO', 'GRPO + CLIPO InfoNCE (τ = 0.05)', 'GRPO + CLIPO InfoNCE, fixed head (τ = 0.05)'."""
    name = method_label(method)
    return name if clipo == "none" else f"{name} + CLIPO {clipo_label(clipo, tau)}"


def reference_variant(clipo: str) -> str | None:
    """The variant a CLIPO variant is compared with: its base method ('none'), or learned-head CLIPO for
    a fixed head; None for 'none'."""
    if clipo == "none":
        return None
    return loss_of(clipo) if is_fixed(clipo) else "none"


def run_title(spec: RunSpec) -> str:
    """A run in words: 'GRPO + CLIPO InfoNCE (τ = 0.05), seed 0; mini track, mini-base, G = 8'."""
    return (f"{variant_label(spec.method, spec.clipo, spec.tau)}, seed {spec.seed}; "
            f"{spec.track} track, {spec.model}, G = {spec.group_size}")


def seeds_label(seeds) -> str:
    """'seed 0' or '3 seeds (0, 1, 2)'."""
    seeds = sorted(int(s) for s in seeds)
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"


def default_steps(track: str) -> str:
    """RL steps of a run of ``track`` that sets none: '10' (mini trainer), '84 (6 epochs)' (verl:
    epochs × whole batches of the training file, as clipo.verl.overrides counts them)."""
    t = get_track(track)
    if t.mini_steps:
        return str(t.mini_steps)
    per_epoch = get_dataset(t.train_files[0]).rows // t.train_batch_size
    return f"{per_epoch * t.total_epochs} ({t.total_epochs} epochs)"


def default_steps_text(tracks: Iterable[str]) -> str:
    """``default_steps`` of each track, for the report's description page: '10 (track mini)'."""
    return "; ".join(f"{default_steps(t)} (track {t})" for t in sorted(set(tracks)))


# ---------------------------------------------------------------------------------------------
# Order
# ---------------------------------------------------------------------------------------------
def variant_order(clipo: str, tau=None, method: str | None = None) -> tuple:
    """Sort key listing runs as the paper's tables do: the base model, then per method (by name) no
    CLIPO, the losses in registry order, each by τ, and the fixed-head ablations last. Without
    ``method`` only the variant and τ count (one method's series in a figure)."""
    loss = loss_of(clipo)
    names = [v for v in CLIPO_VARIANTS if not is_fixed(v)]
    rank = names.index(loss) if loss in names else len(names)
    return (method is not None and method != BASE, method or "", is_fixed(clipo), rank, loss,
            0.0 if tau is None or math.isnan(float(tau)) else float(tau))


# ---------------------------------------------------------------------------------------------
# Averages
# ---------------------------------------------------------------------------------------------
def mean_over(values: Mapping, members: Sequence[str]):
    """Unweighted mean of ``values`` over ``members`` (floats or equal-shaped arrays, e.g. bootstrap
    replicates), as the paper averages benchmarks; None when a member is missing or there is none."""
    if not members or not all(m in values for m in members):
        return None
    mean = np.mean([values[m] for m in members], axis=0)
    return float(mean) if np.ndim(mean) == 0 else mean


def group_means(values: Mapping, track: str) -> dict:
    """Average name → ``mean_over`` its members, for every average of the track whose members are all
    in ``values`` (M/G/C-Avg. and Avg.; clipo.data.registry.benchmark_groups)."""
    out = {}
    for name, members in benchmark_groups(track).items():
        mean = mean_over(values, members)
        if mean is not None:
            out[name] = mean
    return out
