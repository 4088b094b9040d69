"""Resuming the mini trainer (issue 22): a checkpoint is continued only by the same run, judged by its
settings and by the content of its base model and data; a changed run restarts afresh only when asked
(--restart-if-changed) and keeps the old one aside; checkpoints are never unpickled; an extended run
validates where the longer run does. Runs use the random tiny model of test_mini_train (fake reward there)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_mini_train import (  # noqa: F401  (base: the module's fixture)
    all_metric_lines,
    argv,
    base,
    fake_score,
    train,
    weights,
    without_time,
)

from clipo.cli import main as cli_main
from clipo.errors import SchemaError


@pytest.fixture
def fake_reward(monkeypatch):
    monkeypatch.setattr("clipo.rewards.compute_score", fake_score)


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# --------------------------------------------------------------------------- resume by content (issue 22 #1, #8)
def copy_of(base: Path, tmp_path: Path) -> Path:
    """A private copy of the fixture's base model and data, free to be rebuilt."""
    root = tmp_path / "inputs"
    shutil.copytree(base / "base", root / "base")
    shutil.copytree(base / "data", root / "data")
    return root


def rebuild_base_weights(root: Path) -> None:
    """What a rerun of `clipo sft` with other settings leaves: the same files, other weights."""
    path = root / "base" / "model.safetensors"
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 0.01
    save_file(tensors, path, metadata={"format": "pt"})


def test_a_rebuilt_base_model_is_not_resumed(base, tmp_path, capsys, fake_reward):
    root = copy_of(base, tmp_path)
    run = train(root, tmp_path / "run", "grpo", "none", 1)
    rebuild_base_weights(root)
    capsys.readouterr()

    assert cli_main(argv(root, run, "grpo", "none", 2)) == 2
    err = capsys.readouterr().err
    assert "step_000001.pt is not a checkpoint of this run" in err and "base model" in err
    assert "changed in content" in err and "--restart-if-changed" in err and err.count("error:") == 1, err
    assert not (run / "discarded").exists()

    assert cli_main([*argv(root, run, "grpo", "none", 2), "--restart-if-changed"]) == 0
    assert json.loads((run / "summary.json").read_text())["resumed_from_step"] == 0
    fresh = train(root, tmp_path / "fresh", "grpo", "none", 2)
    assert same_weights(run, fresh)
    assert without_time(all_metric_lines(run)) == without_time(all_metric_lines(fresh))


def test_rebuilt_training_data_is_not_resumed(base, tmp_path, capsys, fake_reward):
    from clipo.data.synthetic import write_mini

    root = copy_of(base, tmp_path)
    run = train(root, tmp_path / "run", "grpo", "none", 1)
    write_mini(root / "data", seed=1, n_train=32, n_eval=2)  # same paths and row count, other problems
    capsys.readouterr()
    assert cli_main(argv(root, run, "grpo", "none", 2)) == 2
    err = capsys.readouterr().err
    assert "training data" in err and "changed in content" in err, err


def test_changed_option_fails_clearly_or_restarts_afresh_when_asked(base, tmp_path, capsys, fake_reward):
    run = train(base, tmp_path / "run", "grpo", "none", 1)
    first_checkpoint = (run / "checkpoints" / "step_000001.pt").read_bytes()
    capsys.readouterr()

    assert cli_main(argv(base, run, "gspo", "none", 1)) == 2
    err = capsys.readouterr().err
    assert "setting method: " in err and "--restart-if-changed" in err, err

    assert cli_main([*argv(base, run, "gspo", "none", 1), "--restart-if-changed"]) == 0
    err = capsys.readouterr().err
    assert f"moved the old run (checkpoints/, embeddings.parquet, final/, metrics.jsonl, run.json, " \
           f"summary.json) to {run / 'discarded' / '1'} and starting afresh" in err, err
    kept = run / "discarded" / "1"
    assert (kept / "checkpoints" / "step_000001.pt").read_bytes() == first_checkpoint
    assert json.loads((run / "run.json").read_text())["config"]["method"]["name"] == "gspo"
    assert same_weights(run, train(base, tmp_path / "fresh", "gspo", "none", 1))

    # a second discard goes beside the first; the lock file stays where it is
    assert cli_main([*argv(base, run, "grpo", "none", 1), "--restart-if-changed"]) == 0
    assert sorted(p.name for p in (run / "discarded").iterdir()) == ["1", "2"]
    assert (run / ".clipo.lock").is_file() and not (run / "discarded" / "2" / ".clipo.lock").exists()


def test_lowering_steps_below_a_checkpoint_fails_or_restarts(base, tmp_path, capsys, fake_reward):
    run = train(base, tmp_path / "run", "grpo", "none", 2)
    capsys.readouterr()
    assert cli_main(argv(base, run, "grpo", "none", 1)) == 2
    err = capsys.readouterr().err
    assert "at step 2, beyond steps=1" in err and "--restart-if-changed" in err, err
    assert cli_main([*argv(base, run, "grpo", "none", 1), "--restart-if-changed"]) == 0
    assert json.loads((run / "summary.json").read_text())["final_step"] == 1
    assert same_weights(run, train(base, tmp_path / "fresh", "grpo", "none", 1))


def test_restart_if_changed_is_refused_by_the_verl_backend(capsys):
    args = ["train", "--backend", "verl", "--track", "I", "--method", "grpo", "--dry-run", "--restart-if-changed"]
    assert cli_main(args) == 2
    assert "--restart-if-changed is a mini option" in capsys.readouterr().err


# --------------------------------------------------------------------------- checkpoints are not unpickled (issue 22 #6)
class _WritesAFile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # unpickling would call open(marker, "w"): create the file
        return (open, (str(self.marker), "w"))


def test_a_crafted_pickle_checkpoint_runs_nothing(base, tmp_path, capsys):
    from clipo.mini import checkpoint

    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    crafted = run / "checkpoints" / "step_000001.pt"
    torch.save({"step": 1, "payload": _WritesAFile(marker)}, crafted)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"payload": _WritesAFile(marker)}, protocol=2))
    assert not marker.exists()

    for path in (crafted, legacy):
        with pytest.raises(SchemaError, match=rf"^{path}: not a clipo checkpoint"):
            checkpoint.load(path)
    assert cli_main(argv(base, run, "grpo", "none", 2)) == 2
    err = capsys.readouterr().err
    assert f"{crafted}: not a clipo checkpoint" in err and err.count("error:") == 1, err
    assert not marker.exists()


def test_restart_if_changed_moves_an_unreadable_checkpoint_aside(base, tmp_path, capsys, fake_reward):
    """A checkpoint of another format (or damaged) cannot be continued: under the workflow it is kept aside."""
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"step": 1, "payload": _WritesAFile(marker)}, run / "checkpoints" / "step_000001.pt")
    assert cli_main([*argv(base, run, "grpo", "none", 1), "--restart-if-changed"]) == 0
    assert "not a clipo checkpoint" in capsys.readouterr().err
    assert (run / "discarded" / "1" / "checkpoints" / "step_000001.pt").is_file() and not marker.exists()
    assert json.loads((run / "summary.json").read_text())["resumed_from_step"] == 0


def test_a_real_checkpoint_loads_with_weights_only(base, tmp_path, fake_reward):
    run = train(base, tmp_path / "run", "dapo", "infonce", 1)
    state = torch.load(run / "checkpoints" / "step_000001.pt", weights_only=True)
    assert state["step"] == 1 and set(state["inputs"]) == {"base model", "training data", "validation data"}


# --------------------------------------------------------------------------- an extended run's validation rows (issue 22)
def test_an_extended_run_validates_where_the_longer_run_does(base, tmp_path, fake_reward):
    """Steps 2 → 3 with --test-freq 3: the old last step's validation is not one the longer run has."""
    longer = train(base, tmp_path / "longer", "grpo", "none", 3, "--test-freq", "3")
    extended = train(base, tmp_path / "extended", "grpo", "none", 2, "--test-freq", "3")
    assert "val/reward" in all_metric_lines(extended)[-1]  # the 2-step run validated its last step
    train(base, extended, "grpo", "none", 3, "--test-freq", "3")
    assert [r["step"] for r in all_metric_lines(longer) if "val/reward" in r] == [0, 3]
    assert without_time(all_metric_lines(extended)) == without_time(all_metric_lines(longer))
    assert same_weights(extended, longer)
