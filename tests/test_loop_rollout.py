"""Training rows read as evaluation reads them (issue 22 #5): a list ground truth stays a list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from test_mini_train import argv, base  # noqa: F401  (base: the module's fixture)

from clipo.cli import build_parser


def config(base: Path, out: Path):
    from clipo.mini.train import resolve_config

    return resolve_config(build_parser().parse_args(argv(base, out, "grpo", "none", 1)))


def test_a_list_ground_truth_stays_a_list_and_scores_as_in_evaluation(base, tmp_path):
    from clipo import rewards
    from clipo.evaluate import score_samples
    from clipo.hf import load
    from clipo.mini.rollout import read_problems

    rows = pd.read_parquet(base / "data" / "mini" / "train.parquet").head(1)
    rows["reward_model"] = [{"ground_truth": ["40", "999999"], "style": "rule"}]
    path = tmp_path / "train.parquet"
    rows.to_parquet(path)
    _, tokenizer = load(base / "base")
    (problem,) = read_problems(path, "training", config(base, tmp_path / "run"), tokenizer)
    assert problem.ground_truth == ["40", "999999"]

    answer = "The answer is \\boxed{999999}."
    in_training = rewards.compute_score(problem.data_source, answer, problem.ground_truth, problem.extra_info)
    in_evaluation = score_samples("run", "Test", pd.read_parquet(path), [[answer]])["correct"].tolist()
    assert in_training == 1.0 and in_evaluation == [True]
