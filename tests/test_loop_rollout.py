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


def test_rollouts_carry_the_step_check_and_the_step_logs_its_shares(base, tmp_path):
    """Each rollout row is step-checked against its problem's chain (measured only, issue 21): the labels
    follow the rows, and the logged shares are sound / all and lucky / correct."""
    import torch

    from clipo.hf import load
    from clipo.mini.rollout import load_problems, rollout
    from clipo.mini.train import process_shares

    cfg = config(base, tmp_path / "run")
    policy, tokenizer = load(base / "base")
    problems = load_problems(cfg, tokenizer)[:2]
    torch.manual_seed(0)
    batch, _, _ = rollout(policy, tokenizer, problems, cfg, repeats=3)
    assert len(batch.process) == 6 and set(batch.process) <= {"sound", "lucky", "wrong"}
    assert [label != "wrong" for label in batch.process] == (batch.outcome > 0.5).tolist()

    batch.process = ("sound", "lucky", "lucky", "wrong", "sound", None)
    assert process_shares(batch, "process/") == {"process/sound_share": 2 / 5, "process/lucky_share": 2 / 4}
    batch.process = ("wrong", None, "wrong", None, None, None)
    assert process_shares(batch, "val/") == {"val/sound_share": 0.0, "val/lucky_share": None}
    batch.process = (None,) * 6  # data without chains (written before the step checker): nothing logged
    assert process_shares(batch, "process/") == {}
