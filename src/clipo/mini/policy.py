"""The policy side of a mini RL step: the shared forward pass, verl's advantage estimator and policy
loss, the optimiser and the minibatch updates."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf
from transformers import DynamicCache
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo import core_algos
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.torch_functional import logprobs_from_logits

import clipo.verl.losses  # noqa: F401  (registers the project's policy losses, GMPO's among them)
from clipo.contrastive import add_at_last_token, mean_pool
from clipo.errors import ConfigError
from clipo.mini.config import Config
from clipo.mini.rollout import Rollouts


def policy_forward(model, prompt_ids, prompt_mask, response_ids, response_mask, group_size: int = 1):
    """Log-probs of the response tokens [B, R] and mean-pooled final hidden states of the response [B, D].

    Logits are computed only at the positions that predict a response token; the hidden states are the
    final-norm outputs at the response tokens (eq. 9). Rows come in groups of ``group_size`` adjacent
    rows sharing one prompt: the prompt is run once per group and its keys/values are repeated for the
    group's responses. That is the same computation as running every row on its own (same causal
    attention, same positions; gradients through the shared prompt add up over the group) on about a
    third of the tokens, since prompts are longer than responses here.
    """
    if group_size > 1:
        prompt_ids, prompt_mask = prompt_ids[::group_size], prompt_mask[::group_size]
    cache = DynamicCache()
    prompt_hidden = model.base_model(
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        position_ids=(prompt_mask.cumsum(-1) - 1).clamp(min=0),
        past_key_values=cache,
        use_cache=True,
    ).last_hidden_state
    last_prompt_hidden = prompt_hidden[:, -1:]
    if group_size > 1:
        cache.batch_repeat_interleave(group_size)
        prompt_mask = prompt_mask.repeat_interleave(group_size, dim=0)
        last_prompt_hidden = last_prompt_hidden.repeat_interleave(group_size, dim=0)
    attention_mask = torch.cat([prompt_mask, response_mask], dim=1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, prompt_mask.shape[1]:]
    hidden = model.base_model(
        input_ids=response_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
    ).last_hidden_state
    logits = model.get_output_embeddings()(torch.cat([last_prompt_hidden, hidden[:, :-1]], dim=1))
    log_prob = logprobs_from_logits(logits, response_ids)
    return log_prob, mean_pool(hidden, response_mask)


def verl_actor_config(cfg: Config):
    """verl's own ActorConfig for the method (the GSPO loss requires a real one)."""
    m = cfg.method
    return omega_conf_to_dataclass(
        OmegaConf.create(
            {
                "_target_": "verl.workers.config.ActorConfig",
                "strategy": "fsdp",  # a required label; nothing here is sharded
                "rollout_n": cfg.group_size,
                "ppo_mini_batch_size": cfg.ppo_mini_batch_size,
                "ppo_micro_batch_size_per_gpu": cfg.ppo_mini_batch_size * cfg.group_size,
                "clip_ratio": m.clip_ratio_low,
                "clip_ratio_low": m.clip_ratio_low,
                "clip_ratio_high": m.clip_ratio_high,
                "loss_agg_mode": m.loss_agg_mode,
                "policy_loss": {
                    "_target_": "verl.workers.config.PolicyLossConfig",
                    "loss_mode": m.policy_loss,
                },
                "use_kl_loss": m.use_kl_loss,
                "kl_loss_coef": m.kl_loss_coef,
                "kl_loss_type": m.kl_loss_type,
                "optim": {"_target_": "verl.workers.config.OptimizerConfig", "lr": cfg.lr},
            }
        )
    )


def minibatch_loss(actor_cfg, log_prob, old_log_prob, advantages, response_mask, ref_log_prob=None):
    """verl's policy loss of the method, plus the KL loss when the method uses one: (loss, metrics)."""
    # --- algorithm: policy-gradient loss from verl's registry, aggregated as the method says
    pg_loss, pg_metrics = core_algos.get_policy_loss_fn(actor_cfg.policy_loss.loss_mode)(
        old_log_prob=old_log_prob,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=response_mask,
        loss_agg_mode=actor_cfg.loss_agg_mode,
        config=actor_cfg,
    )
    metrics = {
        "loss/policy": pg_loss.item(),
        "actor/clip_frac": pg_metrics["actor/pg_clipfrac"],
        "actor/clip_frac_lower": pg_metrics["actor/pg_clipfrac_lower"],
        "actor/ppo_kl": pg_metrics["actor/ppo_kl"],
    }
    loss = pg_loss
    if actor_cfg.use_kl_loss:
        # --- algorithm: KL(π‖π_ref) with the low-variance (k3) estimator, GRPO only
        kld = core_algos.kl_penalty(
            logprob=log_prob, ref_logprob=ref_log_prob, kl_penalty=actor_cfg.kl_loss_type
        )
        kl_loss = core_algos.agg_loss(
            loss_mat=kld, loss_mask=response_mask, loss_agg_mode=actor_cfg.loss_agg_mode
        )
        loss = loss + actor_cfg.kl_loss_coef * kl_loss
        metrics["loss/kl"] = kl_loss.item()
    return loss, metrics


class OldPolicyPass:
    """ONE forward of the current policy over the step's batch: the old log-probs and the pooled hidden
    states (eq. 9), so CLIPO costs no extra forward.

    Before the first optimiser step the current policy IS π_old, so the first minibatch's part of this
    forward is taken with gradients and handed to that minibatch's update (``minibatch_log_prob``); its
    detached copy is the old log-prob. The other minibatches run without gradients here and again with
    gradients when their turn comes, after earlier updates moved the policy.
    """

    def __init__(self, policy, batch: Rollouts, cfg: Config, with_grad: bool):
        self.policy, self.batch, self.group_size = policy, batch, cfg.group_size
        self.rows = cfg.ppo_mini_batch_size * cfg.group_size
        with torch.set_grad_enabled(with_grad):
            parts = [policy_forward(policy, *batch.tensors(slice(0, self.rows)), self.group_size)]
        if len(batch.group_id) > self.rows:
            with torch.no_grad():
                parts.append(policy_forward(policy, *batch.tensors(slice(self.rows, None)), self.group_size))
        self._first_log_prob = parts[0][0]
        self.old_log_prob = torch.cat([log_prob.detach() for log_prob, _ in parts])
        self.pooled = torch.cat([hidden.detach() for _, hidden in parts])

    def minibatches(self) -> list[slice]:
        return [slice(start, start + self.rows) for start in range(0, len(self.batch.group_id), self.rows)]

    def minibatch_log_prob(self, mb: slice) -> torch.Tensor:
        """Log-probs of minibatch ``mb`` under the current policy, with gradients."""
        if mb.start == 0:
            return self._first_log_prob
        return policy_forward(self.policy, *self.batch.tensors(mb), self.group_size)[0]


def make_optimizer(policy, cfg: Config, actor_cfg) -> torch.optim.Optimizer:
    """AdamW with verl's actor defaults. The final norm's gain scales every logit: it is the policy's
    sampling temperature. Adam moves each parameter by about lr per step whatever its size, so at the
    policy lr this O(1) gain would take ~1/lr steps to change by a factor of two; it gets its own
    learning rate (clipo.methods, mini track)."""
    gain = policy.base_model.norm.weight
    return torch.optim.AdamW(
        [
            {"params": [p for p in policy.parameters() if p is not gain]},
            {"params": [gain], "lr": cfg.output_gain_lr, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=tuple(actor_cfg.optim.betas),
        weight_decay=actor_cfg.optim.weight_decay,
    )


def advantage_estimator(name: str):
    """The method's advantage estimator from verl's registry; an unknown name is one error listing the
    registered ones."""
    if name not in core_algos.ADV_ESTIMATOR_REGISTRY:
        raise ConfigError(
            f"advantage estimator {name!r} (Method.adv_estimator) is not in verl's registry; "
            f"valid: {', '.join(sorted(core_algos.ADV_ESTIMATOR_REGISTRY))}"
        )
    return core_algos.get_adv_estimator_fn(name)


def advantages(cfg: Config, reward: torch.Tensor, batch: Rollouts, like: torch.Tensor) -> torch.Tensor:
    """Per-token advantages of the per-rollout ``reward`` (placed at the last response token) by the
    method's estimator; ``group_id`` is the group index verl calls ``uid``."""
    token_rewards = add_at_last_token(torch.zeros_like(like), batch.response_mask, reward)
    name = cfg.method.adv_estimator
    adv, _ = advantage_estimator(name)(
        token_level_rewards=token_rewards,
        response_mask=batch.response_mask,
        index=batch.group_id.numpy(),
        config=AlgoConfig(adv_estimator=name),
    )
    return adv


def update_policy(policy, reference, optimizer, actor_cfg, forward: OldPolicyPass, adv: torch.Tensor) -> dict:
    """One PPO epoch: an optimiser step per minibatch, in batch order; the mean of the minibatch metrics."""
    batch = forward.batch
    ref_log_prob = None
    if reference is not None:
        with torch.no_grad():
            ref_log_prob, _ = policy_forward(reference, *batch.tensors(slice(None)), forward.group_size)
    mb_metrics = []
    for mb in forward.minibatches():
        loss, lm = minibatch_loss(
            actor_cfg,
            forward.minibatch_log_prob(mb),
            forward.old_log_prob[mb],
            adv[mb],
            batch.response_mask[mb],
            None if ref_log_prob is None else ref_log_prob[mb],
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), actor_cfg.optim.clip_grad)
        if torch.isfinite(grad_norm):  # as verl: a non-finite gradient skips the update
            optimizer.step()
        lm["actor/grad_norm"] = grad_norm.item()
        mb_metrics.append(lm)
    return {key: mean(mb_metrics, key) for key in mb_metrics[0]}


def mean(rows: list[dict], key: str):
    """Mean of ``key`` over the rows that have a value for it (None when none has)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None
