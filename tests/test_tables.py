"""Rendering tables: the paper's Tables 1 and 2 back from the transcription, marks, partial run sets,
mini-track shapes, the run set the paper needs, and bad input."""

from __future__ import annotations

import csv
import re

import pandas as pd
import pytest

from clipo.analysis import paper_tables as pt
from clipo.analysis.results import load_scores
from clipo.analysis.tables import BOLD, UNDERLINE, ScoreLookup, compute, fmt, tex_escape, to_markdown
from clipo.cli import main as clipo_main
from clipo.data.registry import benchmarks
from clipo.errors import SchemaError
from clipo.runs import RunSpec
from clipo.scores import SCORE_COLUMNS

# The paper's Tables 1 and 2 exactly as printed (../shared/paper/clipo-paper.md; <u> = underlined).
PAPER_TABLE1 = """\
| Methods | GSM8K | SYM | P1 | P2 | cQA | tQA | thrmQA | MMLU | M-Avg. | G-Avg. | Avg. |
|------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|
| Base Model | 86.05 | 82.40 | 70.90 | 47.96 | 73.63 | 29.99 | 24.90 | 68.09 | 71.83 | 49.15 | 60.49 |
| GRPO | 87.79 | 84.04 | 73.12 | 50.80 | 74.94 | 30.48 | 27.71 | 68.19 | 73.94 | 50.33 | 62.13 |
| GSPO | 87.19 | 83.94 | 73.28 | 51.36 | 74.86 | 30.23 | 27.38 | 67.68 | 73.94 | 50.04 | 61.99 |
| DAPO | 87.41 | 84.56 | <u>74.70</u> | 52.32 | 76.00 | 31.58 | 27.11 | 69.00 | 74.75 | 50.92 | 62.84 |
| GMPO | 86.81 | 84.02 | 73.90 | 49.80 | 76.33 | 30.97 | 26.57 | 68.49 | 73.63 | 50.59 | 62.11 |
| GRPO+CLIPO | 88.02 | 84.62 | 74.60 | 54.16 | <u>76.90</u> | 31.52 | <u>27.58</u> | <u>68.64</u> | 75.35 | 51.16 | 63.26 |
| Δ | 0.23 | 0.58 | 1.48 | 3.36 | 1.97 | 1.04 | -0.13 | 0.46 | 1.41 | 0.83 | 1.12 |
| GSPO+CLIPO | <u>87.95</u> | 83.98 | 74.54 | 52.92 | 75.92 | 32.19 | 26.10 | 67.48 | 74.85 | 50.42 | 62.63 |
| Δ | 0.76 | 0.04 | 1.26 | 1.56 | 1.06 | 1.96 | -1.27 | -0.20 | 0.90 | 0.39 | 0.65 |
| DAPO+CLIPO | 87.57 | <u>84.66</u> | 74.54 | <u>53.12</u> | 77.07 | 31.40 | 27.44 | 67.93 | <u>74.97</u> | <u>50.96</u> | <u>62.97</u> |
| Δ | 0.15 | 0.10 | -0.16 | 0.80 | 1.06 | -0.18 | 0.33 | -1.06 | 0.22 | 0.04 | 0.13 |
| GMPO+CLIPO | 87.64 | 85.52 | 75.52 | 50.92 | 75.35 | <u>31.95</u> | <u>27.58</u> | 67.63 | 74.90 | 50.63 | 62.76 |
| Δ | 0.83 | 1.50 | 1.62 | 1.12 | -0.98 | 0.98 | 1.00 | -0.86 | 1.27 | 0.03 | 0.65 |
"""  # noqa: E501 (the paper's text, verbatim)

PAPER_TABLE2 = """| Methods | Math | Math_S | Math_H | AMC | AIME | AIME25 | M-Avg. | C-Avg. | Avg. |
|------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|--------------|
| Base Model | 75.35 | 59.24 | 35.31 | 44.13 | 10.63 | 6.25 | 56.63 | 20.33 | 38.48 |
| GRPO | 76.46 | 64.83 | 37.86 | 46.84 | 17.92 | 9.58 | 59.72 | 24.78 | 42.25 |
| GSPO | <u>77.58</u> | 64.56 | 38.36 | <u>50.08</u> | 16.25 | 10.42 | 60.17 | 25.58 | 42.87 |
| DAPO | 76.03 | 66.08 | 39.94 | 47.36 | 19.79 | 7.92 | 60.68 | 25.02 | 42.85 |
| GMPO | 78.47 | 64.27 | 37.25 | 48.42 | 19.58 | 9.58 | 60.00 | 25.86 | 42.93 |
| GRPO+CLIPO | 77.49 | 67.21 | 38.97 | 49.17 | 18.13 | 10.63 | 61.22 | 25.97 | 43.60 |
| Δ | 1.03 | 2.38 | 1.11 | 2.33 | 0.21 | 1.04 | 1.50 | 1.19 | 1.35 |
| GSPO+CLIPO | 77.16 | 66.69 | 37.66 | 50.53 | 20.63 | 9.38 | 60.50 | 26.84 | 43.67 |
| Δ | -0.41 | 2.13 | -0.70 | 0.45 | 4.38 | -1.04 | 0.34 | 1.26 | 0.80 |
| DAPO+CLIPO | 77.43 | 66.55 | <u>39.82</u> | 48.42 | 18.75 | 13.33 | <u>61.27</u> | <u>26.83</u> | 44.05 |
| Δ | 1.40 | 0.48 | -0.11 | 1.05 | -1.04 | 5.42 | 0.59 | 1.81 | 1.20 |
| GMPO+CLIPO | 77.87 | <u>67.14</u> | 38.83 | 47.67 | <u>19.38</u> | <u>11.67</u> | 61.28 | 26.24 | <u>43.76</u> |
| Δ | -0.60 | 2.88 | 1.58 | -0.75 | -0.21 | 2.08 | 1.28 | 0.37 | 0.83 |
"""

# Cells where the rendering (averages and Δ computed from the two-decimal scores) prints another last
# digit than the paper, which computed them from unrounded scores. Keys: (body row index, column).
# Each differs by at most 0.01; for Track I (and AMC/AIME on Track II) the exact Pass@1 fractions
# k / (n_problems · n_samples) behind the printed scores give the paper's digit back.
ROUNDING = {
    "table1": {
        (6, "cQA"): "1.97",  # Δ GRPO+CLIPO: 76.90 - 74.94 = 1.96; exact fractions 1.9656
        (6, "MMLU"): "0.46",  # Δ GRPO+CLIPO: 68.64 - 68.19 = 0.45; exact 0.4559
        (7, "Avg."): "62.63",  # GSPO+CLIPO: mean of printed scores 62.6350 -> 62.64; exact 62.6349
        (8, "thrmQA"): "-1.27",  # Δ GSPO+CLIPO: 26.10 - 27.38 = -1.28; exact -1.2718
        (8, "M-Avg."): "0.90",  # Δ GSPO+CLIPO: 0.9050 -> 0.91; exact 0.9045
        (10, "GSM8K"): "0.15",  # Δ DAPO+CLIPO: 87.57 - 87.41 = 0.16; exact 0.1516
        (10, "cQA"): "1.06",  # Δ DAPO+CLIPO: 77.07 - 76.00 = 1.07; exact 1.0647
        (10, "MMLU"): "-1.06",  # Δ DAPO+CLIPO: 67.93 - 69.00 = -1.07; exact -1.0638
        (10, "M-Avg."): "0.22",  # Δ DAPO+CLIPO: 0.2250 -> 0.23; exact 0.2229
        (12, "thrmQA"): "1.00",  # Δ GMPO+CLIPO: 27.58 - 26.57 = 1.01; exact 1.0040
        (12, "G-Avg."): "0.03",  # Δ GMPO+CLIPO: 0.0375 -> 0.04; exact 0.0348
    },
    "table2": {
        (0, "C-Avg."): "20.33",  # Base Model: (44.13 + 10.63 + 6.25) / 3 = 20.3367 -> 20.34
        (0, "Avg."): "38.48",  # Base Model: mean 38.4850 -> 38.49
        (2, "Avg."): "42.87",  # GSPO: mean 42.8750 -> 42.88
        (5, "C-Avg."): "25.97",  # GRPO+CLIPO: (49.17 + 18.13 + 10.63) / 3 = 25.9767 -> 25.98
        (6, "AIME25"): "1.04",  # Δ GRPO+CLIPO: 10.63 - 9.58 = 1.05; exact 51/480 - 46/480 = 1.0417
        (6, "M-Avg."): "1.50",  # Δ GRPO+CLIPO: 1.5067 -> 1.51
        (6, "C-Avg."): "1.19",  # Δ GRPO+CLIPO: 1.1967 -> 1.20
        (7, "C-Avg."): "26.84",  # GSPO+CLIPO: mean 26.8467 -> 26.85
        (7, "Avg."): "43.67",  # GSPO+CLIPO: mean 43.6750 -> 43.68
        (8, "Math"): "-0.41",  # Δ GSPO+CLIPO: 77.16 - 77.58 = -0.42
        (10, "Math_S"): "0.48",  # Δ DAPO+CLIPO: 66.55 - 66.08 = 0.47
        (10, "Math_H"): "-0.11",  # Δ DAPO+CLIPO: 39.82 - 39.94 = -0.12
        (10, "AMC"): "1.05",  # Δ DAPO+CLIPO: 48.42 - 47.36 = 1.06; exact 1.0542
        (10, "AIME25"): "5.42",  # Δ DAPO+CLIPO: 13.33 - 7.92 = 5.41; exact 5.4167
        (10, "M-Avg."): "0.59",  # Δ DAPO+CLIPO: 0.5833 -> 0.58
        (12, "Math_S"): "2.88",  # Δ GMPO+CLIPO: 67.14 - 64.27 = 2.87
        (12, "AIME"): "-0.21",  # Δ GMPO+CLIPO: 19.38 - 19.58 = -0.20; exact -0.2083
        (12, "AIME25"): "2.08",  # Δ GMPO+CLIPO: 11.67 - 9.58 = 2.09; exact 2.0833
        (12, "C-Avg."): "0.37",  # Δ GMPO+CLIPO: 0.3800 -> 0.38 (paper: 0.37 from unrounded scores)
    },
}


def parse_markdown(text: str) -> tuple[list[str], list[list[str]], set[tuple[int, str]]]:
    """Header, body cells without markup, and the (row, column) positions the paper underlines."""
    lines = [line for line in text.strip().splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    header, body = split[0], split[2:]
    underlined = {(i, header[j]) for i, row in enumerate(body) for j, c in enumerate(row) if "<u>" in c}
    return header, [[re.sub(r"</?u>", "", c) for c in row] for row in body], underlined


@pytest.fixture(scope="module")
def paper_csvs(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    assert clipo_main(["tables", "--source", "paper", "--out", str(out), "--only", "table1,table2"]) == 0
    return {t: list(csv.reader((out / f"{t}.csv").open(encoding="utf-8"))) for t in ("table1", "table2")} | {
        "dir": out}


@pytest.mark.parametrize("tid,printed", [("table1", PAPER_TABLE1), ("table2", PAPER_TABLE2)])
def test_render_paper_reproduces_table_cell_for_cell(paper_csvs, tid, printed):
    header, body, _ = parse_markdown(printed)
    rendered = paper_csvs[tid]
    assert rendered[0] == header
    assert len(rendered) - 1 == len(body)
    rounding = ROUNDING[tid]
    for i, (want, got) in enumerate(zip(body, rendered[1:], strict=True)):
        assert got[0] == want[0], f"row {i} label"
        for name, w, g in zip(header[1:], want[1:], got[1:], strict=True):
            if (i, name) in rounding:
                assert rounding[(i, name)] == w, "fixture must hold the printed value"
                assert g != w and abs(float(g) - float(w)) <= 0.01 + 1e-9, (i, name, g, w)
            else:
                assert g == w, f"{tid} row {i} ({want[0]}) column {name}: rendered {g}, paper {w}"


def test_csv_is_unstyled_and_other_formats_are_styled(paper_csvs):
    out = paper_csvs["dir"]
    text = (out / "table1.csv").read_text(encoding="utf-8")
    assert "<u>" not in text and "**" not in text and "textbf" not in text
    md = (out / "table1.md").read_text(encoding="utf-8")
    tex = (out / "table1.tex").read_text(encoding="utf-8")
    assert "**88.02**" in md and "<u>87.95</u>" in md
    assert r"\textbf{88.02}" in tex and r"\underline{87.95}" in tex
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrrrrrrr}"):
        assert rule in tex
    assert r"$\Delta$ & 0.23" in tex


def test_markdown_escapes_pipes_in_labels():
    md = to_markdown(compute(pt.PAPER_TABLES["table6"], ScoreLookup(load_scores("paper"))))
    assert r"| \|G\| = 8 | 77.41 |" in md
    assert all(line.count(" | ") == 9 for line in md.splitlines() if line.startswith("| "))  # 10 cells


def _paper_marks(tid: str):
    r = compute(pt.PAPER_TABLES[tid], ScoreLookup(load_scores("paper")))
    names = [c.name for c in r.spec.columns]
    bold = {(i, names[j]) for i, row in enumerate(r.marks) for j, m in enumerate(row) if m == BOLD}
    under = {(i, names[j]) for i, row in enumerate(r.marks) for j, m in enumerate(row) if m == UNDERLINE}
    return bold, under


def test_table1_marks_equal_the_papers():
    bold, under = _paper_marks("table1")
    _, _, paper_under = parse_markdown(PAPER_TABLE1)
    assert under == paper_under
    # The markdown of the paper lost its bold; the caption's rule (best per column) names these cells.
    assert bold == {(5, "GSM8K"), (11, "SYM"), (11, "P1"), (5, "P2"), (9, "cQA"), (7, "tQA"), (1, "thrmQA"),
                    (3, "MMLU"), (5, "M-Avg."), (5, "G-Avg."), (5, "Avg.")}


def test_table2_marks_equal_the_papers_except_its_two_slips():
    bold, under = _paper_marks("table2")
    _, _, paper_under = parse_markdown(PAPER_TABLE2)
    # Math: the paper underlines GSPO (77.58) although GMPO+CLIPO's 77.87 is second best;
    # AIME: it underlines GMPO+CLIPO (19.38) although DAPO's 19.79 is second best.
    assert paper_under - under == {(2, "Math"), (11, "AIME")}
    assert under - paper_under == {(11, "Math"), (3, "AIME")}
    assert (4, "Math") in bold and (7, "AIME") in bold


def test_marks_only_where_the_paper_marks_them():
    marked = {t: s.marks for t, s in pt.PAPER_TABLES.items() if s.marks}
    assert marked == {"table1": (BOLD, UNDERLINE), "table2": (BOLD, UNDERLINE), "table5": (BOLD, UNDERLINE),
                      "table6": (BOLD,)}


# ------------------------------------------------------------------------------------------------
# Run sets
# ------------------------------------------------------------------------------------------------
def _scores(run: RunSpec, values: dict[str, float], source: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "source": source, "track": run.track, "model": run.model, "method": run.method, "clipo": run.clipo,
        "tau": run.tau, "group_size": run.group_size, "seed": run.seed, "benchmark": b, "score": v,
        "n_problems": 100, "n_samples": 1} for b, v in values.items()], columns=list(SCORE_COLUMNS))


def _write_run(root, run: RunSpec, values: dict[str, float], source: str = "gpu") -> None:
    path = root / "eval" / run.run_id / "scores.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    _scores(run, values, source).to_csv(path, index=False)


def test_partial_run_set_renders_what_it_has_and_names_the_missing_runs(tmp_path, capsys):
    bench = benchmarks("II")
    runs = {pt.base("II"): 30.0, pt.rl("II"): 40.0, pt.clipo("II"): 42.0}
    for sel, value in runs.items():
        _write_run(tmp_path / "gpu", sel.run_spec("verl"), {b: value + k for k, b in enumerate(bench)})
    out = tmp_path / "tables"
    assert clipo_main(["tables", "--source", str(tmp_path / "gpu"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "table2: wrote" in printed and "partial" in printed
    assert "table7: skipped" in printed and not (out / "table7.md").exists()
    rows = list(csv.reader((out / "table2.csv").open(encoding="utf-8")))
    by_label = {r[0]: r[1:] for r in rows[1:] if r[0] != "Δ"}
    assert by_label["GRPO"][:6] == [fmt(40.0 + k) for k in range(6)]
    assert by_label["GRPO"][6:] == ["41.00", "44.00", "42.50"]  # M-Avg., C-Avg., Avg.
    assert by_label["GSPO"] == [""] * 9  # missing run: empty cells, not zeros
    assert rows[7][1:] == ["2.00"] * 9  # Δ GRPO+CLIPO - GRPO
    gspo = pt.rl("II", "gspo").run_spec("verl").run_id
    md = (out / "table2.md").read_text(encoding="utf-8")
    tex = (out / "table2.tex").read_text(encoding="utf-8")
    assert "Missing runs" in md and gspo in md
    assert any(line.startswith("% Note: Missing runs") and gspo in line for line in tex.splitlines())
    assert pt.clipo("II").run_spec("verl").run_id not in md.split("Missing runs")[1]
    # Table 5 has one of its five τ runs.
    t5 = list(csv.reader((out / "table5.csv").open(encoding="utf-8")))
    assert [r[0] for r in t5[1:]] == ["0.2", "0.1", "0.05", "0.02", "0.015"]
    assert t5[4][1:] == ["43.00", "46.00", "44.50"] and t5[1][1:] == ["", "", ""]


def test_incomplete_run_leaves_its_averages_empty(tmp_path):
    bench = benchmarks("I")
    _write_run(tmp_path, pt.rl("I").run_spec("verl"), {b: 50.0 for b in bench[:-1]})  # no MMLU
    r = compute(pt.PAPER_TABLES["table1"], ScoreLookup(load_scores(tmp_path)))
    grpo = r.values[1]
    assert grpo[:7] == [50.0] * 7 and grpo[7:] == [None, 50.0, None, None]
    assert any("lacks benchmark(s) MMLU" in n for n in r.notes)


def _mini_run_set(root):
    """Two seeds of a small mini grid; seed 1 scores 2 points above seed 0."""
    bench = benchmarks("mini")
    runs = [("base", "none", None, 0.0), ("grpo", "none", None, 10.0), ("grpo", "infonce", 0.05, 14.0),
            ("grpo", "infonce", 0.1, 12.0), ("grpo", "supcon", 0.05, 11.0), ("grpo", "softnn", 0.05, 13.0),
            ("grpo", "infonce-fixed", 0.05, 9.0)]
    for method, variant, tau, score in runs:
        for seed in (0, 1):
            run = RunSpec("mini", "mini-base", method, variant, tau, 8, seed, "mini")
            _write_run(root, run, {b: 40.0 + score + 2 * seed for b in bench}, source="mini")


def test_mini_run_set_gets_table_1_3_13_shapes_averaged_over_seeds(tmp_path, capsys):
    _mini_run_set(tmp_path / "mini")
    out = tmp_path / "tables"
    assert clipo_main(["tables", "--source", str(tmp_path / "mini"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}.{e}" for t in ("table1", "table3", "table13") for e in ("md", "tex", "csv", "html"))
    t1 = list(csv.reader((out / "table1.csv").open(encoding="utf-8")))
    columns = [*benchmarks("mini"), "M-Avg.", "G-Avg.", "Avg."]
    ncols = len(columns)  # every benchmark (the sampled Test-T1 too), M-/G-Avg., Avg.
    assert t1[0] == ["Methods", *columns, *(f"{c} sd" for c in columns)]
    labels = [r[0] for r in t1[1:]]
    assert labels == ["Base Model", "GRPO", "GRPO+CLIPO (τ=0.1)", "Δ", "GRPO+CLIPO (τ=0.05)", "Δ"]
    assert t1[2][1] == "51.00"  # GRPO: mean of 50 (seed 0) and 52 (seed 1)
    assert t1[2][1 + ncols:] == ["1.41"] * ncols  # their standard deviation, sqrt(2)
    assert t1[4][1:1 + ncols] == ["2.00"] * ncols and t1[6][1:1 + ncols] == ["4.00"] * ncols
    assert t1[4][1 + ncols:] == [""] * ncols  # a Δ row has no spread of its own
    md = (out / "table1.md").read_text(encoding="utf-8")
    assert "mean over the seeds present (seeds: 0, 1)" in md and "51.00 ±1.41" in md
    assert r"{\scriptsize$\pm$1.41}" in (out / "table1.tex").read_text(encoding="utf-8")
    t3 = list(csv.reader((out / "table3.csv").open(encoding="utf-8")))
    assert [r[1] for r in t3[1:]] == ["CLIPO", "CLIPO-fixed", "Δ"] and t3[3][2:5] == ["-5.00"] * 3
    assert t3[1][0] == "mini (τ=0.05)"
    t13 = list(csv.reader((out / "table13.csv").open(encoding="utf-8")))
    assert [r[0] for r in t13[1:]] == ["GRPO", "CLIPO-InfoNCE (τ=0.1)", "Δ", "CLIPO-InfoNCE (τ=0.05)", "Δ",
                                        "CLIPO-SupCon", "Δ", "CLIPO-SoftNN", "Δ"]
    assert t13[-1][1:1 + ncols] == ["3.00"] * ncols


def test_mini_table1_shows_rl_runs_of_another_group_size_than_the_base(tmp_path):
    """The base model records the track's G (8); RL runs at G=4 (the CI config) are the table's rows."""
    bench = benchmarks("mini")
    for method, variant, tau, g in [("base", "none", None, 8), ("grpo", "none", None, 4),
                                    ("grpo", "infonce", 0.05, 4)]:
        _write_run(tmp_path, RunSpec("mini", "mini-base", method, variant, tau, g, 0, "mini"),
                   {b: 10.0 for b in bench}, source="tiny")
    out = tmp_path / "tables"
    assert clipo_main(["tables", "--source", str(tmp_path), "--out", str(out), "--only", "table1"]) == 0
    labels = [r[0] for r in csv.reader((out / "table1.csv").open(encoding="utf-8"))][1:]
    assert labels == ["Base Model", "GRPO", "GRPO+CLIPO", "Δ"]


# ------------------------------------------------------------------------------------------------
# The runs the paper needs (the workflow's configs/paper.yaml is checked against these)
# ------------------------------------------------------------------------------------------------
EXPECTED_RUNS_PER_TABLE = {
    "table1": 8,  # GRPO, GSPO, DAPO, GMPO, each with and without CLIPO (Track I)
    "table2": 8,  # the same on Track II
    "table3": 4,  # CLIPO and CLIPO-fixed on both tracks
    "table5": 5,  # Track II τ ∈ {0.2, 0.1, 0.05, 0.02, 0.015}
    "table6": 3,  # Track II |G| ∈ {8, 16, 32} at τ = 0.02
    "table7": 4,  # DS-7B and Llama-8B, GRPO with and without CLIPO
    "table11": 2,
    "table12": 2,
    "table13": 4,  # GRPO, InfoNCE, SupCon, SoftNN (Track I)
    "table14": 4,
    "table15": 8,  # four methods with and without CLIPO-SoftNN (Track I)
    "table16": 4,  # Track I τ ∈ {0.2, 0.1, 0.05, 0.02}, the separate sweep batch (seed 1)
    "table17": 5,
    "table18": 6,  # τ ∈ {0.05, 0.02} × |G| ∈ {8, 16, 32}
    "table19": 4,
}


def test_required_runs_counts_per_table_and_no_duplicates():
    per_table = pt.runs_per_table("verl")
    assert {t: len(r) for t, r in per_table.items()} == EXPECTED_RUNS_PER_TABLE
    runs = pt.required_runs("verl")
    ids = [r.run_id for r in runs]
    assert len(ids) == len(set(ids)) == 41
    assert all(r.backend == "verl" and r.method != "base" for r in runs)
    shared = RunSpec("II", "qwen2.5-7b-instruct", "grpo", "infonce", 0.02, 16, 0, "verl")
    assert {t for t, r in per_table.items() if shared in r} == {
        "table2", "table3", "table5", "table6", "table12", "table14", "table17", "table18"}
    assert {r.seed for r in per_table["table16"]} == {1}
    assert pt.required_runs("mini") == {r.__class__(**{**r.as_dict(), "backend": "mini"}) for r in runs}


# ------------------------------------------------------------------------------------------------
# Formatting and bad input
# ------------------------------------------------------------------------------------------------
def test_number_format_is_the_papers():
    assert fmt(63.255) == "63.26"  # half away from zero, as Table 1's Avg. of GRPO+CLIPO
    assert fmt(-0.004) == "0.00" and fmt(-0.006) == "-0.01" and fmt(None) == ""
    assert tex_escape("Δ τ |G| Math_S 5%") == r"$\Delta$ $\tau$ $|$G$|$ Math\_S 5\%"


def test_bad_inputs_fail_with_one_clear_error(tmp_path, capsys):
    assert clipo_main(["tables", "--source", "paper", "--out", str(tmp_path), "--only", "table4"]) == 2
    assert "unknown table(s) table4" in capsys.readouterr().err
    assert clipo_main(["tables", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad"
    _write_run(bad, pt.rl("II").run_spec("verl"), {"GSM8K": 50.0})
    with pytest.raises(SchemaError, match=r"bad/eval/.*scores.csv: row 2: benchmark is not one of track II"):
        load_scores(bad)
    dup = tmp_path / "dup"
    _write_run(dup, pt.rl("II").run_spec("verl"), {"Math": 50.0})
    extra = dup / "again" / "scores.csv"
    extra.parent.mkdir()
    (dup / "eval" / pt.rl("II").run_spec("verl").run_id / "scores.csv").replace(extra)
    _write_run(dup, pt.rl("II").run_spec("verl"), {"Math": 51.0})
    with pytest.raises(SchemaError, match="appears more than once"):
        load_scores(dup)


def test_only_skips_a_known_table_the_run_set_cannot_fill(tmp_path, capsys):
    for method, variant, tau in (("grpo", "none", None), ("grpo", "infonce", 0.05)):
        _write_run(tmp_path / "mini", RunSpec("mini", "mini-base", method, variant, tau, 8, 0, "mini"),
                   {b: 50.0 for b in benchmarks("mini")}, source="mini")
    out = tmp_path / "tables"
    assert clipo_main(["tables", "--source", str(tmp_path / "mini"), "--out", str(out),
                       "--only", "table1,table3"]) == 0
    assert "table3: skipped" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["table1.csv", "table1.html", "table1.md", "table1.tex"]
    assert clipo_main(["tables", "--source", str(tmp_path / "mini"), "--out", str(out), "--only", "table2"]) == 2
    assert "no table could be rendered" in capsys.readouterr().err


def test_two_sources_scoring_the_same_run_are_refused(tmp_path, capsys):
    run = pt.rl("II").run_spec("verl")
    _write_run(tmp_path / "a", run, {"Math": 50.0}, source="gpu-a")
    _write_run(tmp_path / "b", run, {"Math": 51.0}, source="gpu-b")
    assert clipo_main(["tables", "--source", str(tmp_path), "--out", str(tmp_path / "t")]) == 2
    assert "scored by several sources (gpu-a, gpu-b)" in capsys.readouterr().err


def test_markdown_table_helper_aligns_escapes_and_checks_widths():
    from clipo.analysis import markdown

    assert markdown.table(["a", markdown.cell("|G|")], "lr", [["x", "1"]]) == "| a | \\|G\\| |\n|---|---:|\n| x | 1 |\n"
    with pytest.raises(ValueError, match="2 cells under 3 columns"):
        markdown.table(["a", "b", "c"], "lcr", [["x", "y"]])
