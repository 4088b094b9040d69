"""The transcription of the paper's numbers (results/paper/) against the paper's own printed averages and Δ.

scores.csv holds only per-benchmark scores; every average and Δ the paper prints sits in
printed_aggregates.csv, and is recomputed here from the scores through the same table specs the
renderer uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipo.analysis import paper_tables as pt
from clipo.analysis.results import RUN_KEY, load_scores
from clipo.analysis.tables import ScoreLookup, compute, fmt
from clipo.data.registry import benchmarks, by_benchmark

PAPER_DIR = Path(__file__).resolve().parents[1] / "results" / "paper"

# Benchmarks whose printed scores are not multiples of 100 / (n_problems · n_samples):
# MATH-Perturb simple/hard have 279 problems × 16 samples (denominator 4464), yet 7 of 24 Math_S and 17
# of 24 Math_H scores cannot be k/4464 (all 48 are consistent with k/8000, i.e. MATH500's 500 × 16).
# The paper's own figures, kept as printed; see results/paper/README.md.
NOT_ATTAINABLE = {"Math_S", "Math_H"}


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return load_scores(PAPER_DIR / "scores.csv")


@pytest.fixture(scope="module")
def printed() -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / "printed_aggregates.csv", dtype={"printed": str})


def _computed(scores: pd.DataFrame, printed: pd.DataFrame) -> pd.Series:
    lookup = ScoreLookup(scores)
    rendered = {tid: compute(spec, lookup) for tid, spec in pt.PAPER_TABLES.items()}
    values = []
    for row in printed.itertuples():
        r = rendered[row.table]
        assert r.spec.rows[row.row].label == row.label, (row.table, row.row)
        values.append(r.values[row.row][[c.name for c in r.spec.columns].index(row.column)])
    return pd.Series(values, index=printed.index, dtype=float)


def test_scores_are_complete_runs_in_the_tidy_format(scores):
    assert set(scores["source"]) == {"paper"}
    runs = scores.groupby(list(RUN_KEY), dropna=False)
    assert runs.ngroups == 43  # 41 training runs + the two Qwen base models
    for key, rows in runs:
        assert list(rows["benchmark"]) == benchmarks(key[0]), key
    track1 = scores[scores["track"] == "I"]
    assert set(track1["n_samples"]) == {1, 2} and set(scores[scores["track"] == "II"]["n_samples"]) == {16}
    # The released tQA/thrmQA files hold each question twice: n_problems counts distinct questions,
    # each answered twice (greedy decoding, yet the copies were graded apart: scores are k/1634, k/1494).
    for name, rows in (("tQA", 1634), ("thrmQA", 1494)):
        sub = track1[track1["benchmark"] == name]
        assert by_benchmark("I", name).rows == rows and set(sub["n_problems"]) == {rows // 2}
        assert set(sub["n_samples"]) == {2}
    assert set(track1[track1["benchmark"] == "MMLU"]["n_problems"]) == {1974}  # of 2000 rows; README


def test_every_printed_average_and_delta_is_recomputed_within_0_01(scores, printed):
    assert len(printed) == 456
    diff = (_computed(scores, printed) - printed["printed"].astype(float)).abs()
    assert diff.max() <= 0.01 + 1e-9, printed.assign(diff=diff).sort_values("diff").tail()
    # Every printed aggregate cell of every table is covered (Tables 3, 5, 7 entirely).
    for tid, spec in pt.PAPER_TABLES.items():
        numeric = [i for i, r in enumerate(spec.rows) if not r.is_section]
        for i in numeric:
            cols = set(printed[(printed["table"] == tid) & (printed["row"] == i)]["column"])
            want = {c.name for c in spec.columns if spec.rows[i].is_delta or c.key.startswith("avg:")}
            assert cols == want, (tid, i)


def test_track_i_exact_pass_rates_give_back_every_printed_digit(scores, printed):
    """Track I scores are k / (n_problems · n_samples) on a grid coarser than 0.01, so the exact rates can
    be recovered; from them every Track I average and Δ the paper prints comes out digit for digit —
    which checks the transcription and the problem counts (MMLU 1974, tQA 817 × 2, thrmQA 747 × 2)."""
    exact = scores.copy()
    n = exact["n_problems"] * exact["n_samples"]
    exact["score"] = np.round(exact["score"] * n / 100) * 100 / n
    track1 = printed[printed["table"].map(lambda t: {s.track for s in pt.PAPER_TABLES[t].selects} == {"I"})]
    assert len(track1) == 216  # Tables 1 (71 cells), 11 (17), 13 (45), 15 (71), 16 (12)
    got = _computed(exact, track1).map(fmt)
    assert (got == track1["printed"]).all(), track1.assign(got=got)[got != track1["printed"]]


def test_every_score_is_an_attainable_pass_rate(scores):
    n = scores["n_problems"] * scores["n_samples"]
    off = (np.round(scores["score"] * n / 100) * 100 / n - scores["score"]).abs() > 0.005 + 1e-9
    assert set(scores[off]["benchmark"]) == NOT_ATTAINABLE
    assert off.sum() == 24


def test_a_run_in_several_tables_is_one_set_of_rows(scores):
    raw = pd.read_csv(PAPER_DIR / "scores.csv", dtype={"tables": str})
    assert not raw.duplicated([*RUN_KEY, "benchmark"]).any()
    main2 = raw[(raw["track"] == "II") & (raw["model"] == pt.QWEN7B) & (raw["method"] == "grpo")
                & (raw["clipo"] == "infonce") & (raw["tau"] == 0.02) & (raw["group_size"] == 16)]
    assert len(main2) == 6 and set(main2["tables"]) == {"2 3 5 6 12 14 17 18"}
    # Table 2's GRPO+CLIPO is Table 17's τ = 0.02 row (Table 9 says τ = 0.05 for Track II).
    t2 = pt.PAPER_TABLES["table2"].rows[5]
    t17 = next(r for r in pt.PAPER_TABLES["table17"].rows if r.label == "0.02")
    assert t2.label == "GRPO+CLIPO" and t2.select == t17.select and t2.select.tau == 0.02


def test_table_1_clipo_is_no_run_of_the_track_i_tau_sweep(scores):
    """Table 1's GRPO+CLIPO matches no row of Table 16, so the sweep is keyed as separate runs (seed 1)."""
    lookup = ScoreLookup(scores)
    main = lookup.scores(pt.clipo("I"))
    for tau in pt.TAUS_TRACK_I:
        sweep = lookup.scores(pt.clipo("I", tau=tau, seed=pt.SWEEP_SEED_TRACK_I))
        assert sweep.keys() == main.keys() and sweep != main, tau
