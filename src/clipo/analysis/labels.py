"""Runs and comparisons named in words for figure titles and legends, never as raw run ids.

A reader of a figure should see "GRPO + CLIPO InfoNCE (τ = 0.05)", not
``mini_mini-base_grpo_infonce_tau0.05_g8_s0_mini``; one function per kind of name keeps every figure
saying it the same way.
"""

from __future__ import annotations

import math

from clipo.runs import RunSpec

LOSS_NAMES = {"infonce": "InfoNCE", "supcon": "SupCon", "softnn": "SoftNN", "infonce-fixed": "InfoNCE"}


def method_name(method: str) -> str:
    return "base model" if method == "base" else method.upper()


def clipo_label(clipo: str, tau: float | None = None) -> str:
    """'InfoNCE (τ = 0.05)', 'InfoNCE, fixed head (τ = 0.05)'; 'no CLIPO' when it is off."""
    if clipo == "none":
        return "no CLIPO"
    head = ", fixed head" if clipo.endswith("-fixed") else ""
    temp = "" if tau is None or (isinstance(tau, float) and math.isnan(tau)) else f" (τ = {float(tau):g})"
    return f"{LOSS_NAMES.get(clipo, clipo)}{head}{temp}"


def variant_label(method: str, clipo: str, tau: float | None = None) -> str:
    """'GRPO', 'GRPO + CLIPO InfoNCE (τ = 0.05)', 'GRPO + CLIPO InfoNCE, fixed head (τ = 0.05)'."""
    name = method_name(method)
    return name if clipo == "none" else f"{name} + CLIPO {clipo_label(clipo, tau)}"


def variant_order(clipo: str, tau: float | None = None) -> tuple:
    """Sort key that lists series as the paper does: no CLIPO, InfoNCE, SupCon, SoftNN, each by τ, and
    the fixed-head ablations last."""
    loss = clipo.removesuffix("-fixed")
    rank = ("none", "infonce", "supcon", "softnn").index(loss) if loss in LOSS_NAMES or loss == "none" else 9
    return (clipo.endswith("-fixed"), rank, 0.0 if tau is None or math.isnan(float(tau)) else float(tau))


def run_title(spec: RunSpec) -> str:
    """A run in words: 'GRPO + CLIPO InfoNCE (τ = 0.05), seed 0; mini track, mini-base, G = 8'."""
    return (f"{variant_label(spec.method, spec.clipo, spec.tau)}, seed {spec.seed}; "
            f"{spec.track} track, {spec.model}, G = {spec.group_size}")


def seeds_label(seeds) -> str:
    """'seed 0' or '3 seeds (0, 1, 2)'."""
    seeds = sorted(int(s) for s in seeds)
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds ({', '.join(map(str, seeds))})"
