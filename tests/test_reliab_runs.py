"""τ is bounded at validation, for the CLI and the workflow grid alike (issue 22, #7)."""

from __future__ import annotations

import pytest

from clipo.cli import main
from clipo.errors import ConfigError
from clipo.runs import MAX_TAU, MIN_TAU, TrainOptions, expand_grid, resolve


@pytest.mark.parametrize("tau", [1e-40, 1e-250, 1e-3, 0.011, 1e7, 1e250])
def test_a_tau_outside_the_float32_safe_range_is_refused_in_a_grid(tau):
    with pytest.raises(ConfigError, match=r"config grid\[0\]: run tau=.* \(--tau\) must be in \[0.0125, 1e\+06\]"):
        expand_grid([{"track": ["mini"], "method": ["grpo"], "clipo": ["infonce"], "tau": [tau]}])


def test_tiny_tau_is_refused_before_training_and_blames_tau(tmp_path, capsys):
    with pytest.raises(ConfigError, match="tau=1e-40.*float32"):
        resolve(TrainOptions(backend="mini", track="mini", method="grpo", clipo="infonce", tau=1e-40,
                             model_path="base", out=str(tmp_path / "run")))
    argv = ["train", "--backend", "mini", "--track", "mini", "--method", "grpo", "--clipo", "infonce",
            "--tau", "1e-40", "--model-path", str(tmp_path), "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--tau" in err and "--lr" not in err
    assert not (tmp_path / "run").exists()


def test_every_tau_of_the_paper_and_the_bounds_themselves_are_accepted():
    taus = [MIN_TAU, 0.015, 0.02, 0.05, 0.1, 0.2, MAX_TAU]
    runs = expand_grid([{"track": ["II"], "method": ["grpo"], "clipo": ["infonce"], "tau": taus}])
    assert sorted(r.tau for r in runs) == sorted(taus)
    assert max(len(r.run_id) for r in runs) < 100  # log and folder names stay far below 255 bytes


@pytest.mark.parametrize("path", ["results/verl/runs/x/final", "mymodel", "./models/q", "../q", "a/b/c"])
def test_a_missing_relative_model_path_is_refused_at_planning(path, tmp_path, monkeypatch):
    """Issue 22: taken for a hub id, a mistyped folder failed only on the GPU node."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"--model-path .*no such folder.*not a hub id"):
        resolve(TrainOptions(backend="verl", track="I", method="grpo", model_path=path))


@pytest.mark.parametrize("path", ["Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct",
                                  "/models/on/the/node", "here/final"])
def test_hub_ids_absolute_paths_and_existing_folders_pass(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here" / "final").mkdir(parents=True)
    assert resolve(TrainOptions(backend="verl", track="I", method="grpo", model_path=path)).model_path == path
