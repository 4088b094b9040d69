"""GRPO vs GRPO + CLIPO on the process metrics: paired-bootstrap intervals of Δ sound Pass@1 and Δ lucky
share from hand-built step-checked samples with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clipo.analysis import process
from clipo.analysis.stats import significance_tables
from clipo.data.registry import benchmarks
from clipo.errors import SchemaError
from clipo.runs import RunSpec
from clipo.scores import LUCKY_SHARE, SOUND_PASS_AT_1

SEEDS = (0, 1, 2)


def spec(clipo="none", tau=None, seed=0, method="grpo"):
    return RunSpec("mini", "mini-base", method, clipo, tau, 8, seed, "mini")


def samples_of(run: RunSpec, rng, p_correct: float, p_lucky: float, n: int = 150) -> pd.DataFrame:
    """Every mini benchmark, Test-T1 with 3 samples per problem; a correct sample is lucky with ``p_lucky``."""
    rows = []
    for b in benchmarks("mini"):
        for i in range(n):
            for k in range(3 if b == "Test-T1" else 1):
                correct = bool(rng.random() < p_correct)
                label = ("lucky" if rng.random() < p_lucky else "sound") if correct else "wrong"
                rows.append({"run_id": run.run_id, "benchmark": b, "problem_id": i, "sample_id": k,
                             "response": "", "extracted_answer": None, "correct": correct, "process": label})
    return pd.DataFrame(rows)


def write_run_set(root, lucky_clipo: float, lucky_grpo: float = 0.4, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    written = {}
    runs = [(spec(method="base"), 0.4, 0.4)] + [(spec(seed=s), 0.5, lucky_grpo) for s in SEEDS] + [
        (spec("infonce", 0.05, s), 0.5, lucky_clipo) for s in SEEDS]
    for run, p_correct, p_lucky in runs:
        df = samples_of(run, rng, p_correct, p_lucky)
        (root / "eval" / run.run_id).mkdir(parents=True)
        df.to_parquet(root / "eval" / run.run_id / "samples.parquet")
        written[run.run_id] = df
    return written


def _lucky_share(df: pd.DataFrame, bench: str) -> float:
    d = df[df.benchmark == bench]
    return 100 * (d.process == "lucky").sum() / d.correct.sum()


def test_fewer_lucky_clipo_answers_give_an_interval_below_zero(tmp_path):
    written = write_run_set(tmp_path, lucky_clipo=0.1)
    checked, unlabelled = process.load_process_samples(tmp_path)
    assert unlabelled == []
    table = process.process_table(checked, n_boot=2000)
    pooled = table[table["seeds"] == "0,1,2"].set_index(["metric", "benchmark"])
    lucky = pooled.loc[(LUCKY_SHARE, "Test")]
    # the point estimate is the seed mean of each run's share, CLIPO minus GRPO
    clipo = np.mean([_lucky_share(written[spec("infonce", 0.05, s).run_id], "Test") for s in SEEDS])
    grpo = np.mean([_lucky_share(written[spec(seed=s).run_id], "Test") for s in SEEDS])
    assert lucky["value"] == pytest.approx(clipo) and lucky["value_reference"] == pytest.approx(grpo)
    assert lucky["delta"] == pytest.approx(clipo - grpo)
    avg = pooled.loc[(LUCKY_SHARE, "Avg.")]
    assert avg["ci_high"] < 0 and avg["significant"]
    assert process.verdict(avg) == "yes"
    # fewer lucky answers at the same accuracy: more sound ones
    sound = pooled.loc[(SOUND_PASS_AT_1, "Avg.")]
    assert sound["ci_low"] > 0
    assert list(process.headline_comparisons(table)["seeds"].unique()) == ["0,1,2"]
    assert "Lucky share of correct answers" in process.process_markdown(table)


def test_more_lucky_answers_say_no_and_equal_ones_not_resolved(tmp_path):
    write_run_set(tmp_path / "more", lucky_clipo=0.7)
    more = process.process_table(process.load_process_samples(tmp_path / "more")[0], n_boot=2000)
    avg = more[(more.seeds == "0,1,2") & (more.metric == LUCKY_SHARE) & (more.benchmark == "Avg.")].iloc[0]
    assert avg.ci_low > 0 and process.verdict(avg) == "no"
    write_run_set(tmp_path / "same", lucky_clipo=0.4, seed=3)
    same = process.process_table(process.load_process_samples(tmp_path / "same")[0], n_boot=2000)
    avg = same[(same.seeds == "0,1,2") & (same.metric == LUCKY_SHARE) & (same.benchmark == "Avg.")].iloc[0]
    assert avg.ci_low < 0 < avg.ci_high and process.verdict(avg) == "not resolved"


def test_a_share_with_no_correct_answer_is_left_out_not_zero():
    lucky = np.array([[[1.0, 0.0]], [[0.0, 0.0]]])  # [variant, reference] × 1 seed × 2 problems
    correct = np.array([[[1.0, 1.0]], [[0.0, 0.0]]])  # the reference has no correct answer
    reps = process.lucky_share_replicates(lucky, correct, np.ones((50, 1)), np.random.default_rng(0))
    assert np.isnan(reps).all()
    assert np.isnan(process.share(lucky, correct)[1, 0]) and process.share(lucky, correct)[0, 0] == 50.0


def test_significance_writes_the_process_table_and_names_unlabelled_records(tmp_path, capsys):
    write_run_set(tmp_path, lucky_clipo=0.1)
    old = spec("infonce", 0.2)
    (tmp_path / "eval" / old.run_id).mkdir()
    samples_of(old, np.random.default_rng(0), 0.5, 0.1).drop(columns="process").to_parquet(
        tmp_path / "eval" / old.run_id / "samples.parquet")
    tables = significance_tables(tmp_path, paper=None, n_boot=500)
    assert f"no process labels (samples.parquet written before the step checker): {old.run_id}" in capsys.readouterr().out
    assert set(tables["process"]["clipo"]) == {"infonce"} and set(tables["process"]["seeds"]) == {"0,1,2"}
    assert set(tables["process"]["metric"]) == {SOUND_PASS_AT_1, LUCKY_SHARE}


def test_unknown_process_labels_are_named(tmp_path):
    run = spec()
    (tmp_path / "eval" / run.run_id).mkdir(parents=True)
    samples_of(run, np.random.default_rng(0), 0.5, 0.1, n=3).assign(process="maybe").to_parquet(
        tmp_path / "eval" / run.run_id / "samples.parquet")
    with pytest.raises(SchemaError, match="column process: unknown label"):
        process.load_process_samples(tmp_path)
