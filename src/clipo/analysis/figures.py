"""`clipo figures`: the paper's Figures 3-5 from results files.

Each figure is one module, ``clipo.analysis.<id>`` for each id of the registry
(``clipo.analysis.registry.FIGURES``): ``fig3``, ``fig4``, ``fig5``. Its ``fig*`` function draws the
figure, writes PNG + PDF and RETURNS the data it plotted, so what is on the page can be checked against
the inputs; its ``draw`` finds the inputs in a run set folder.
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
    errors: pd.DataFrame | None = None,
    track: str | None = None,
    runs: list[str] | None = None,
):
    """Draw one figure from a run set folder (only ``runs`` of it, if given) with its module's ``draw``
    (``clipo.analysis.<id>``)."""
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}; valid: {', '.join(NAMES)}")
    module = importlib.import_module(f"clipo.analysis.{name}")
    return module.draw(results, out, run=run, scores=scores, errors=errors, track=track, runs=runs)


def run_figures_command(
    results: str | Path,
    out: str | Path,
    only: str | None = None,
    run: str | None = None,
    source: str | None = None,
    error_bars: bool = False,
    track: str | None = None,
    paper_scores: str | Path | None = None,
    runs: list[str] | None = None,
) -> int:
    """`clipo figures`: draw every figure (or ``only`` those), report the ones whose inputs are missing.

    A missing input is fatal only for a figure asked for by name; otherwise it is reported and skipped.
    """
    from clipo.analysis.results import PAPER, load_scores
    from clipo.analysis.stats import load_samples

    results, out = Path(results), Path(out)
    names = [n.strip() for n in only.split(",")] if only else list(NAMES)
    for n in names:
        if n not in NAMES:
            raise ConfigError(f"--only {n!r}: valid figures are {', '.join(NAMES)}")
    scores = None
    if source is not None and "fig3" in names:
        if source != "paper":
            raise ConfigError(f"--source {source!r}: only 'paper' (default: the scores under --results)")
        scores = load_scores(paper_scores or PAPER)
    errors = None
    if error_bars and "fig3" in names:
        samples = load_samples(results, runs) if source is None else None
        if samples is None or samples.empty:
            print(
                f"fig3: no per-sample records under {results}/eval/*/samples.parquet; "
                "drawn without error bars"
            )
        else:
            from clipo.analysis.fig3 import default_track, gain_errors

            track = track or default_track(load_scores(results, runs))
            errors = gain_errors(samples, track)
    drawn = 0
    for name in names:
        try:
            render(name, results, out, run=run, scores=scores, errors=errors, track=track, runs=runs)
        except MissingInput as e:
            if only:
                raise
            print(f"skipped {e}")
            continue
        drawn += 1
        print(f"{name}: {out / NAMES[name]}.{{png,pdf}}")
    return 0 if drawn else 2

