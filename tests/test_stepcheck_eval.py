"""Process metrics in evaluation: the ``process`` label per sample and the per-benchmark rows in scores.csv,
written without changing what any Pass@1 reader sees."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from clipo.analysis.results import load_scores
from clipo.cli import main as cli_main
from clipo.data.synthetic import generate_split
from clipo.errors import SchemaError
from clipo.evaluate import aggregate, score_samples, with_process_metrics
from clipo.runs import RunSpec
from clipo.scores import LUCKY_SHARE, METRIC, PASS_AT_1, SCORE_COLUMNS, SOUND_PASS_AT_1, read_scores, write_scores

RUN_ID = "mini_mini-base_grpo_none_tau-_g8_s0_mini"
SPEC = RunSpec.parse(RUN_ID)


def _mini(split: str, n: int) -> pd.DataFrame:
    return generate_split(split, n, seed=5, seen=set())


def _unsound(info) -> str:
    """The right answer with the first step's result off by one."""
    solution = info["solution"]
    first = info["chain"][0]
    stated = f"{info['start']} {first['op']} {first['operand']} = {first['result']}."
    return solution.replace(stated, f"{info['start']} {first['op']} {first['operand']} = {first['result'] + 1}.")


def _samples() -> pd.DataFrame:
    test, mc = _mini("test", 4), _mini("mc", 2)
    t, m = list(test["extra_info"]), list(mc["extra_info"])
    test_responses = [[t[0]["solution"], _unsound(t[0])],  # sound, lucky
                      [t[1]["solution"], "The answer is \\boxed{999}."],  # sound, wrong
                      [f"\\boxed{{{t[2]['answer']}}}", _unsound(t[2])],  # lucky (answer alone), lucky
                      [t[3]["solution"], t[3]["solution"]]]  # sound, sound
    mc_responses = [[m[0]["solution"]], [_unsound(m[1])]]  # sound, lucky
    gsm = test.assign(extra_info=[{"index": i} for i in range(len(test))])  # rows without a chain
    return pd.concat([score_samples(RUN_ID, "Test", test, test_responses),
                      score_samples(RUN_ID, "MC", mc, mc_responses),
                      score_samples(RUN_ID, "SYM", gsm, [[r[0]] for r in test_responses])], ignore_index=True)


def test_each_sample_carries_its_process_label_and_the_reward_is_unchanged():
    samples = _samples()
    test = samples[samples.benchmark == "Test"]
    assert test["process"].tolist() == ["sound", "lucky", "sound", "wrong", "lucky", "lucky", "sound", "sound"]
    # the outcome (reward) is the same whether or not the work is sound
    assert test["correct"].tolist() == [True, True, True, False, True, True, True, True]
    assert samples.loc[samples.benchmark == "MC", "process"].tolist() == ["sound", "lucky"]
    assert samples.loc[samples.benchmark == "SYM", "process"].isna().all()


def test_scores_gain_sound_pass_at_1_and_lucky_share_rows_per_checked_benchmark():
    samples = _samples()
    pass1 = aggregate(samples, SPEC, "mini")
    assert METRIC not in pass1.columns  # aggregate is Pass@1 only, as before
    table = with_process_metrics(pass1, samples)
    by = table.set_index(["benchmark", METRIC])["score"]
    assert by[("Test", PASS_AT_1)] == pytest.approx(100 * 7 / 8)
    assert by[("Test", SOUND_PASS_AT_1)] == pytest.approx(100 * 4 / 8)
    assert by[("Test", LUCKY_SHARE)] == pytest.approx(100 * 3 / 7)
    assert by[("MC", SOUND_PASS_AT_1)] == pytest.approx(50.0) and by[("MC", LUCKY_SHARE)] == pytest.approx(50.0)
    assert ("SYM", SOUND_PASS_AT_1) not in by.index  # not step-checkable: Pass@1 only
    assert table.set_index(["benchmark", METRIC]).loc[("Test", LUCKY_SHARE), "n_samples"] == 2
    # a table without any checkable benchmark is returned unchanged
    plain = samples[samples.benchmark == "SYM"]
    assert with_process_metrics(aggregate(plain, SPEC, "mini"), plain).equals(aggregate(plain, SPEC, "mini"))


def test_the_lucky_share_is_undefined_without_a_correct_answer():
    test = _mini("test", 2)
    samples = score_samples(RUN_ID, "Test", test, [["\\boxed{999}"], ["no answer"]])
    table = with_process_metrics(aggregate(samples, SPEC, "mini"), samples).set_index(METRIC)["score"]
    assert table[SOUND_PASS_AT_1] == 0.0 and math.isnan(table[LUCKY_SHARE])


def test_pass_at_1_readers_see_the_same_table_with_or_without_process_rows(tmp_path):
    samples = _samples()
    pass1 = aggregate(samples, SPEC, "mini")
    write_scores(pass1, tmp_path / "old" / "eval" / RUN_ID / "scores.csv")
    write_scores(with_process_metrics(pass1, samples), tmp_path / "new" / "eval" / RUN_ID / "scores.csv")
    old_file, new_file = (tmp_path / d / "eval" / RUN_ID / "scores.csv" for d in ("old", "new"))
    assert METRIC not in pd.read_csv(old_file).columns  # files without process rows are written as before
    assert list(pd.read_csv(new_file).columns) == [*SCORE_COLUMNS, METRIC]
    pd.testing.assert_frame_equal(read_scores(new_file), read_scores(old_file))
    pd.testing.assert_frame_equal(load_scores(tmp_path / "new"), load_scores(tmp_path / "old"))
    lucky = read_scores(new_file, LUCKY_SHARE)
    assert list(lucky.columns) == list(SCORE_COLUMNS) and lucky["benchmark"].tolist() == ["Test", "MC"]
    assert read_scores(old_file, SOUND_PASS_AT_1).empty  # an older file has no process metrics


def test_bad_metric_values_are_named(tmp_path):
    pass1 = aggregate(_samples(), SPEC, "mini")
    bad = pass1.assign(metric=["pass@1", "pass@1", "pass@2"])
    with pytest.raises(SchemaError, match=r"scores.csv: column metric: unknown value\(s\) pass@2"):
        write_scores(bad, tmp_path / "scores.csv")
    pass1.assign(metric="pass@2").to_csv(tmp_path / "hand.csv", index=False)
    with pytest.raises(SchemaError, match=r"hand.csv: column metric: unknown value\(s\) pass@2"):
        read_scores(tmp_path / "hand.csv")
    write_scores(pass1, tmp_path / "ok.csv")
    with pytest.raises(SchemaError, match="unknown metric 'majority'"):
        read_scores(tmp_path / "ok.csv", "majority")


def test_clipo_evaluate_writes_process_labels_and_rows(tmp_path):
    from clipo.data.synthetic import write_mini
    from clipo.hf import save
    from clipo.mini.model import new_model
    from clipo.mini.tokenizer import build_tokenizer

    torch.set_num_threads(1)
    paths = write_mini(tmp_path / "data", seed=0, n_train=40, n_eval=3)
    train = pd.read_parquet(paths["train"])
    tokenizer = build_tokenizer([p[0]["content"] for p in train["prompt"]] +
                                [e["solution"] for e in train["extra_info"]])
    save(new_model(tokenizer, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32), tokenizer,
         tmp_path / "model")
    out = tmp_path / "eval"
    assert cli_main(["evaluate", "--model", str(tmp_path / "model"), "--run-id", RUN_ID, "--source", "mini",
                     "--data-dir", str(tmp_path / "data"), "--out", str(out), "--max-new-tokens", "4",
                     "--benchmarks", "Test,MC"]) == 0
    samples = pd.read_parquet(out / "samples.parquet")
    assert samples["process"].notna().all() and set(samples["process"]) <= {"sound", "lucky", "wrong"}
    assert ((samples["process"] == "wrong") == ~samples["correct"]).all()
    written = pd.read_csv(out / "scores.csv")
    assert sorted(zip(written["benchmark"], written[METRIC])) == sorted(
        (b, m) for b in ("Test", "MC") for m in (PASS_AT_1, SOUND_PASS_AT_1, LUCKY_SHARE))
