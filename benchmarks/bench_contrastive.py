"""Grouped (clipo.contrastive) vs a dense B×B formulation of the same contrastive loss, side by side.

The dense version is how a straightforward implementation computes it: a B×B similarity matrix and
B×B group/positive masks over the whole batch. Both see the same embeddings, labels, groups and
InfoNCE draws; the script checks the numbers agree and prints the time ratio.

    python benchmarks/bench_contrastive.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from clipo.contrastive import contrastive_loss


def dense_loss(emb, correct, group_ids, loss, tau, uniform):
    """Reference: the same formulas over dense B×B matrices (memory and time grow with B²)."""
    batch = emb.shape[0]
    sim = emb @ emb.T / tau
    same = group_ids[:, None] == group_ids[None, :]
    others = same & ~torch.eye(batch, dtype=torch.bool)
    positives = others & correct[:, None] & correct[None, :]
    n_correct = (same & correct[None, :]).sum(1)
    anchors = correct & (n_correct > 1) & (n_correct < same.sum(1))
    log_den = sim.masked_fill(~others, -1e30).logsumexp(1)
    if loss == "infonce":
        n_pos = positives.sum(1)
        pick = (uniform * n_pos).floor().long().clamp(max=(n_pos - 1).clamp(min=0))
        chosen = positives & ((torch.cumsum(positives.long(), 1) - 1) == pick[:, None])
        pos_term = (sim * chosen).sum(1)
    elif loss == "supcon":
        pos_term = (sim * positives).sum(1) / positives.sum(1).clamp(min=1)
    else:
        pos_term = sim.masked_fill(~positives, -1e30).logsumexp(1)
    return torch.where(anchors, log_den - pos_term, torch.zeros_like(log_den)), anchors


def make_inputs(batch, dim, shuffled, group_size=16, seed=0):
    """G=16 rollouts per prompt; ``shuffled`` scatters each group over the batch (the worst case)."""
    g = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(batch, dim, generator=g), dim=-1)
    group_ids = torch.arange(batch) // group_size
    correct = torch.rand(batch, generator=g) < 0.5
    perm = torch.randperm(batch, generator=g) if shuffled else torch.arange(batch)
    return emb[perm], correct[perm], group_ids[perm]


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tau", type=float, default=0.05)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, tau={args.tau}, best of {args.repeats}")
    print(f"{'B':>6} {'d':>5} {'layout':>9} {'loss':>8} {'grouped s':>10} {'dense B×B s':>12} {'ratio':>8} "
          f"{'max |Δ|':>9}")
    ratios = []
    for (batch, dim), shuffled, loss in itertools.product(
        ((8192, 512), (2048, 2048)), (False, True), ("infonce", "supcon", "softnn")
    ):
        emb, correct, group_ids = make_inputs(batch, dim, shuffled)
        uniform = torch.rand(batch, generator=torch.Generator().manual_seed(1))
        t_grouped, (grouped, _) = best_time(
            lambda: contrastive_loss(emb, correct, group_ids, loss, args.tau, torch.Generator().manual_seed(1)),
            args.repeats,
        )
        t_dense, (dense, _) = best_time(
            lambda: dense_loss(emb, correct, group_ids, loss, args.tau, uniform), args.repeats
        )
        diff = float((grouped - dense).abs().max())
        if diff > 1e-4:
            raise SystemExit(f"grouped and dense losses disagree by {diff} (B={batch}, d={dim}, {loss})")
        ratios.append(t_dense / t_grouped)
        layout = "shuffled" if shuffled else "grouped"
        print(f"{batch:>6} {dim:>5} {layout:>9} {loss:>8} {t_grouped:>10.4f} {t_dense:>12.4f} "
              f"{t_dense / t_grouped:>7.1f}× {diff:>9.1e}")
    print(f"ratio (dense B×B ÷ grouped time), worst case = {min(ratios):.1f}×")


if __name__ == "__main__":
    main()
