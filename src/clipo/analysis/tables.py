"""Render the paper's tables from tidy scores as Markdown, LaTeX (booktabs) and CSV.

Values are looked up per row from the scores (the paper's transcription or a run set); averages are
means of the benchmark scores, Δ rows differences of unrounded values, and everything is printed
with two decimals as in the paper. Best/second-best marks are ranked on the printed (rounded)
values so that ties are marked alike, as the paper does (Table 1, thrmQA). A table whose runs are
partly missing is rendered with the cells it has and a note naming the missing runs.

Where a run set's scores also hold the process metrics of step-checked answers (clipo.scores: sound
Pass@1, lucky share), a table gets one section per metric below its Pass@1 rows, repeating those rows
(Δ rows included) on that metric; tables without them, the paper's among them, are unchanged.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from clipo.analysis import html, markdown, vocab
from clipo.analysis.paper_tables import (
    BOLD,
    PAPER_TABLES,
    UNDERLINE,
    Row,
    Select,
    TableSpec,
    column_benchmarks,
    supported_tables,
)
from clipo.analysis.results import RUN_KEY, load_scores
from clipo.records import atomic_write
from clipo.scores import LUCKY_SHARE, METRIC, METRIC_LABELS, PROCESS_METRICS, SOUND_PASS_AT_1


def round2(value: float) -> float:
    """Round half away from zero to two decimals, as the paper does (Table 1 Avg. 63.255 → 63.26).

    Means of two-decimal numbers often land exactly on a half (…5); binary floats put them either
    side of it, so the value is first snapped to 9 decimals and rounded as a decimal.
    """
    exact = Decimal(repr(round(value, 9)))
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def fmt(value: float | None) -> str:
    """Two decimals like the paper; never '-0.00'; empty for a missing value."""
    if value is None:
        return ""
    text = f"{round2(value):.2f}"
    return "0.00" if text == "-0.00" else text


def _by_run(scores: pd.DataFrame) -> dict[tuple, dict[int, dict[str, float]]]:
    """Run axes without the seed → seed → benchmark → score."""
    runs: dict[tuple, dict[int, dict[str, float]]] = {}
    for key, rows in scores.groupby(list(RUN_KEY), dropna=False, sort=False):
        *axes, seed = key
        tau = None if pd.isna(axes[4]) else float(axes[4])
        run = (str(axes[0]), axes[1], axes[2], axes[3], tau, int(axes[5]))
        runs.setdefault(run, {})[int(seed)] = dict(zip(rows["benchmark"], rows["score"].astype(float), strict=True))
    return runs


class ScoreLookup:
    """Per-run benchmark scores of one tidy table, seeds averaged where a selection asks for it.

    ``process``: rows of the process metrics with their ``metric`` column (``load_process_scores``),
    looked up with ``metric=``; without it only Pass@1 (``metric=None``) has values.
    """

    def __init__(self, scores: pd.DataFrame, process: pd.DataFrame | None = None):
        self._runs = _by_run(scores)
        self._process = ({} if process is None or process.empty
                         else {m: _by_run(rows) for m, rows in process.groupby(METRIC, sort=False)})

    def selects(self) -> list[Select]:
        return [Select(*run, seed) for run, seeds in self._runs.items() for seed in seeds]

    def has(self, metric: str) -> bool:
        return bool(self._process.get(metric))

    def _matching(self, sel: Select, metric: str | None = None) -> dict[int, dict[str, float]]:
        found: dict[int, dict[str, float]] = {}
        runs = self._runs if metric is None else self._process.get(metric, {})
        for (track, model, method, variant, tau, g), seeds in runs.items():
            if (track, model, method, variant) != (sel.track, sel.model, sel.method, sel.clipo):
                continue
            if (tau is None) != (sel.tau is None) or (tau is not None and not math.isclose(tau, sel.tau)):
                continue
            if method != "base" and g != sel.group_size:  # the base model has no group size
                continue
            for seed, values in seeds.items():
                if sel.seed is None or seed == sel.seed:
                    found.setdefault(seed, {}).update(values)
        return found

    def seeds(self, sel: Select) -> list[int]:
        return sorted(self._matching(sel))

    def per_seed(self, sel: Select, metric: str | None = None) -> list[dict[str, float]]:
        """Benchmark → score of each matching seed (one entry for a single-seed selection)."""
        return list(self._matching(sel, metric).values())

    def scores(self, sel: Select, metric: str | None = None) -> dict[str, float]:
        """Benchmark → score; with several seeds, the mean over the seeds that have the benchmark."""
        per_seed = self._matching(sel, metric).values()
        names = {b for values in per_seed for b in values}
        return {b: sum(v[b] for v in per_seed if b in v) / sum(b in v for v in per_seed) for b in names}


@dataclass
class Rendered:
    """A table's computed cells and marks, ready to write in any format."""

    spec: TableSpec
    values: list[list[float | None]]
    marks: list[list[str]]
    spread: list[list[float | None]] = field(default_factory=list)
    """Sample standard deviation over seeds of each cell (None where a row has fewer than two seeds)."""
    missing: list[Select] = field(default_factory=list)
    incomplete: dict[Select, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(v is not None for row in self.values for v in row)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.incomplete

    def header(self) -> list[str]:
        spec = self.spec
        labels = ([spec.group_header] if spec.group_header else []) + [spec.label_header]
        return labels + [c.name for c in spec.columns]

    def label_cells(self, i: int) -> list[str]:
        row = self.spec.rows[i]
        return ([row.group] if self.spec.group_header else []) + [row.label]


def _column_value(scores: dict[str, float], key: str, track: str) -> float | None:
    return vocab.mean_over(scores, column_benchmarks(key, track))


def compute(spec: TableSpec, lookup: ScoreLookup, backend: str = "verl") -> Rendered:
    """Fill a table spec from scores: per-benchmark values, averages, Δ rows, marks and notes."""
    row_values: list[list[float | None]] = []
    cache: dict[tuple[Select, str | None], dict[str, float]] = {}

    def values_of(sel: Select, metric: str | None) -> list[float | None]:
        scores = cache.setdefault((sel, metric), lookup.scores(sel, metric))
        return [_column_value(scores, c.key, sel.track) for c in spec.columns]

    def spread_of(sel: Select, metric: str | None) -> list[float | None]:
        per_seed = [[_column_value(scores, c.key, sel.track) for c in spec.columns]
                    for scores in lookup.per_seed(sel, metric)]
        return [statistics.stdev(col) if len(col) > 1 and None not in col else None for col in zip(*per_seed)] \
            if len(per_seed) > 1 else [None] * len(spec.columns)

    row_spread: list[list[float | None]] = []
    for row in spec.rows:
        if row.select is not None:
            row_values.append(values_of(row.select, row.metric))
            row_spread.append(spread_of(row.select, row.metric))
        elif row.minus is not None:
            a, b = (values_of(s, row.metric) for s in row.minus)
            row_values.append([None if x is None or y is None else x - y for x, y in zip(a, b, strict=True)])
            row_spread.append([None] * len(spec.columns))
        else:
            row_values.append([None] * len(spec.columns))
            row_spread.append([None] * len(spec.columns))

    missing = [s for s in spec.selects if not cache.get((s, None))]
    incomplete = {}
    for sel in spec.selects:
        if cache.get((sel, None)):
            needed = {b for c in spec.columns for b in column_benchmarks(c.key, sel.track)}
            lacking = sorted(needed - set(cache[(sel, None)]))
            if lacking:
                incomplete[sel] = lacking
    rendered = Rendered(spec, row_values, _marks(spec, row_values), row_spread, missing, incomplete,
                        list(spec.notes))
    seeds = {s: lookup.seeds(s) for s in spec.selects if s.seed is None and cache.get((s, None))}
    if any(len(v) > 1 for v in seeds.values()):
        sets = sorted({tuple(v) for v in seeds.values()})
        listed = "; ".join(", ".join(map(str, v)) for v in sets)
        rendered.notes.append(f"Each value is the mean over the seeds present (seeds: {listed}); "
                              "± is the standard deviation over seeds (rows with several seeds); "
                              "Δ rows are differences of those means.")

    def run_name(sel: Select) -> str:
        if sel.seed is None:
            return sel.describe()
        return sel.run_spec("mini" if sel.track == "mini" else backend).run_id

    if missing:
        rendered.notes.append("Missing runs (their cells are empty): " + ", ".join(map(run_name, missing)))
    for sel, lacking in incomplete.items():
        rendered.notes.append(f"Run {run_name(sel)} lacks benchmark(s) {', '.join(lacking)}; "
                              "averages over them are empty.")
    return rendered


def _marks(spec: TableSpec, values: list[list[float | None]]) -> list[list[str]]:
    """Per column over the non-Δ Pass@1 rows: the spec's marks by rank of the printed value (best first)."""
    marks = [[""] * len(spec.columns) for _ in spec.rows]
    if not spec.marks:
        return marks
    for j in range(len(spec.columns)):
        shown = {i: round2(values[i][j]) for i, row in enumerate(spec.rows)
                 if row.select is not None and row.metric is None and values[i][j] is not None}
        ranked = sorted(set(shown.values()), reverse=True)
        for i, v in shown.items():
            rank = ranked.index(v)
            if rank < len(spec.marks):
                marks[i][j] = spec.marks[rank]
    return marks


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------
def to_csv(r: Rendered) -> str:
    """Header = the paper's column names, first column(s) = its row labels; plain values, no styling."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    spread = any(v is not None for row in r.spread for v in row)
    w.writerow(r.header() + ([f"{c.name} sd" for c in r.spec.columns] if spread else []))
    for i in range(len(r.spec.rows)):
        w.writerow(r.label_cells(i) + [fmt(v) for v in r.values[i]]
                   + ([fmt(v) for v in r.spread[i]] if spread else []))
    return buf.getvalue()


def _styled_md(text: str, mark: str) -> str:
    if not text:
        return "–"
    return {BOLD: f"**{text}**", UNDERLINE: f"<u>{text}</u>"}.get(mark, text)


def to_markdown(r: Rendered) -> str:
    lines = [f"**{r.spec.title}** | {r.spec.caption}", ""]
    header = [markdown.cell(h) for h in r.header()]
    rows = []
    for i, row in enumerate(r.spec.rows):
        cells = [("" if row.is_section else _styled_md(fmt(v), m) + (f" ±{fmt(sd)}" if sd is not None else ""))
                 for v, m, sd in zip(r.values[i], r.marks[i], r.spread[i], strict=True)]
        labels = [markdown.cell(t) for t in r.label_cells(i)]
        if row.is_section:
            labels[-1] = f"*{labels[-1]}*"
        rows.append(labels + cells)
    align = "l" * (len(header) - len(r.spec.columns)) + "r" * len(r.spec.columns)
    lines += markdown.table_lines(header, align, rows)
    if r.notes:
        lines.append("")
        lines += [f"Note: {n}" for n in r.notes]
    return "\n".join(lines) + "\n"


_TEX = str.maketrans({"Δ": r"$\Delta$", "τ": r"$\tau$", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
                      "|": r"$|$", "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                      "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "–": "--"})


def tex_escape(text: str) -> str:
    return text.translate(_TEX)


def to_latex(r: Rendered) -> str:
    n_labels = len(r.header()) - len(r.spec.columns)
    out = [f"% {r.spec.title}: generated by `clipo tables`; values with two decimals as in the paper."]
    out += [f"% Note: {n}" for n in r.notes]
    out += [r"\begin{table}[t]", r"\centering", r"\small",
            rf"\caption{{{tex_escape(r.spec.title)}: {tex_escape(r.spec.caption)}}}",
            rf"\label{{tab:{r.spec.id}}}",
            r"\begin{tabular}{" + "l" * n_labels + "r" * len(r.spec.columns) + "}", r"\toprule",
            " & ".join(tex_escape(h) for h in r.header()) + r" \\", r"\midrule"]
    for i, row in enumerate(r.spec.rows):
        if i > 0 and (row.is_section or row.group):
            out.append(r"\midrule")
        labels = [tex_escape(t) for t in r.label_cells(i)]
        if row.is_section:
            out.append(rf"\multicolumn{{{len(r.header())}}}{{l}}{{\textit{{{labels[-1]}}}}} \\")
            continue
        cells = []
        for v, m, sd in zip(r.values[i], r.marks[i], r.spread[i], strict=True):
            text = fmt(v) or "--"
            text = {BOLD: rf"\textbf{{{text}}}", UNDERLINE: rf"\underline{{{text}}}"}.get(m, text)
            cells.append(text + (rf"{{\scriptsize$\pm${fmt(sd)}}}" if sd is not None else ""))
        out.append(" & ".join(labels + cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def to_html(r: Rendered) -> str:
    """The Markdown table as a standalone HTML page (what the Snakemake report shows inline)."""
    return html.page(r.spec.title, to_markdown(r))


WRITERS = {"md": to_markdown, "tex": to_latex, "csv": to_csv, "html": to_html}


def write_table(r: Rendered, out_dir: str | Path) -> list[Path]:
    paths = []
    for ext, writer in WRITERS.items():
        text = writer(r)
        paths.append(atomic_write(Path(out_dir) / f"{r.spec.id}.{ext}",
                                  lambda tmp, text=text: tmp.write_text(text, encoding="utf-8")))
    return paths


# ---------------------------------------------------------------------------------------------
# Process metrics of step-checked answers
# ---------------------------------------------------------------------------------------------
SECTION_LABELS = {SOUND_PASS_AT_1: f"{METRIC_LABELS[SOUND_PASS_AT_1]} (% of all answers)",
                  LUCKY_SHARE: f"{METRIC_LABELS[LUCKY_SHARE]} (%)"}
PROCESS_NOTE = ("Process sections (answers step-checked against the problem's chain, clipo.data.stepcheck): "
                "sound Pass@1 = % of all answers that are correct and soundly worked; lucky share = % of the "
                "correct answers whose work is not sound (lower is better; a seed without a correct answer has none "
                "and is left out of the mean, without ±). Δ rows there are differences of those percentages.")


def load_process_scores(source, runs: list[str] | None = None) -> pd.DataFrame:
    """The process metrics' rows of a source with their ``metric`` column; empty where the files hold
    none (the paper's transcription, evaluations written before the step checker)."""
    frames = [load_scores(source, runs, metric).assign(**{METRIC: metric}) for metric in PROCESS_METRICS]
    return pd.concat(frames, ignore_index=True)


def with_process_sections(spec: TableSpec, lookup: ScoreLookup) -> TableSpec:
    """``spec`` plus, for each process metric some of its runs have, a section repeating its rows on that
    metric; ``spec`` itself where none has any."""
    extra: list[Row] = []
    for metric in PROCESS_METRICS:
        if lookup.has(metric) and any(lookup.scores(s, metric) for s in spec.selects):
            extra.append(Row(SECTION_LABELS[metric]))
            extra += [replace(r, metric=metric) for r in spec.rows]
    if not extra:
        return spec
    return replace(spec, rows=spec.rows + tuple(extra), notes=spec.notes + (PROCESS_NOTE,))


# ---------------------------------------------------------------------------------------------
# Which tables a source supports
# ---------------------------------------------------------------------------------------------
def table_specs(scores: pd.DataFrame) -> dict[str, TableSpec]:
    """The paper's tables for Track I/II scores, the mini-shaped ones for any other track."""
    return supported_tables(ScoreLookup(scores).selects())


def _check_single_source(scores: pd.DataFrame) -> None:
    if scores.duplicated([*RUN_KEY, "benchmark"]).any():
        from clipo.errors import UserError

        sources = ", ".join(sorted(scores["source"].unique()))
        raise UserError(f"the same runs are scored by several sources ({sources}); "
                        "point --source at one run set's folder")


def render_tables(scores: pd.DataFrame, only: Iterable[str] | None = None, backend: str = "verl",
                  process: pd.DataFrame | None = None) -> tuple[list[Rendered], list[str]]:
    """Compute every supported table (or those in ``only``), with process sections where ``process``
    (``load_process_scores``) has values for its runs; returns (rendered, skip messages)."""
    from clipo.errors import UserError

    _check_single_source(scores)
    specs = table_specs(scores)
    wanted = list(specs) if only is None else list(only)
    known = set(specs) | set(PAPER_TABLES)
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise UserError(f"--only: unknown table(s) {', '.join(unknown)}; valid: {', '.join(PAPER_TABLES)}")
    lookup = ScoreLookup(scores, process)
    rendered, skipped = [], []
    for tid in wanted:
        if tid not in specs:  # e.g. a mini run set without fixed-head runs has no Table-3 shape
            skipped.append(f"{tid}: skipped, this source has none of the runs it compares")
            continue
        r = compute(with_process_sections(specs[tid], lookup), lookup, backend)
        if r.has_data:
            rendered.append(r)
        else:
            skipped.append(f"{tid}: skipped, none of its {len(specs[tid].selects)} runs has scores")
    return rendered, skipped


def run_tables_command(source: str, out: str, only: str | None, runs: list[str] | None = None) -> int:
    """``clipo tables``: write DIR/<table>.{md,tex,csv,html} for every table the source supports (from the
    scores of ``runs`` only, if given)."""
    from clipo.errors import UserError

    scores = load_scores(source, runs)
    wanted = None if only is None else [t.strip() for t in only.split(",") if t.strip()]
    rendered, skipped = render_tables(scores, wanted, process=load_process_scores(source, runs))
    for r in rendered:
        write_table(r, out)
        state = ("complete" if r.complete
                 else f"partial: {len(r.missing)} run(s) missing, {len(r.incomplete)} incomplete")
        print(f"{r.spec.id}: wrote {Path(out) / r.spec.id}.{{md,tex,csv,html}} ({state})")
    for message in skipped:
        print(message)
    if not rendered:
        raise UserError(f"no table could be rendered from {source}: " + "; ".join(skipped))
    return 0
