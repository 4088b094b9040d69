"""The mini trainer's advantage estimator comes from the method table (``Method.adv_estimator``) through
verl's registry, as on the verl backend. Runs use the random tiny model of test_mini_train."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from test_mini_train import argv, base, fake_score  # noqa: F401  (base: the module's fixture)
from verl.trainer.ppo import core_algos

from clipo.cli import build_parser
from clipo.errors import ConfigError


@pytest.fixture
def fake_reward(monkeypatch):
    monkeypatch.setattr("clipo.rewards.compute_score", fake_score)


def config(base: Path, out: Path, *extra: str):
    from clipo.mini.train import resolve_config

    return resolve_config(build_parser().parse_args(argv(base, out, "grpo", "none", 1, *extra)))


def test_advantages_come_from_the_methods_estimator_in_verls_registry(base, tmp_path, monkeypatch, fake_reward):
    """A throw-away estimator registered in verl's registry and named by a Method is what the trainer calls,
    and its advantages are what the policy loss gets."""
    import clipo.mini.policy as policy
    from clipo.mini.train import train as run_training

    calls, seen = [], []

    def throwaway(token_level_rewards, response_mask, index, config=None, **_):
        calls.append((token_level_rewards.clone(), list(index)))
        adv = 0.375 * response_mask.float()  # no group-normalised estimator gives this
        return adv, adv

    real_loss = policy.minibatch_loss

    def spy(actor_cfg, log_prob, old_log_prob, advantages, response_mask, ref_log_prob=None):
        seen.append((advantages.clone(), response_mask.clone()))
        return real_loss(actor_cfg, log_prob, old_log_prob, advantages, response_mask, ref_log_prob)

    # setitem: the registry loses the entry again when the test ends
    monkeypatch.setitem(core_algos.ADV_ESTIMATOR_REGISTRY, "clipo_test_throwaway", throwaway)
    monkeypatch.setattr(policy, "minibatch_loss", spy)
    cfg = config(base, tmp_path / "run")
    cfg = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, adv_estimator="clipo_test_throwaway"))
    run_training(cfg)
    assert len(calls) == 1  # one step
    token_rewards, index = calls[0]
    assert index == [0, 0, 0, 0, 1, 1, 1, 1]  # G = 4 rollouts of each of the 2 prompts
    assert token_rewards.shape[0] == 8
    assert len(seen) == 2  # two minibatches, each trained on the throw-away advantages
    for adv, mask in seen:
        assert torch.equal(adv, 0.375 * mask.float())


def test_unknown_estimator_is_one_error_listing_the_valid_ones(base, tmp_path):
    from clipo.mini.train import train as run_training

    cfg = config(base, tmp_path / "run")
    cfg = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, adv_estimator="no_such_estimator"))
    with pytest.raises(ConfigError, match=r"'no_such_estimator'.*valid: .*\bgrpo\b.*\brloo\b"):
        run_training(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
