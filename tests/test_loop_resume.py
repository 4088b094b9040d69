"""Resuming the mini trainer: checkpoints are never unpickled (issue 22). Runs use the random tiny model
of test_mini_train (fake reward there)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from test_mini_train import argv, base, fake_score, train  # noqa: F401  (base: the module's fixture)

from clipo.cli import main as cli_main
from clipo.errors import SchemaError


@pytest.fixture
def fake_reward(monkeypatch):
    monkeypatch.setattr("clipo.rewards.compute_score", fake_score)


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


def test_a_real_checkpoint_loads_with_weights_only(base, tmp_path, fake_reward):
    run = train(base, tmp_path / "run", "dapo", "infonce", 1)
    state = torch.load(run / "checkpoints" / "step_000001.pt", weights_only=True)
    assert state["step"] == 1
