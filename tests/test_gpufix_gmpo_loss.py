"""GMPO's policy loss under verl's engine: the gradient must not depend on how a mini-batch is split.

verl 0.9.1's v1 FSDP engine (workers/engine/fsdp/transformer_impl.py, forward_backward_batch) fills
``config.global_batch_info`` (workers/utils/losses.py, ppo_loss), calls the policy loss on each
micro-batch, back-propagates each loss unscaled and lets the gradients add up; FSDP then averages them
over data-parallel ranks. ``engine_gradient`` below does exactly that on CPU tensors.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY, get_policy_loss_fn
from verl.utils.config import omega_conf_to_dataclass

from clipo.methods import get_method
from clipo.verl.losses import GEO_MEAN_GLOBAL

ROWS, LENGTH, FEATURES = 16, 12, 5


def actor_config(method: str = "gmpo"):
    m = get_method(method)
    return omega_conf_to_dataclass(OmegaConf.create({
        "_target_": "verl.workers.config.ActorConfig",
        "strategy": "fsdp",
        "rollout_n": 4,
        "ppo_mini_batch_size": ROWS // 4,
        "ppo_micro_batch_size_per_gpu": 4,
        "clip_ratio": m.clip_ratio_low,
        "clip_ratio_low": m.clip_ratio_low,
        "clip_ratio_high": m.clip_ratio_high,
        "loss_agg_mode": m.loss_agg_mode,
        "policy_loss": {"_target_": "verl.workers.config.PolicyLossConfig", "loss_mode": m.policy_loss},
        "optim": {"_target_": "verl.workers.config.OptimizerConfig", "lr": 1e-6},
    }))


def batch(seed: int = 0):
    """A mini-batch: responses of 1..12 tokens, one advantage per response (some 0), ratios far enough from
    1 that GMPO's clip range (±0.4 in log space) binds on some tokens."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, LENGTH + 1, (ROWS,), generator=g)
    mask = torch.arange(LENGTH)[None, :] < lengths[:, None]
    advantage = torch.randn(ROWS, 1, generator=g).round(decimals=1).expand(ROWS, LENGTH).clone()
    features = torch.randn(ROWS, LENGTH, FEATURES, generator=g)
    old_log_prob = -torch.rand(ROWS, LENGTH, generator=g) * 3
    return SimpleNamespace(mask=mask, advantage=advantage, features=features, old_log_prob=old_log_prob)


def engine_gradient(loss_mode: str, data, splits: list[list[int]]) -> torch.Tensor:
    """d(loss)/d(weight) as verl's engine accumulates it: ``splits`` holds each rank's micro-batch sizes."""
    config = actor_config()
    weight = torch.full((FEATURES,), 0.3, requires_grad=True)
    rank_grads, start = [], 0
    for micro_sizes in splits:
        weight.grad = None
        for size in micro_sizes:
            rows = slice(start, start + size)
            start += size
            config.global_batch_info.update(
                dp_size=len(splits), batch_num_tokens=int(data.mask.sum()), global_batch_size=ROWS,
                loss_scale_factor=None,
            )
            log_prob = data.old_log_prob[rows] + data.features[rows] @ weight
            loss, _ = get_policy_loss_fn(loss_mode)(
                old_log_prob=data.old_log_prob[rows], log_prob=log_prob, advantages=data.advantage[rows],
                response_mask=data.mask[rows], loss_agg_mode=config.loss_agg_mode, config=config,
            )
            loss.backward()
        rank_grads.append(weight.grad.clone())
    assert start == ROWS
    return torch.stack(rank_grads).mean(0)  # FSDP's gradient average over data-parallel ranks


@pytest.mark.parametrize("splits", [[[4, 4, 4, 4]], [[1, 3, 5, 7]], [[2, 6], [5, 3]]],
                         ids=["4 equal", "4 dynamic-bsz", "2 ranks x 2"])
def test_gmpo_gradient_does_not_depend_on_micro_batches(splits):
    data = batch()
    whole = engine_gradient(GEO_MEAN_GLOBAL, data, [[ROWS]])
    assert whole.abs().sum() > 0
    torch.testing.assert_close(engine_gradient(GEO_MEAN_GLOBAL, data, splits), whole)


def test_verls_geo_mean_fails_the_same_check():
    """The bug this loss fixes: verl's geo_mean means per micro-batch, the engine sums the means."""
    data = batch()
    whole = engine_gradient("geo_mean", data, [[ROWS]])
    split = engine_gradient("geo_mean", data, [[4, 4, 4, 4]])
    torch.testing.assert_close(split, 4 * whole)  # four equal micro-batches: four times the gradient
    assert not torch.allclose(engine_gradient("geo_mean", data, [[1, 3, 5, 7]]), whole)


def test_same_objective_and_gradient_as_verls_geo_mean_on_one_whole_batch():
    """On one micro-batch (the mini trainer's minibatch, no global batch info) it is verl's GMPO loss."""
    data = batch(seed=1)
    config = actor_config()
    results = {}
    for mode in ("geo_mean", GEO_MEAN_GLOBAL):
        weight = torch.full((FEATURES,), 0.3, requires_grad=True)
        loss, metrics = get_policy_loss_fn(mode)(
            old_log_prob=data.old_log_prob, log_prob=data.old_log_prob + data.features @ weight,
            advantages=data.advantage, response_mask=data.mask, loss_agg_mode="token-mean", config=config,
        )
        loss.backward()
        results[mode] = (loss.detach(), weight.grad, metrics)
    (ref_loss, ref_grad, ref_metrics), (loss, grad, metrics) = results["geo_mean"], results[GEO_MEAN_GLOBAL]
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad, ref_grad)
    assert metrics == pytest.approx(ref_metrics)
    assert 0 < metrics["actor/pg_clipfrac"] + metrics["actor/pg_clipfrac_lower"] < 1  # the clip range binds


def test_gmpo_names_the_project_loss_and_the_verl_command_uses_it():
    from clipo.verl.overrides import build_overrides, plan_run

    assert get_method("gmpo").policy_loss == GEO_MEAN_GLOBAL in POLICY_LOSS_REGISTRY
    overrides = build_overrides(plan_run("II", "gmpo"))
    assert f"actor_rollout_ref.actor.policy_loss.loss_mode={GEO_MEAN_GLOBAL}" in overrides
    assert "actor_rollout_ref.model.external_lib=clipo.verl.worker_patch" in overrides


@pytest.mark.parametrize("entry", [
    "import clipo.verl.worker_patch",  # what verl's external_lib does in workers and the trainer process
    "from clipo.mini.policy import minibatch_loss, verl_actor_config\n"
    "import torch\n"
    "from types import SimpleNamespace\n"
    "from clipo.methods import get_method\n"
    "cfg = verl_actor_config(\n"
    "    SimpleNamespace(method=get_method('gmpo'), group_size=2, ppo_mini_batch_size=2, lr=1e-6))\n"
    "mask = torch.ones(4, 3, dtype=torch.bool)\n"
    "loss, metrics = minibatch_loss(cfg, torch.zeros(4, 3), torch.zeros(4, 3), torch.ones(4, 3), mask)\n"
    "assert loss.item() == -1.0, loss",  # ratio 1, advantage 1: −1 averaged over the 4 responses
], ids=["worker patch", "mini trainer"])
def test_a_fresh_process_finds_the_loss_by_name(entry):
    lookup = f"from verl.trainer.ppo.core_algos import get_policy_loss_fn\nget_policy_loss_fn({GEO_MEAN_GLOBAL!r})"
    code = f"{entry}\n{lookup}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
