"""One look for every figure: sizes for the paper's column widths, fonts, palette, and atomic saving.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot), so rendering never depends on
a display or on global backend state; PNG and PDF come from the Agg and PDF canvases.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure

from clipo.records import atomic_write

COLUMN_WIDTH = 3.3
"""Inches; one column of a two-column paper."""
FULL_WIDTH = 6.8
"""Inches; both columns."""

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
"""Colour-blind-safe qualitative palette (Okabe & Ito, 2008), used for every categorical series."""

BASELINE = "#000000"
"""The base method (GRPO without CLIPO) in every figure."""

RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "figure.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.4,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,  # embed TrueType so text in the PDF stays editable and searchable
    "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
}


def context():
    """The house rcParams; draw and save a figure inside it so ticks, fonts and colours all match."""
    return mpl.rc_context(RC)


def new_figure(width: float = COLUMN_WIDTH, height: float = 2.2, ncols: int = 1, nrows: int = 1,
               sharey: bool = False) -> tuple[Figure, list]:
    """A figure and its axes (always a flat list, row by row); call inside ``context()``."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, list(fig.subplots(nrows, ncols, squeeze=False, sharey=sharey).ravel())


def series_colours(n: int, baseline_first: bool = False) -> list[str]:
    """``n`` series colours from the palette; with ``baseline_first`` the first (the method without
    CLIPO) is black, so every figure draws the baseline the same way."""
    palette = [c for c in OKABE_ITO if c != BASELINE]
    series = [palette[i % len(palette)] for i in range(n - int(baseline_first))]
    return ([BASELINE] if baseline_first else []) + series


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf atomically; metadata without dates so reruns give equal files."""
    stem = Path(stem)
    written = []
    for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        path = stem.with_name(f"{stem.name}.{fmt}")
        atomic_write(path, lambda tmp, fmt=fmt, meta=meta: fig.savefig(tmp, format=fmt, metadata=meta))
        written.append(path)
    return written
