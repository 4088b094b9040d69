"""`clipo figures`: the paper's Figures 3-5, the training reward, lucky answers in training, the Δ forest
plot and the paper's own Figure 3, from results files.

Each figure is one module, ``clipo.analysis.<id>`` for each id of the registry
(``clipo.analysis.registry.FIGURES``). Its drawing function writes PNG + PDF and RETURNS the data it
plotted, so what is on the page can be checked against the inputs; its ``draw`` finds the inputs in a
run set folder and raises MissingInput naming what is absent.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd

from clipo.analysis.registry import FIGURES
from clipo.errors import ConfigError, MissingInput

NAMES = {fid: fig.stem for fid, fig in FIGURES.items()}
"""Figure id → file stem (clipo.analysis.registry)."""


def render(
    name: str,
    results: Path,
    out: Path,
    *,
    run: str | None = None,
    scores: pd.DataFrame | None = None,
    track: str | None = None,
    runs: list[str] | None = None,
    intervals: bool = True,
    paper_scores: str | Path | None = None,
):
    """Draw one figure from a run set folder (only ``runs`` of it, if given) with its module's ``draw``
    (``clipo.analysis.<id>``)."""
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}; valid: {', '.join(NAMES)}")
    module = importlib.import_module(f"clipo.analysis.{name}")
    return module.draw(results, out, run=run, scores=scores, track=track, runs=runs, intervals=intervals,
                       paper_scores=paper_scores)


def run_figures_command(
    results: str | Path,
    out: str | Path,
    only: str | None = None,
    run: str | None = None,
    source: str | None = None,
    intervals: bool = True,
    track: str | None = None,
    paper_scores: str | Path | None = None,
    runs: list[str] | None = None,
) -> int:
    """`clipo figures`: draw every figure (or ``only`` those), report the ones whose inputs are missing.

    A missing input is fatal only for a figure asked for by name; otherwise it is reported and skipped.
    """
    from clipo.analysis.results import load_scores

    results, out = Path(results), Path(out)
    names = [n.strip() for n in only.split(",")] if only else list(NAMES)
    for n in names:
        if n not in NAMES:
            raise ConfigError(f"--only {n!r}: valid figures are {', '.join(NAMES)}")
    scores = None
    if source is not None and "fig3" in names:
        if source != "paper":
            raise ConfigError(f"--source {source!r}: only 'paper' (default: the scores under --results)")
        scores = load_scores(paper_scores or source)
    drawn = 0
    for name in names:
        try:
            render(name, results, out, run=run, scores=scores if name == "fig3" else None, track=track,
                   runs=runs, intervals=intervals, paper_scores=paper_scores)
        except MissingInput as e:
            if only:
                raise
            print(f"skipped {e}")
            continue
        drawn += 1
        print(f"{name}: {out / NAMES[name]}.{{png,pdf}}")
    return 0 if drawn else 2
