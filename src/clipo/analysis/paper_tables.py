"""Declarative specs of the paper's result tables (1, 2, 3, 5, 6, 7, 11-19) and their mini-track shapes.

A table is its printed layout — columns in the paper's order, row labels as printed — plus, for every
row, the run it shows (a :class:`Select`) or the two rows a Δ row subtracts. Nothing here holds a
number: values come from a tidy scores table (``results/paper/scores.csv`` or a run set), averages
and Δ are always computed (see ``clipo.analysis.tables``).

Which run each printed row is (settled in ``results/paper/README.md``):

* Track I CLIPO runs use τ = 0.05 (Table 9). Table 16's τ sweep matches no other table — its
  τ = 0.05 row differs from Table 1's GRPO+CLIPO — so the sweep is a separate batch of runs; the paper
  states no seeds, so the sweep is keyed ``seed=1`` and every other run ``seed=0``.
* Track II CLIPO runs use τ = 0.02 although Table 9 says 0.05: Table 2's GRPO+CLIPO row is Table 17's
  τ = 0.02 row, and Tables 6, 12, 14 and 18 repeat it. Table 19 (other base models) is assumed to use
  the same τ; the paper does not say.
* Group size is 16 (rollout.n, Table 8) except where Tables 6 and 18 vary it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from clipo.analysis import vocab
from clipo.data.registry import benchmark_groups, benchmarks
from clipo.errors import ConfigError
from clipo.methods import CONTRASTIVE_LOSSES, METHODS, TRACKS
from clipo.runs import RunSpec, format_tau

AVG1, AVG2, AVG = "avg:1", "avg:2", "avg:all"
"""Column keys of the averages: the track's first and second benchmark group and the overall mean."""

DELTA = "Δ"
BOLD, UNDERLINE = "bold", "underline"
BEST_TWO = (BOLD, UNDERLINE)
"""Best value per column in bold, second best underlined (Tables 1, 2 and 5)."""


@dataclass(frozen=True, order=True)
class Select:
    """The run a table row shows: a run's axes without the backend (tables are backend-agnostic).

    ``seed=None`` selects every seed present and averages them (mini-track tables only).
    """

    track: str
    model: str
    method: str
    clipo: str = "none"
    tau: float | None = None
    group_size: int = 16
    seed: int | None = 0

    def run_spec(self, backend: str) -> RunSpec:
        if self.seed is None:
            raise ConfigError(f"{self.describe()}: a seed-averaged selection is not one run")
        return RunSpec(self.track, self.model, self.method, self.clipo, self.tau, self.group_size,
                       self.seed, backend)

    def describe(self) -> str:
        """Run-id-like text for notes (backend left out; 's*' = every seed)."""
        seed = "*" if self.seed is None else str(self.seed)
        return (f"{self.track}_{self.model}_{self.method}_{self.clipo}_tau{format_tau(self.tau)}"
                f"_g{self.group_size}_s{seed}")


@dataclass(frozen=True)
class Column:
    name: str
    """Header as printed (Table 15 prints 'GSM' for GSM8K)."""
    key: str
    """A benchmark short name, or AVG1 / AVG2 / AVG."""


@dataclass(frozen=True)
class Row:
    label: str
    select: Select | None = None
    minus: tuple[Select, Select] | None = None
    """Δ row: value of the first run minus the second, per column (averages from unrounded values)."""
    group: str = ""
    """Text of the leading group column ('Track I', 'DS-7B', a τ), printed on the group's first row only."""
    metric: str | None = None
    """Metric of the row's values (clipo.scores.METRICS); None: Pass@1, the metric every paper table shows.
    Process sections of the mini tables repeat their rows on another metric (clipo.analysis.tables)."""

    @property
    def is_section(self) -> bool:
        """A header row with no numbers (Table 19's model names)."""
        return self.select is None and self.minus is None

    @property
    def is_delta(self) -> bool:
        return self.minus is not None


@dataclass(frozen=True)
class TableSpec:
    id: str
    """File stem and --only name, e.g. 'table1'."""
    title: str
    caption: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    label_header: str = "Methods"
    group_header: str | None = None
    marks: tuple[str, ...] = ()
    """Ranks the paper marks per column: (BOLD,) = best only, BEST_TWO = best and second best."""
    notes: tuple[str, ...] = ()

    @property
    def selects(self) -> list[Select]:
        """Every run the table shows, in row order, without duplicates."""
        seen: dict[Select, None] = {}
        for row in self.rows:
            for sel in ((row.select,) if row.select else ()) + (row.minus or ()):
                seen.setdefault(sel, None)
        return list(seen)


def column_benchmarks(key: str, track: str) -> list[str]:
    """Benchmarks averaged by a column on a track (a single benchmark for per-benchmark columns)."""
    groups = benchmark_groups(track)
    names = [name for name in groups if name != "Avg."]
    if key == AVG:
        return groups["Avg."]
    if key in (AVG1, AVG2):
        return groups[names[0 if key == AVG1 else 1]]
    if key not in benchmarks(track):
        raise ConfigError(f"column {key!r} is not a benchmark of track {track}: {', '.join(benchmarks(track))}")
    return [key]


def _benchmark_columns(track: str, rename: dict[str, str] | None = None) -> tuple[Column, ...]:
    """The paper's full column set of a track: every benchmark, then the two group averages and Avg."""
    rename = rename or {}
    groups = [name for name in benchmark_groups(track) if name != "Avg."]
    return (tuple(Column(rename.get(b, b), b) for b in benchmarks(track))
            + (Column(groups[0], AVG1), Column(groups[1], AVG2), Column("Avg.", AVG)))


def _avg_columns(names: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(n, k) for n, k in zip(names, (AVG1, AVG2, AVG), strict=True))


# ---------------------------------------------------------------------------------------------
# The runs the paper reports (see the module docstring for how each was identified)
# ---------------------------------------------------------------------------------------------
QWEN3B, QWEN7B = "qwen2.5-3b-instruct", "qwen2.5-7b-instruct"
DS7B, LLAMA8B = "ds-r1-distill-qwen-7b", "llama3.1-8b-instruct"
TRACK_MODEL = {"I": QWEN3B, "II": QWEN7B}
MAIN_TAU = {track: TRACKS[track].clipo_temperature for track in TRACK_MODEL}
"""τ of the CLIPO runs in the main tables: the track's (Track II: 0.02, as Table 2 = Table 17's τ = 0.02
row shows; the reasoning is beside the value in clipo.methods.TRACKS)."""
SWEEP_SEED_TRACK_I = 1
"""Seed label of Table 16's runs: a separate batch from Table 1's (see results/paper/README.md)."""


def base(track: str, model: str | None = None) -> Select:
    return Select(track, model or TRACK_MODEL[track], "base")


def rl(track: str, method: str = "grpo", model: str | None = None) -> Select:
    return Select(track, model or TRACK_MODEL[track], method)


def clipo(track: str, method: str = "grpo", variant: str = "infonce", tau: float | None = None,
          group_size: int = 16, seed: int = 0, model: str | None = None) -> Select:
    return Select(track, model or TRACK_MODEL[track], method, variant,
                  MAIN_TAU[track] if tau is None else tau, group_size, seed)


def _delta(a: Select, b: Select, group: str = "") -> Row:
    return Row(DELTA, minus=(a, b), group=group)


def _main_table(track: str, tid: str, title: str, caption: str) -> TableSpec:
    rows = [Row(vocab.BASE_LABEL, base(track))] + [Row(vocab.method_label(m), rl(track, m)) for m in vocab.methods()]
    for m in vocab.methods():
        rows += [Row(f"{vocab.method_label(m)}+CLIPO", clipo(track, m)), _delta(clipo(track, m), rl(track, m))]
    return TableSpec(tid, title, caption, _benchmark_columns(track), tuple(rows), marks=BEST_TWO)


def _fixed_rows(track: str, group: str = "") -> list[Row]:
    on, fixed = clipo(track), clipo(track, variant="infonce-fixed")
    return [Row("CLIPO", on, group=group), Row("CLIPO-fixed", fixed), _delta(fixed, on)]


def _loss_rows(track: str) -> list[Row]:
    rows = [Row("GRPO", rl(track))]
    for loss in vocab.losses():
        rows += [Row(f"CLIPO-{vocab.loss_label(loss)}", clipo(track, variant=loss)),
                 _delta(clipo(track, variant=loss), rl(track))]
    return rows


def _tau_label(tau: float) -> str:
    return f"{tau:g}"


TAUS_TRACK_I = (0.2, 0.1, 0.05, 0.02)
TAUS_TRACK_II = (0.2, 0.1, 0.05, 0.02, 0.015)
GROUP_SIZES = (8, 16, 32)
MODEL_SECTIONS = ((DS7B, "DeepSeek-R1-Distill-Qwen-7B", "DS-7B"), (LLAMA8B, "Llama3.1-8B-Instruct", "Llama-8B"))


def _paper_tables() -> dict[str, TableSpec]:
    t1 = _main_table("I", "table1", "Table 1",
                     "Performance comparison of different RLVR methods on Track I (GSM8K and General "
                     "Reasoning). Δ: improvement from adding CLIPO to the method above it.")
    t2 = _main_table("II", "table2", "Table 2",
                     "Performance comparison on Track II (Competition-Level Reasoning).")
    t3 = TableSpec(
        "table3", "Table 3",
        "CLIPO with and without a fixed head. Metric 1 / Metric 2 are M-Avg. / G-Avg. on Track I and "
        "M-Avg. / C-Avg. on Track II; Δ is the change when the head is fixed.",
        _avg_columns(("Metric 1", "Metric 2", "Avg.")),
        tuple(_fixed_rows("I", "Track I") + _fixed_rows("II", "Track II")),
        group_header="Track",
    )
    t5 = TableSpec(
        "table5", "Table 5", "Effect of the contrastive temperature τ on CLIPO (GRPO, Track II).",
        _avg_columns(("Math-Avg.", "Comp-Avg.", "Avg.")),
        tuple(Row(_tau_label(t), clipo("II", tau=t)) for t in TAUS_TRACK_II),
        label_header="τ", marks=BEST_TWO,
    )
    t6 = TableSpec(
        "table6", "Table 6", "Effect of the group size on CLIPO (GRPO, Track II, τ = 0.02).",
        _benchmark_columns("II"),
        tuple(Row(f"|G| = {g}", clipo("II", group_size=g)) for g in GROUP_SIZES),
        label_header="GroupSize", marks=(BOLD,),  # caption: "best results highlighted in bold"
    )
    t7_rows: list[Row] = []
    for model, _, short in MODEL_SECTIONS:
        t7_rows += [Row("GRPO", rl("II", model=model), group=short), Row("+ CLIPO", clipo("II", model=model)),
                    _delta(clipo("II", model=model), rl("II", model=model))]
    t7 = TableSpec("table7", "Table 7", "Performance comparison on diverse models (Track II).",
                   _avg_columns(("Math-Avg.", "Comp-Avg.", "Avg.")), tuple(t7_rows),
                   label_header="Method", group_header="Model")
    t11 = TableSpec("table11", "Table 11", "Fixed-head ablation on Track I.", _benchmark_columns("I"),
                    tuple(_fixed_rows("I")))
    t12 = TableSpec("table12", "Table 12", "Fixed-head ablation on Track II.", _benchmark_columns("II"),
                    tuple(_fixed_rows("II")))
    t13 = TableSpec("table13", "Table 13", "Contrastive loss variants on Track I; Δ over GRPO.",
                    _benchmark_columns("I"), tuple(_loss_rows("I")))
    t14 = TableSpec("table14", "Table 14", "Contrastive loss variants on Track II; Δ over GRPO.",
                    _benchmark_columns("II"), tuple(_loss_rows("II")))
    t15_rows = [Row("Base", base("I"))]
    for m in vocab.methods():
        soft = clipo("I", m, "softnn")
        t15_rows += [Row(vocab.method_label(m), rl("I", m)), Row(f"CLIPO-{vocab.loss_label('softnn')}", soft),
                     _delta(soft, rl("I", m))]
    t15 = TableSpec("table15", "Table 15", "CLIPO-SoftNN on top of each RLVR method (Track I).",
                    _benchmark_columns("I", {"GSM8K": "GSM"}), tuple(t15_rows))
    t16 = TableSpec("table16", "Table 16", "Contrastive temperature τ on Track I (GRPO+CLIPO).",
                    _benchmark_columns("I"),
                    tuple(Row(_tau_label(t), clipo("I", tau=t, seed=SWEEP_SEED_TRACK_I)) for t in TAUS_TRACK_I),
                    label_header="τ")
    t17 = TableSpec("table17", "Table 17", "Contrastive temperature τ on Track II (GRPO+CLIPO).",
                    _benchmark_columns("II"),
                    tuple(Row(_tau_label(t), clipo("II", tau=t)) for t in TAUS_TRACK_II), label_header="τ")
    t18 = TableSpec("table18", "Table 18", "Group size at two temperatures (GRPO+CLIPO, Track II).",
                    _benchmark_columns("II"),
                    tuple(Row(f"|G| = {g}", clipo("II", tau=t, group_size=g),
                              group=_tau_label(t) if i == 0 else "")
                          for t in (0.05, 0.02) for i, g in enumerate(GROUP_SIZES)),
                    label_header="GroupSize", group_header="τ")
    t19_rows: list[Row] = []
    for model, long, _ in MODEL_SECTIONS:
        t19_rows += [Row(long), Row("GRPO", rl("II", model=model)), Row("CLIPO", clipo("II", model=model)),
                     _delta(clipo("II", model=model), rl("II", model=model))]
    t19 = TableSpec("table19", "Table 19", "Performance comparison on various base models (Track II).",
                    _benchmark_columns("II"), tuple(t19_rows))
    tables = (t1, t2, t3, t5, t6, t7, t11, t12, t13, t14, t15, t16, t17, t18, t19)
    return {t.id: t for t in tables}


class _PaperTables(Mapping):
    """The paper's tables, rebuilt whenever a method or a contrastive loss is registered: Tables 1, 2,
    13, 14 and 15 list the registries' entries (an added one shows as a missing row of the paper)."""

    def __init__(self):
        self._key: tuple | None = None
        self._tables: dict[str, TableSpec] = {}

    def _current(self) -> dict[str, TableSpec]:
        key = (tuple(METHODS.values()), tuple(CONTRASTIVE_LOSSES.values()))
        if key != self._key:
            self._tables, self._key = _paper_tables(), key
        return self._tables

    def __getitem__(self, table_id: str) -> TableSpec:
        return self._current()[table_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


PAPER_TABLES: Mapping[str, TableSpec] = _PaperTables()
"""Every paper table with results, by id, in the paper's order."""


def runs_per_table(backend: str = "verl") -> dict[str, set[RunSpec]]:
    """The training runs (base models excluded) each paper table needs."""
    return {tid: {s.run_spec(backend) for s in spec.selects if s.method != "base"}
            for tid, spec in PAPER_TABLES.items()}


def required_runs(backend: str = "verl") -> set[RunSpec]:
    """Every training run the paper's tables need; a run shown in several tables is one entry."""
    return set().union(*runs_per_table(backend).values())


# ---------------------------------------------------------------------------------------------
# Mini track: the same shapes (Tables 1, 3 and 13), built from the runs a run set actually has
# ---------------------------------------------------------------------------------------------
def _taus(available: set[Select], **axes) -> list[float]:
    """τ values present for runs matching ``axes``, high to low as the paper's sweeps list them."""
    found = {s.tau for s in available if all(getattr(s, k) == v for k, v in axes.items())}
    return sorted((t for t in found if t is not None), reverse=True)


def _with_tau(label: str, tau: float, several: bool) -> str:
    return f"{label} (τ={tau:g})" if several else label


def supported_tables(runs: Iterable[Select]) -> dict[str, TableSpec]:
    """The tables a set of runs can fill: the paper's for Track I/II runs, mini-shaped ones for any other
    track. Used on scores (``clipo tables``) and on a config's grid before anything runs."""
    runs = list(runs)
    specs: dict[str, TableSpec] = {}
    tracks = {s.track for s in runs}
    if tracks & {"I", "II"}:
        specs.update(PAPER_TABLES)
    for track in sorted(tracks - {"I", "II"}):
        for tid, spec in mini_tables(runs, track).items():
            if tid in specs:  # a results folder mixing paper tracks and a CPU track
                tid = f"{tid}_{track}"
                spec = TableSpec(tid, spec.title, spec.caption, spec.columns, spec.rows, spec.label_header,
                                 spec.group_header, spec.marks, spec.notes)
            specs[tid] = spec
    return specs


def mini_tables(runs: Iterable[Select], track: str = "mini") -> dict[str, TableSpec]:
    """Table-1, Table-3 and Table-13-shaped tables for the runs present (seeds averaged).

    Model, τ and group size come from the data: every model gets its own section; the group size is
    the track's default (rollout.n) where runs with it exist, otherwise the most common one; a CLIPO
    variant run at several τ gets one row per τ. Baselines a Δ needs are selected even when absent,
    so the table reports them as missing.
    """
    available = {Select(s.track, s.model, s.method, s.clipo, s.tau, s.group_size, None)
                 for s in runs if s.track == track}
    if not available:
        return {}
    # the base model has no rollouts: its recorded group size (the track's default) must not pick G
    sizes = [s.group_size for s in available if s.method != "base"] or [s.group_size for s in available]
    g = TRACKS[track].rollout_n if TRACKS[track].rollout_n in sizes else max(set(sizes), key=sizes.count)
    models = sorted({s.model for s in available})
    cols = _benchmark_columns(track)
    t1: list[Row] = []
    t3: list[Row] = []
    t13: list[Row] = []
    for model in models:
        def sel(method: str, variant: str = "none", tau: float | None = None, model: str = model) -> Select:
            return Select(track, model, method, variant, tau, g, None)

        # The base model is no RL run: its group size is meaningless, accept whichever was recorded.
        base_sel = next((s for s in available if s.model == model and s.method == "base"), None)
        section = [Row(model)] if len(models) > 1 else []
        rows1 = ([Row(vocab.BASE_LABEL, base_sel)] if base_sel else [])
        rows1 += [Row(vocab.method_label(m), sel(m)) for m in vocab.methods() if sel(m) in available]
        for m in vocab.methods():
            taus = _taus(available, model=model, method=m, clipo="infonce", group_size=g)
            for tau in taus:
                rows1 += [Row(_with_tau(f"{vocab.method_label(m)}+CLIPO", tau, len(taus) > 1), sel(m, "infonce", tau)),
                          _delta(sel(m, "infonce", tau), sel(m))]
        if rows1:
            t1 += section + rows1
        for tau in _taus(available, model=model, method="grpo", clipo="infonce-fixed", group_size=g):
            on, fixed = sel("grpo", "infonce", tau), sel("grpo", "infonce-fixed", tau)
            group = f"{track if len(models) == 1 else model} (τ={tau:g})"
            t3 += [Row("CLIPO", on, group=group), Row("CLIPO-fixed", fixed), _delta(fixed, on)]
        rows13: list[Row] = []
        for loss in vocab.losses():
            taus = _taus(available, model=model, method="grpo", clipo=loss, group_size=g)
            for tau in taus:
                rows13 += [Row(_with_tau(f"CLIPO-{vocab.loss_label(loss)}", tau, len(taus) > 1),
                               sel("grpo", loss, tau)),
                           _delta(sel("grpo", loss, tau), sel("grpo"))]
        if len({r.select.clipo for r in rows13 if r.select}) > 1:  # a loss comparison needs two losses
            t13 += section + [Row("GRPO", sel("grpo"))] + rows13
    shape = f"{track} track, group size {g}"
    out = {}
    if t1:
        out["table1"] = TableSpec(
            "table1", f"Table 1 ({track} track)",
            f"RLVR methods with and without CLIPO, shaped like the paper's Table 1 ({shape}).",
            cols, tuple(t1), marks=BEST_TWO)
    if t3:
        out["table3"] = TableSpec(
            "table3", f"Table 3 ({track} track)",
            f"CLIPO with and without a fixed head, shaped like the paper's Table 3 ({shape}).",
            _avg_columns(("Metric 1", "Metric 2", "Avg.")), tuple(t3), group_header="Track")
    if t13:
        out["table13"] = TableSpec(
            "table13", f"Table 13 ({track} track)",
            f"Contrastive loss variants over GRPO, shaped like the paper's Table 13 ({shape}).",
            cols, tuple(t13))
    return out
