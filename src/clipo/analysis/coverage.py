"""Does a config's grid hold the runs its requested tables and figures need? Checked when the workflow
builds its DAG, so a grid that cannot fill a table fails in seconds naming the runs, instead of after
training with Snakemake's "missing output" error (which also deletes the table files that were fine).

A table whose runs are partly there is rendered with a note naming the missing ones, so only a table
or figure that could not be produced at all is an error here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from clipo.analysis import vocab
from clipo.analysis.paper_tables import PAPER_TABLES, Select, supported_tables
from clipo.errors import ConfigError
from clipo.methods import TRACKS
from clipo.runs import RunSpec

SHOWN = 6
"""Missing runs listed by name before the rest are counted."""

def _mini_needs(tid: str) -> str | None:
    """What a mini-shaped table needs of the grid (None: no mini shape)."""
    return {
        "table1": "a run of the track",
        "table3": "a grpo run with clipo infonce-fixed and its infonce twin (same τ)",
        "table13": f"grpo runs with at least two of the losses {', '.join(vocab.losses())} (same τ, G)",
    }.get(tid)


def _matches(sel: Select, run: Select) -> bool:
    """A grid run fills a table row (the matching of clipo.analysis.tables.ScoreLookup)."""
    if (sel.track, sel.model, sel.method, sel.clipo) != (run.track, run.model, run.method, run.clipo):
        return False
    if (sel.tau is None) != (run.tau is None) or (sel.tau is not None and not math.isclose(sel.tau, run.tau)):
        return False
    if sel.method != "base" and sel.group_size != run.group_size:
        return False
    return sel.seed is None or sel.seed == run.seed


def _names(selects: list[Select], backend: str) -> str:
    names = [s.describe() if s.seed is None else s.run_spec(backend).run_id for s in selects]
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def _table_problem(tid: str, specs: dict, grid: list[Select]) -> str | None:
    spec = specs.get(tid)
    if spec is None:
        cpu_tracks = sorted({r.track for r in grid} - {"I", "II"})
        if cpu_tracks and (needs := _mini_needs(tid)):
            return f"{tid} ({', '.join(cpu_tracks)} track) needs {needs}; the grid has none"
        needed = [s for s in PAPER_TABLES[tid].selects if s.method != "base"]
        return f"{tid} needs runs of the paper's tracks I/II; add e.g. {_names(needed, 'verl')}"
    if not any(_matches(sel, run) for sel in spec.selects for run in grid):
        backend = "mini" if spec.selects[0].track not in ("I", "II") else "verl"
        return f"{tid} has none of its runs in the grid; add e.g. {_names(list(spec.selects), backend)}"
    return None


def _figure_problem(fig: str, grid: list[Select]) -> str | None:
    clipo = [r for r in grid if r.method != "base" and r.clipo != "none"]
    if fig in ("fig4", "fig5") and not clipo:
        what = "embeddings" if fig == "fig4" else "pair similarities"
        return f"{fig} needs a trained CLIPO run (clipo other than none) for its {what}; the grid has none"
    if fig == "reward" and not any(r.method != "base" for r in grid):
        return "reward needs a trained run (method other than base); the grid has none"
    if fig == "lucky" and not any(r.method != "base" and getattr(TRACKS.get(r.track), "mini_steps", 0)
                                   for r in grid):
        return ("lucky needs a run trained by the mini trainer (a track with step-checkable problems, e.g. mini), "
                "which logs process/lucky_share; the grid has none")
    if fig == "forest":
        runs = {(r.track, r.model, r.method, r.clipo, r.tau, r.group_size, r.seed) for r in grid}
        if not any((r.track, r.model, r.method, vocab.reference_variant(r.clipo), None if vocab.reference_variant(r.clipo) == "none" else r.tau,
                    r.group_size, r.seed) in runs for r in clipo):
            return ("forest needs a CLIPO run and its base run (same method without CLIPO, or learned-head CLIPO "
                    "for a fixed head) of the same track, model, group size and seed")
    if fig == "fig3":
        bases = {(r.track, r.model, r.group_size, r.seed) for r in grid if r.method == "grpo" and r.clipo == "none"}
        if not any((r.track, r.model, r.group_size, r.seed) in bases
                   for r in clipo if r.method == "grpo" and r.clipo in vocab.losses()):
            losses = vocab.losses()
            return (f"fig3 needs a grpo run without CLIPO and one with {', '.join(losses[:-1])} or {losses[-1]} "
                    "of the same track, model, group size and seed")
    return None


def check_grid(runs: Iterable[RunSpec], tables: Iterable[str], figures: Iterable[str]) -> None:
    """Raise ConfigError listing every requested table or figure the grid's runs cannot produce."""
    grid = [Select(r.track, r.model, r.method, r.clipo, r.tau, r.group_size, r.seed) for r in runs]
    specs = supported_tables(grid)
    problems = [p for tid in tables if (p := _table_problem(tid, specs, grid))]
    problems += [p for fig in figures if (p := _figure_problem(fig, grid))]
    if problems:
        raise ConfigError("config grid lacks runs that config tables/figures need: " + "; ".join(problems))
