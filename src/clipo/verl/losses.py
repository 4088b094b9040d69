"""The project's policy losses, registered in verl's ``POLICY_LOSS_REGISTRY`` on import.

``geo_mean_global``: GMPO's objective (Zhao et al. 2025, arXiv 2507.20673) normalised over the global
mini-batch. verl 0.9.1's own ``geo_mean`` ends in a plain mean over the micro-batch it is given, but
its v1 engine back-propagates every micro-batch's loss unscaled and sums the gradients: the update
then becomes a sum of per-micro-batch means, its size grows with the number of micro-batches (which
dynamic batch size varies step by step) and micro-batches of few long responses weigh more. This
loss divides each response's term by the mini-batch's size across all data-parallel ranks (times the
ranks, which FSDP's gradient averaging divides out again) — what ``agg_loss`` does for verl's other
losses — so 1, 4 or any number of micro-batches give the same gradient.

Loaded in every verl worker and in the trainer process by ``clipo.verl.worker_patch`` (the run's
``actor_rollout_ref.model.external_lib``), and by the mini trainer before it looks the loss up. Without
verl's global batch information (the mini trainer calls the loss on a whole minibatch) it averages
over the responses it is given, as ``geo_mean`` does.
"""

from __future__ import annotations

import torch
from verl.trainer.ppo.core_algos import agg_loss, register_policy_loss
from verl.utils.torch_functional import masked_mean

GEO_MEAN_GLOBAL = "geo_mean_global"


def _clip_range(config) -> tuple[float, float]:
    low = config.clip_ratio_low if config.clip_ratio_low is not None else config.clip_ratio
    high = config.clip_ratio_high if config.clip_ratio_high is not None else config.clip_ratio
    return low, high


@register_policy_loss(GEO_MEAN_GLOBAL)
def compute_policy_loss_geo_mean_global(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config=None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """−A_i · exp(mean_t clip(log r_i,t)) per response i, summed and divided by the global mini-batch size.

    ``loss_agg_mode`` is not used: GMPO's objective is a mean over responses by definition. Clipping
    is PPO's pessimistic one, token by token in log space with GMPO's range (−low, +high): a token's
    log-ratio is clipped only where that lowers the objective.
    """
    if config is None:
        raise ValueError(f"policy loss {GEO_MEAN_GLOBAL!r} needs the actor config (clip ranges, batch info)")
    low, high = _clip_range(config)
    mask = response_mask.to(log_prob.dtype)
    n_tokens = mask.sum(-1)
    per_token = 1.0 / n_tokens.clamp(min=1)

    log_ratio = log_prob - old_log_prob
    clipped = log_ratio.clamp(-low, high)
    sign = torch.sign(advantages)
    pessimistic = sign * torch.minimum(sign * log_ratio, sign * clipped)
    # --- algorithm: geometric mean of the token ratios, times the response's (sequence-level) advantage
    seq_ratio = torch.exp((pessimistic * mask).sum(-1) * per_token)
    seq_advantage = (advantages * mask).sum(-1) * per_token
    seq_loss = -seq_advantage * seq_ratio
    if rollout_is_weights is not None:
        # token weights → one weight per response, by the same geometric mean
        seq_loss = seq_loss * torch.exp((torch.log(rollout_is_weights + 1e-10) * mask).sum(-1) * per_token)

    # --- algorithm: sum over responses / responses in the global mini-batch × data-parallel ranks
    has_tokens = (n_tokens > 0).to(seq_loss.dtype).unsqueeze(-1)
    pg_loss = agg_loss(
        loss_mat=seq_loss.unsqueeze(-1), loss_mask=has_tokens, loss_agg_mode="seq-mean-token-sum",
        **config.global_batch_info,
    )

    was_clipped = (log_ratio != clipped).to(mask.dtype)
    metrics = {
        "actor/pg_clipfrac": masked_mean(was_clipped * (advantages > 0), mask).detach().item(),
        "actor/pg_clipfrac_lower": masked_mean(was_clipped * (advantages < 0), mask).detach().item(),
        "actor/ppo_kl": masked_mean(-log_ratio, mask).detach().item(),
    }
    return pg_loss, metrics
