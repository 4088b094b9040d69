"""`clipo evaluate`: scoring + Pass@1 aggregation on hand-made outputs, and end to end on a tiny model."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from clipo.cli import main as cli_main
from clipo.errors import ConfigError
from clipo.evaluate import aggregate, sampling_for, score_samples
from clipo.runs import RunSpec
from clipo.scores import SAMPLE_COLUMNS, read_scores

RUN_ID = "mini_mini-base_grpo_infonce_tau0.05_g8_s1_mini"


def _problems(source: str, truths: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "data_source": [source] * len(truths),
        "prompt": [[{"role": "user", "content": f"question {i}"}] for i in range(len(truths))],
        "ability": ["math"] * len(truths),
        "reward_model": [{"ground_truth": t, "style": "rule"} for t in truths],
        "extra_info": [{"index": i} for i in range(len(truths))],
    })


def test_pass_at_1_on_hand_made_outputs():
    math = _problems("clipo/mini/test", ["5", "12", "40"])
    responses = [
        ["5 + 0 = 5. The answer is \\boxed{5}.", "The answer is \\boxed{6}."],  # 1 of 2
        ["\\boxed{12}", "\\boxed{12.0}"],  # 2 of 2
        ["no box at all: 40", "\\boxed{4}0"],  # 0 of 2
    ]
    choice = _problems("clipo/mini/mc", ["B", "D"])
    samples = pd.concat([
        score_samples(RUN_ID, "Test", math, responses),
        score_samples(RUN_ID, "MC", choice, [["\\boxed{B}", "\\boxed{(B)}"], ["\\boxed{A}", "\\boxed{D. 17}"]]),
    ], ignore_index=True)
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert samples["correct"].tolist() == [True, False, True, True, False, False, True, True, False, True]
    extracted = [None if pd.isna(a) else a for a in samples["extracted_answer"]]
    assert extracted[:6] == ["5", "6", "12", "12.0", None, "4"]
    assert samples.loc[samples.benchmark == "MC", "extracted_answer"].tolist() == ["B", "B", "A", "D"]
    assert samples[["problem_id", "sample_id"]].values.tolist()[:4] == [[0, 0], [0, 1], [1, 0], [1, 1]]

    scores = aggregate(samples, RunSpec.parse(RUN_ID), source="mini").set_index("benchmark")
    assert scores.loc["Test", "score"] == pytest.approx(100 * 3 / 6)
    assert scores.loc["MC", "score"] == pytest.approx(75.0)
    assert scores.loc["Test", ["n_problems", "n_samples"]].tolist() == [3, 2]
    row = scores.loc["MC"]
    assert (row.source, row.track, row.method, row.clipo, row.tau, row.group_size, row.seed) == \
        ("mini", "mini", "grpo", "infonce", 0.05, 8, 1)


def test_aggregate_rejects_ragged_samples():
    problems = _problems("clipo/mini/test", ["1", "2"])
    samples = score_samples(RUN_ID, "Test", problems, [["\\boxed{1}"], ["\\boxed{2}", "\\boxed{3}"]])
    with pytest.raises(ValueError, match="different numbers of samples"):
        aggregate(samples, RunSpec.parse(RUN_ID), "mini")


def test_sampling_defaults_follow_the_track():
    mini = sampling_for("mini")
    assert (mini.n, mini.do_sample, mini.max_new_tokens) == (1, False, 64)
    two = sampling_for("II")
    assert (two.n, two.do_sample, two.temperature, two.top_p) == (16, True, 0.6, 0.95)
    assert not sampling_for("II", n=1, temperature=0).do_sample  # temperature 0 means greedy
    with pytest.raises(ConfigError, match="greedy"):
        sampling_for("mini", n=4)
    assert sampling_for("mini", n=4, do_sample=True).n == 4


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """Mini data plus an untrained tiny model folder (its answers are noise; the plumbing is the point)."""
    from clipo.data.synthetic import write_mini
    from clipo.hf import save
    from clipo.mini.model import new_model
    from clipo.mini.tokenizer import build_tokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("eval")
    paths = write_mini(root / "data", seed=0, n_train=60, n_eval=4)
    train = pd.read_parquet(paths["train"])
    tokenizer = build_tokenizer([p[0]["content"] for p in train["prompt"]] +
                                [e["solution"] for e in train["extra_info"]])
    model = new_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    save(model, tokenizer, root / "model")
    return root


def test_evaluate_end_to_end_on_a_tiny_model(tiny_setup, capsys):
    root = tiny_setup
    out = root / "eval" / RUN_ID
    args = ["evaluate", "--model", str(root / "model"), "--run-id", RUN_ID, "--source", "mini",
            "--data-dir", str(root / "data"), "--out", str(out), "--limit", "3", "--max-new-tokens", "6",
            "--batch-size", "4"]
    assert cli_main(args) == 0
    scores = read_scores(out / "scores.csv")
    assert scores["benchmark"].tolist() == ["Test", "Test-T1", "SYM", "P1", "P2", "MC"]
    assert (scores["n_problems"] == 3).all()
    # greedy Pass@1 everywhere, plus the sampled view of Test: 3 draws per problem at the rollout temperature
    assert scores.set_index("benchmark")["n_samples"].to_dict() == {
        "Test": 1, "Test-T1": 3, "SYM": 1, "P1": 1, "P2": 1, "MC": 1}
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(samples) == 5 * 3 + 3 * 3 and set(samples["run_id"]) == {RUN_ID}
    sampled_view = samples[samples.benchmark == "Test-T1"]
    assert sampled_view.groupby("problem_id")["sample_id"].nunique().eq(3).all()
    assert samples.groupby("benchmark")["correct"].mean().mul(100).reindex(scores["benchmark"]).tolist() == \
        pytest.approx(scores["score"].tolist())
    assert "Test:" in capsys.readouterr().out
    # greedy decoding is deterministic: a second run writes the same responses
    assert cli_main(args[:-2] + ["--batch-size", "2", "--benchmarks", "Test"]) == 0
    again = pd.read_parquet(out / "samples.parquet")
    assert again["response"].tolist() == samples.loc[samples.benchmark == "Test", "response"].tolist()
    # sampling n > 1 gives n samples per problem
    assert cli_main(args + ["--benchmarks", "P1", "--n", "2", "--do-sample", "--temperature", "1.0"]) == 0
    sampled = read_scores(out / "scores.csv")
    assert sampled[["benchmark", "n_problems", "n_samples"]].values.tolist() == [["P1", 3, 2]]


def test_evaluate_errors_are_one_line(tiny_setup, tmp_path, capsys):
    root = tiny_setup
    base = ["evaluate", "--run-id", RUN_ID, "--source", "mini", "--out", str(tmp_path / "o")]
    assert cli_main(base + ["--model", str(tmp_path / "nope"), "--data-dir", str(root / "data")]) == 2
    assert "nope does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad" / "mini"
    bad.mkdir(parents=True)
    for name in ("test", "sym", "p1", "p2", "mc"):
        pd.DataFrame({"question": ["x"]}).to_parquet(bad / f"{name}.parquet")
    assert cli_main(base + ["--model", str(root / "model"), "--data-dir", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "test.parquet" in err and "missing column" in err
    assert cli_main(base + ["--model", str(root / "model"), "--data-dir", str(root / "data"),
                            "--benchmarks", "AIME"]) == 2
    assert "unknown benchmark 'AIME'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
