"""CLIPO's contrastive head, losses and reward (paper §3, eq. 7-12, Table 4) — shared by both backends.

Everything is computed per rollout group: the B rollouts are gathered into a padded
[n_groups, G_max, d] block, so similarities cost n_groups·G_max² instead of B² (Track I has
B = 512 prompts × 16 rollouts = 8192; a dense B×B formulation needs 67 M similarities and GBs of masks).

Notation: s_ij = e_i·e_j / τ with L2-normalised embeddings e. A rollout i is an *anchor* when it is
correct and its group has 1 < #correct < G (eq. 7's non-degenerate case). For an anchor the
denominator runs over all OTHER members a of its group (self excluded; positives and negatives
included); its positives P_i are the other correct members:

    InfoNCE  −log( e^{s_ip*} / Σ_a e^{s_ia} )          p* drawn uniformly from P_i
    SupCon   −(1/|P_i|) Σ_p log( e^{s_ip} / Σ_a e^{s_ia} )
    SoftNN   −log( Σ_p e^{s_ip} / Σ_a e^{s_ia} )

Two numerical modes:
- ``reference_eps == 0`` (default): the formulas above, exactly, through logsumexp.
- ``reference_eps > 0``: the released implementation's numerics, kept for comparisons with its runs.
  Logits are shifted by the row maximum (including self, i.e. 1/τ for unit vectors) and ``eps`` is
  added inside each log: −log(e^{s_ip−m} + eps) + log(Σ_a e^{s_ia−m} + eps). At τ = 0.05 a pair with
  low similarity has e^{s−m} ≈ e^{−20}, far below eps = 1e-8, so this mode can move the loss by
  several nats; it is not the paper's formula.

Adding a loss: its name, label and λ with ``clipo.methods.register_contrastive_loss``, its maths here as a
function of ``Pairs`` decorated with ``register_contrastive_loss_fn`` (both numerical modes through
``Pairs.log_sum_exp``); configs, run ids, tables, figures and labels then know it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from clipo.errors import ConfigError
from clipo.methods import CONTRASTIVE_LOSSES, REWARD_FLOOR, Clipo, get_contrastive_loss

_MASKED = -1e30  # finite stand-in for −inf: keeps gradients of unused entries at 0 instead of NaN


class ContrastiveHead(nn.Module):
    """g_φ of eq. 8: a projection of the pooled hidden state, L2-normalised (SimCLR-style)."""

    def __init__(self, hidden_size: int, output_size: int = 512, kind: str = "linear", bias: bool = False):
        super().__init__()
        if kind == "linear":
            self.proj = nn.Linear(hidden_size, output_size, bias=bias)
        elif kind == "mlp":
            self.proj = nn.Sequential(
                nn.Linear(hidden_size, hidden_size, bias=bias), nn.ReLU(), nn.Linear(hidden_size, output_size, bias=bias)
            )
        else:
            raise ConfigError(f"ContrastiveHead kind={kind!r}; valid: linear, mlp")

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(pooled), dim=-1)


def mean_pool(hidden_states: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 9: mean of the hidden states over response tokens only; an empty response gives zeros."""
    mask = response_mask.to(hidden_states.dtype).unsqueeze(-1)
    total = (hidden_states * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1.0)


@dataclass
class _Groups:
    """Padded per-group layout of a batch: ``index[g, k]`` is the batch row of slot k of group g."""

    index: torch.Tensor  # [n, G_max] long, clamped to 0 in padding slots
    valid: torch.Tensor  # [n, G_max] bool
    group_of_row: torch.Tensor  # [B] group number of each row
    slot_of_row: torch.Tensor  # [B] slot of each row in its group
    in_place: bool  # rows already sit group after group with equal sizes: a view needs no copy

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """[B, ...] → [n, G_max, ...]; a free view when the batch is already grouped (verl, mini)."""
        if self.in_place:
            return rows.view(*self.index.shape, *rows.shape[1:])
        return torch.index_select(rows, 0, self.index.flatten()).view(*self.index.shape, *rows.shape[1:])


def _group_layout(group_ids: torch.Tensor) -> _Groups:
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)  # stable: members keep batch order inside a group
    starts = torch.cumsum(counts, 0) - counts
    slot_sorted = torch.arange(len(order), device=group_ids.device) - starts[inverse[order]]
    slot = torch.empty_like(slot_sorted)
    slot[order] = slot_sorted
    n_groups, g_max = len(counts), int(counts.max()) if len(counts) else 0
    index = torch.zeros(n_groups, g_max, dtype=torch.long, device=group_ids.device)
    valid = torch.zeros(n_groups, g_max, dtype=torch.bool, device=group_ids.device)
    index[inverse, slot] = torch.arange(len(group_ids), device=group_ids.device)
    valid[inverse, slot] = True
    in_place = bool(valid.all()) and torch.equal(index.flatten(), torch.arange(len(group_ids), device=index.device))
    return _Groups(index, valid, inverse, slot, in_place)


def _pair_masks(groups: _Groups, correct: torch.Tensor):
    """Masks over [n, G_max, G_max]: other members, positives; and the per-slot anchor mask."""
    valid, g_max = groups.valid, groups.valid.shape[1]
    is_correct = correct[groups.index] & valid
    eye = torch.eye(g_max, dtype=torch.bool, device=valid.device)
    others = valid.unsqueeze(2) & valid.unsqueeze(1) & ~eye
    positives = others & is_correct.unsqueeze(2) & is_correct.unsqueeze(1)
    n_correct, size = is_correct.sum(1, keepdim=True), valid.sum(1, keepdim=True)
    anchors = is_correct & (n_correct > 1) & (n_correct < size)
    return others, positives, anchors


def _sample_positive(positives: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """One-hot [n, G, G] choice of the ⌊u·|P_i|⌋-th positive of each slot, positives in batch order."""
    n_pos = positives.sum(-1)
    pick = (uniform * n_pos).floor().long().clamp(max=(n_pos - 1).clamp(min=0))
    rank = torch.cumsum(positives.long(), dim=-1) - 1
    return positives & (rank == pick.unsqueeze(-1))


@dataclass
class Pairs:
    """What a contrastive loss sees: the [n, G, G] similarity logits of every group and its pair masks,
    in one of the two numerical modes (module docstring)."""

    sim: torch.Tensor
    """s_ij = e_i·e_j / τ."""
    others: torch.Tensor
    """Pairs of two different members of a group: the denominator of every loss."""
    positives: torch.Tensor
    """Pairs of two different correct members."""
    eps: float
    """0: the exact formulas; > 0: the released code's numerics."""
    draw_positive: Callable[[], torch.Tensor]
    """One-hot [n, G, G] choice of one positive per anchor, drawn uniformly (InfoNCE)."""
    exp: torch.Tensor | None = None
    """Reference mode only: e^{s − row max} (the row maximum includes self)."""

    def log_sum_exp(self, mask: torch.Tensor) -> torch.Tensor:
        """log Σ_{j ∈ mask} e^{s_ij} per slot (reference mode: shifted, with eps inside the log)."""
        if self.eps > 0:
            return torch.log((self.exp * mask).sum(-1) + self.eps)
        return self.sim.masked_fill(~mask, _MASKED).logsumexp(-1)

    def log_each(self) -> torch.Tensor:
        """log e^{s_ij} per pair: s_ij itself (reference mode: log(e^{s − max} + eps))."""
        return torch.log(self.exp + self.eps) if self.eps > 0 else self.sim


ContrastiveLossFn = Callable[[Pairs], torch.Tensor]
"""Per-slot loss [n, G] of every group; the caller keeps the anchors' values only."""

CONTRASTIVE_LOSS_FNS: dict[str, ContrastiveLossFn] = {}
"""Loss name → its maths; names and defaults are clipo.methods.CONTRASTIVE_LOSSES."""


def register_contrastive_loss_fn(name: str) -> Callable[[ContrastiveLossFn], ContrastiveLossFn]:
    """Decorator: the maths of a loss already in clipo.methods.CONTRASTIVE_LOSSES."""
    get_contrastive_loss(name)  # unknown names fail here, listing the registered ones

    def register(fn: ContrastiveLossFn) -> ContrastiveLossFn:
        if name in CONTRASTIVE_LOSS_FNS:
            raise ConfigError(f"contrastive loss {name!r} has a function already: {CONTRASTIVE_LOSS_FNS[name].__name__}")
        CONTRASTIVE_LOSS_FNS[name] = fn
        return fn

    return register


def get_contrastive_loss_fn(name: str) -> ContrastiveLossFn:
    get_contrastive_loss(name)
    if name not in CONTRASTIVE_LOSS_FNS:
        raise ConfigError(f"contrastive loss {name!r} has no function (register_contrastive_loss_fn); "
                          f"with one: {', '.join(CONTRASTIVE_LOSS_FNS)}")
    return CONTRASTIVE_LOSS_FNS[name]


@register_contrastive_loss_fn("infonce")
def infonce(p: Pairs) -> torch.Tensor:
    """−log( e^{s_ip*} / Σ_a e^{s_ia} ), p* drawn uniformly from P_i."""
    denominator = p.log_sum_exp(p.others)  # first, as in the other losses
    chosen = p.draw_positive()
    return denominator - (p.log_sum_exp(chosen) if p.eps > 0 else (p.sim * chosen).sum(-1))


@register_contrastive_loss_fn("supcon")
def supcon(p: Pairs) -> torch.Tensor:
    """−(1/|P_i|) Σ_p log( e^{s_ip} / Σ_a e^{s_ia} )."""
    return p.log_sum_exp(p.others) - (p.log_each() * p.positives).sum(-1) / p.positives.sum(-1).clamp(min=1)


@register_contrastive_loss_fn("softnn")
def softnn(p: Pairs) -> torch.Tensor:
    """−log( Σ_p e^{s_ip} / Σ_a e^{s_ia} )."""
    return p.log_sum_exp(p.others) - p.log_sum_exp(p.positives)


def contrastive_loss(
    embeddings: torch.Tensor,
    correct: torch.Tensor,
    group_ids: torch.Tensor,
    loss: str = "infonce",
    temperature: float = 0.05,
    generator: torch.Generator | None = None,
    reference_eps: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-rollout contrastive loss [B] and anchor mask [B]; the loss is 0 off the anchors.

    ``loss`` is looked up in the registry (an unknown name fails listing the valid ones). InfoNCE
    draws u_i ~ U[0,1) for every row in batch order from ``generator`` and takes the ⌊u_i·|P_i|⌋-th
    other positive of anchor i (positives in batch order). Group ids need not be contiguous and groups
    may differ in size.
    """
    loss_fn = get_contrastive_loss_fn(loss)
    if not temperature > 0:
        raise ConfigError(f"contrastive temperature must be > 0, got {temperature!r}")
    batch = embeddings.shape[0]
    if correct.shape[0] != batch or group_ids.shape[0] != batch:
        raise ValueError(f"embeddings, correct and group_ids disagree on batch size: "
                         f"{batch}, {correct.shape[0]}, {group_ids.shape[0]}")
    if batch == 0:
        return embeddings.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=embeddings.device)
    correct = correct.bool() if correct.dtype == torch.bool else correct > 0
    groups = _group_layout(group_ids)
    others, positives, anchors = _pair_masks(groups, correct)

    emb = groups.gather(embeddings.float())  # [n, G, d]
    sim = emb @ emb.transpose(1, 2) / temperature  # [n, G, G]

    def draw_positive() -> torch.Tensor:
        uniform = torch.rand(batch, generator=generator, device=embeddings.device)
        return _sample_positive(positives, uniform[groups.index])

    exp = None
    if reference_eps > 0:  # the released code's numerics: shift by the row maximum, self included
        row_max = sim.masked_fill(~(others | torch.diag_embed(groups.valid)), _MASKED).amax(-1, keepdim=True)
        exp = torch.exp(sim - row_max)
    per_slot = loss_fn(Pairs(sim, others, positives, reference_eps, draw_positive, exp))

    per_slot = torch.where(anchors, per_slot, torch.zeros_like(per_slot))
    return per_slot[groups.group_of_row, groups.slot_of_row], anchors[groups.group_of_row, groups.slot_of_row]


def contrastive_reward(
    loss: torch.Tensor, anchor_mask: torch.Tensor, lam: float = CONTRASTIVE_LOSSES["infonce"].lam,
    floor: float = REWARD_FLOOR,
) -> torch.Tensor:
    """Eq. 12: r^CL = max(−λ·L, floor) on anchors, 0 elsewhere (λ per loss: clipo.methods.CONTRASTIVE_LOSSES)."""
    reward = torch.clamp(-lam * loss.detach(), min=floor)
    return torch.where(anchor_mask, reward, torch.zeros_like(reward))


def add_at_last_token(
    token_rewards: torch.Tensor, response_mask: torch.Tensor, reward: torch.Tensor
) -> torch.Tensor:
    """``token_rewards`` [B, R] with ``reward`` [B] added at each row's last response token (eq. 12's
    r^CL joins the outcome reward there, as verl places rewards); a row without response tokens gets
    nothing. Both trainers insert the contrastive reward through this function."""
    mask = response_mask > 0
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, positions, torch.full_like(positions, -1)).amax(-1)
    rows = torch.nonzero(last >= 0).reshape(-1)
    total = token_rewards.clone()
    total[rows, last[rows]] += reward[rows].to(total.dtype)
    return total


def pair_similarity_stats(
    embeddings: torch.Tensor, correct: torch.Tensor, group_ids: torch.Tensor
) -> dict[str, float]:
    """Mean within-group cosine similarity over all correct–correct, wrong–wrong and correct–wrong pairs.

    Pairs are pooled over the whole batch (each unordered pair counted once); NaN when a kind of pair
    does not occur. Used for Figure 5 on both the head embeddings and the raw pooled hidden states.
    """
    if embeddings.shape[0] == 0:
        return {"cos_pos": float("nan"), "cos_neg": float("nan"), "cos_cross": float("nan")}
    correct = correct.bool() if correct.dtype == torch.bool else correct > 0
    groups = _group_layout(group_ids)
    unit = groups.gather(F.normalize(embeddings.detach().float(), dim=-1))
    cos = unit @ unit.transpose(1, 2)
    valid = groups.valid
    is_correct = correct[groups.index] & valid
    is_wrong = ~correct[groups.index] & valid
    upper = torch.ones(valid.shape[1], valid.shape[1], dtype=torch.bool, device=valid.device).triu(1)
    kinds = {
        "cos_pos": is_correct.unsqueeze(2) & is_correct.unsqueeze(1),
        "cos_neg": is_wrong.unsqueeze(2) & is_wrong.unsqueeze(1),
        "cos_cross": (is_correct.unsqueeze(2) & is_wrong.unsqueeze(1)) | (is_wrong.unsqueeze(2) & is_correct.unsqueeze(1)),
    }
    stats = {}
    for name, mask in kinds.items():
        mask = mask & upper
        count = int(mask.sum())
        stats[name] = float((cos * mask).sum() / count) if count else float("nan")
    return stats


class ClipoHeadTrainer:
    """The contrastive head and its AdamW, as one object each backend drives once per RL step.

    ``step`` embeds the pooled hidden states, computes the loss and the contrastive reward from that
    same forward, then (unless the head is fixed) takes one optimiser step on the mean loss over
    anchors. Initialisation and positive sampling use their own RNG streams, so turning CLIPO on never
    changes the policy's random numbers.
    """

    def __init__(self, hidden_size: int, cfg: Clipo, seed: int = 0, device: str | torch.device = "cpu"):
        self.cfg = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = ContrastiveHead(hidden_size, cfg.head_output_size, cfg.head_kind).to(device)
        self.optimizer = torch.optim.AdamW(self.head.parameters(), lr=cfg.head_lr, weight_decay=cfg.head_weight_decay)
        self.generator = torch.Generator(device=device).manual_seed(seed + 1)
        self.device = torch.device(device)

    @torch.no_grad()
    def embed(self, pooled_hidden: torch.Tensor) -> torch.Tensor:
        return self.head(pooled_hidden.detach().to(self.device, torch.float32))

    def step(
        self,
        pooled_hidden: torch.Tensor,
        correct: torch.Tensor,
        group_ids: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Contrastive reward [B] for this batch, plus metrics; updates the head unless it is fixed.

        ``generator`` overrides the trainer's own stream for InfoNCE's positive sampling.
        """
        pooled = pooled_hidden.detach().to(self.device, torch.float32)
        correct = correct.to(self.device)
        group_ids = group_ids.to(self.device)
        embeddings = self.head(pooled)
        loss, anchors = contrastive_loss(
            embeddings, correct, group_ids, self.cfg.loss, self.cfg.temperature,
            generator or self.generator, self.cfg.reference_eps,
        )
        reward = contrastive_reward(loss, anchors, self.cfg.lam, self.cfg.floor)
        n_anchors = int(anchors.sum())
        if not self.cfg.fixed_head and n_anchors:
            self.optimizer.zero_grad(set_to_none=True)
            loss[anchors].mean().backward()
            self.optimizer.step()

        metrics = {
            "clipo/loss": float(loss.detach()[anchors].mean()) if n_anchors else float("nan"),
            "clipo/anchor_frac": n_anchors / max(len(anchors), 1),
            "clipo/nontrivial_groups": _nontrivial_group_fraction(correct, group_ids),
            "reward/contrastive": float(reward[anchors].mean()) if n_anchors else 0.0,
        }
        for prefix, values in (("clipo", embeddings), ("hidden", pooled)):
            for key, value in pair_similarity_stats(values, correct, group_ids).items():
                metrics[f"{prefix}/{key}"] = value
        return reward.cpu(), metrics

    def state_dict(self) -> dict:
        return {
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


def _nontrivial_group_fraction(correct: torch.Tensor, group_ids: torch.Tensor) -> float:
    """Fraction of groups with 1 < #correct < G, i.e. groups that carry a contrastive signal."""
    correct = correct.bool() if correct.dtype == torch.bool else correct > 0
    _, inverse, size = torch.unique(group_ids, return_inverse=True, return_counts=True)
    n_correct = torch.zeros_like(size).scatter_add_(0, inverse, correct.long())
    return float(((n_correct > 1) & (n_correct < size)).float().mean()) if len(size) else 0.0
