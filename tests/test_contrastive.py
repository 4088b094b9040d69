"""clipo.contrastive against slow loops written straight from the paper's formulas (eq. 7-12, Table 4)."""

import math

import pytest
import torch

from clipo.contrastive import (
    ClipoHeadTrainer,
    ContrastiveHead,
    contrastive_loss,
    contrastive_reward,
    mean_pool,
    pair_similarity_stats,
)
from clipo.errors import ConfigError
from clipo.methods import Clipo


def slow_loss(emb, correct, group_ids, loss, tau, uniform=None, eps=0.0):
    """Per-rollout loss by explicit loops over groups; InfoNCE uses the documented positive draw."""
    emb = emb.double()
    batch = len(correct)
    out = [0.0] * batch
    anchor = [False] * batch
    for i in range(batch):
        members = [j for j in range(batch) if group_ids[j] == group_ids[i]]
        n_correct = sum(bool(correct[j]) for j in members)
        if not (correct[i] and 1 < n_correct < len(members)):
            continue
        anchor[i] = True
        others = [a for a in members if a != i]
        pos = [p for p in others if correct[p]]
        s = {a: float(emb[i] @ emb[a]) / tau for a in others}
        if eps == 0.0:
            log_den = math.log(sum(math.exp(v) for v in s.values()))
            if loss == "infonce":
                p = pos[math.floor(float(uniform[i]) * len(pos))]
                out[i] = -(s[p] - log_den)
            elif loss == "supcon":
                out[i] = -sum(s[p] - log_den for p in pos) / len(pos)
            else:
                out[i] = -(math.log(sum(math.exp(s[p]) for p in pos)) - log_den)
        else:
            m = max(list(s.values()) + [float(emb[i] @ emb[i]) / tau])
            den = math.log(sum(math.exp(v - m) for v in s.values()) + eps)
            if loss == "infonce":
                p = pos[math.floor(float(uniform[i]) * len(pos))]
                out[i] = -(math.log(math.exp(s[p] - m) + eps) - den)
            elif loss == "supcon":
                out[i] = -sum(math.log(math.exp(s[p] - m) + eps) - den for p in pos) / len(pos)
            else:
                out[i] = -(math.log(sum(math.exp(s[p] - m) for p in pos) + eps) - den)
    return torch.tensor(out, dtype=torch.float64), torch.tensor(anchor)


def make_batch(seed=0, d=16):
    """Shuffled, non-contiguous groups of different sizes incl. all-correct, all-wrong, single-correct."""
    g = torch.Generator().manual_seed(seed)
    spec = {  # group id -> correctness pattern
        7: [1, 0, 1, 1, 0, 0],  # eligible
        3: [1, 1, 1, 1],  # all correct -> no anchors
        42: [0, 0, 0, 0, 0],  # all wrong
        11: [1, 0, 0, 0, 0, 0, 0, 0],  # single correct -> no anchors
        5: [1, 1, 0],  # eligible, minimal
        100: [0, 1, 1, 1, 1, 0, 1],  # eligible, many positives
    }
    gids, corr = [], []
    for gid, pattern in spec.items():
        gids += [gid] * len(pattern)
        corr += pattern
    perm = torch.randperm(len(gids), generator=g)
    gids = torch.tensor(gids)[perm]
    corr = torch.tensor(corr, dtype=torch.bool)[perm]
    emb = torch.nn.functional.normalize(torch.randn(len(gids), d, generator=g), dim=-1)
    return emb, corr, gids


@pytest.mark.parametrize("loss", ["infonce", "supcon", "softnn"])
@pytest.mark.parametrize("tau", [0.05, 0.2])
@pytest.mark.parametrize("eps", [0.0, 1e-8])
def test_grouped_loss_matches_slow_loop(loss, tau, eps):
    emb, corr, gids = make_batch(seed=int(tau * 100))
    got, anchors = contrastive_loss(emb, corr, gids, loss, tau, torch.Generator().manual_seed(9), eps)
    uniform = torch.rand(len(corr), generator=torch.Generator().manual_seed(9))
    want, want_anchors = slow_loss(emb, corr, gids, loss, tau, uniform, eps)
    assert torch.equal(anchors, want_anchors)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    assert (got[~anchors] == 0).all()
    assert anchors.sum() == 3 + 2 + 5  # only the eligible groups' correct members


def test_anchor_rule_on_degenerate_groups():
    emb, corr, gids = make_batch()
    _, anchors = contrastive_loss(emb, corr, gids, "supcon", 0.1)
    for gid in (3, 42, 11):  # all-correct, all-wrong, single-correct
        assert not anchors[gids == gid].any()
    for gid in (7, 5, 100):
        assert torch.equal(anchors[gids == gid], corr[gids == gid])


def test_infonce_sampling_is_deterministic_and_uniform():
    emb, corr, gids = make_batch()
    a, _ = contrastive_loss(emb, corr, gids, "infonce", 0.05, torch.Generator().manual_seed(1))
    b, _ = contrastive_loss(emb, corr, gids, "infonce", 0.05, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    # the anchor with positives {p1, p2} in a group of 3 correct: each is chosen about half the time
    e = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0.6, 0.8], [0, 1.0], [-1.0, 0]]), dim=-1)
    c = torch.tensor([True, True, True, False])
    g = torch.zeros(4, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    values = torch.stack([contrastive_loss(e, c, g, "infonce", 0.5, gen)[0][0] for _ in range(400)])
    assert len(values.unique()) == 2
    share = (values == values.max()).float().mean()
    assert 0.4 < share < 0.6


def test_loss_is_finite_and_gradients_clean_with_padding_and_zero_vectors():
    emb, corr, gids = make_batch()
    emb = emb.clone()
    emb[0] = 0.0  # zero-length response -> zero embedding
    emb.requires_grad_(True)
    for loss in ("infonce", "supcon", "softnn"):
        value, anchors = contrastive_loss(emb, corr, gids, loss, 0.05, torch.Generator().manual_seed(0))
        assert torch.isfinite(value).all()
        value[anchors].mean().backward()
        assert torch.isfinite(emb.grad).all()
        emb.grad = None


def test_reference_eps_moves_loss_at_low_similarity():
    # points spread on a circle at tau=0.05: e^{s - 1/tau} <= e^-20 << eps, so the two modes differ by nats
    angle = torch.arange(6) * (2 * math.pi / 6)
    emb = torch.stack([angle.cos(), angle.sin()], dim=-1)
    corr = torch.tensor([True, True, False, False, True, False])
    gids = torch.zeros(6, dtype=torch.long)
    exact, anchors = contrastive_loss(emb, corr, gids, "supcon", 0.05)
    ref, _ = contrastive_loss(emb, corr, gids, "supcon", 0.05, reference_eps=1e-8)
    assert (exact[anchors] - ref[anchors]).abs().max() > 1.0


def test_contrastive_reward_eq12():
    loss = torch.tensor([0.5, 10.0, 3.0, 0.0])
    anchors = torch.tensor([True, True, False, True])
    r = contrastive_reward(loss, anchors, lam=0.2, floor=-0.5)
    torch.testing.assert_close(r, torch.tensor([-0.1, -0.5, 0.0, 0.0]))
    r = contrastive_reward(loss, anchors, lam=1.0)
    torch.testing.assert_close(r, torch.tensor([-0.5, -0.5, 0.0, 0.0]))


def test_mean_pool_response_tokens_only_and_empty_response():
    h = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]])
    pooled = mean_pool(h, mask)
    torch.testing.assert_close(pooled[0], h[0, 1:3].mean(0))
    assert torch.equal(pooled[1], torch.zeros(3))


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_head_outputs_unit_vectors(kind):
    head = ContrastiveHead(32, 8, kind)
    out = head(torch.randn(5, 32))
    assert out.shape == (5, 8)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(5))
    with pytest.raises(ConfigError, match="kind"):
        ContrastiveHead(32, 8, "transformer")


def test_bad_loss_name_is_one_clear_error():
    emb, corr, gids = make_batch()
    with pytest.raises(ConfigError, match="infonce"):
        contrastive_loss(emb, corr, gids, "triplet")


def test_pair_similarity_stats_by_hand():
    e = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0], [1.0, 0]])
    c = torch.tensor([True, True, False, False, True])
    g = torch.tensor([0, 0, 0, 0, 1])  # row 4 alone in its group: no pairs
    s = pair_similarity_stats(e, c, g)
    assert s["cos_pos"] == pytest.approx(1.0)
    assert s["cos_neg"] == pytest.approx(1.0)
    assert s["cos_cross"] == pytest.approx(0.0)
    s = pair_similarity_stats(e[[0, 2]], c[[0, 2]], g[[0, 2]])
    assert math.isnan(s["cos_pos"]) and math.isnan(s["cos_neg"])


def test_head_trainer_step_updates_unless_fixed_and_keeps_global_rng():
    emb, corr, gids = make_batch(d=24)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    trainer = ClipoHeadTrainer(24, Clipo(head_output_size=8), seed=0)
    before = [p.detach().clone() for p in trainer.head.parameters()]
    reward, metrics = trainer.step(emb, corr, gids)
    assert torch.equal(torch.rand(3), expected_next), "CLIPO must not consume the global RNG stream"
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.head.parameters()))
    assert reward.shape == corr.shape and (reward[~corr] == 0).all()
    for key in ("clipo/loss", "clipo/nontrivial_groups", "reward/contrastive", "clipo/cos_pos", "hidden/cos_cross"):
        assert key in metrics
    assert metrics["clipo/nontrivial_groups"] == pytest.approx(3 / 6)

    fixed = ClipoHeadTrainer(24, Clipo(head_output_size=8, fixed_head=True), seed=0)
    before = [p.detach().clone() for p in fixed.head.parameters()]
    fixed.step(emb, corr, gids)
    assert all(torch.equal(a, b) for a, b in zip(before, fixed.head.parameters()))


def test_head_trainer_state_round_trip():
    emb, corr, gids = make_batch(d=24)
    a = ClipoHeadTrainer(24, Clipo(head_output_size=8), seed=3)
    a.step(emb, corr, gids)
    b = ClipoHeadTrainer(24, Clipo(head_output_size=8), seed=99)
    b.load_state_dict(a.state_dict())
    ra, _ = a.step(emb, corr, gids)
    rb, _ = b.step(emb, corr, gids)
    assert torch.equal(ra, rb)


@pytest.mark.parametrize("loss", ["infonce", "supcon", "softnn"])
def test_contiguous_equal_groups_take_the_view_path_and_agree(loss):
    g = torch.Generator().manual_seed(4)
    corr = torch.rand(32, generator=g) < 0.5
    gids = torch.arange(32) // 8  # verl and the mini trainer lay rollouts out group after group
    emb = torch.nn.functional.normalize(torch.randn(32, 6, generator=g), dim=-1)
    got, anchors = contrastive_loss(emb, corr, gids, loss, 0.05, torch.Generator().manual_seed(2))
    uniform = torch.rand(32, generator=torch.Generator().manual_seed(2))
    want, want_anchors = slow_loss(emb, corr, gids, loss, 0.05, uniform)
    assert torch.equal(anchors, want_anchors)
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def test_add_at_last_token_matches_a_plain_loop():
    """The one place both trainers add r^CL: at each row's last response token, nothing for empty rows."""
    from clipo.contrastive import add_at_last_token

    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(6, 5, generator=gen) > 0.4).long()
    mask[0] = 0  # no response token
    mask[1] = torch.tensor([1, 1, 1, 0, 0])  # right-padded
    scores = torch.rand(6, 5, generator=gen)
    reward = torch.randn(6, generator=gen)
    expected = scores.clone()
    for i in range(6):
        tokens = [j for j in range(5) if mask[i, j]]
        if tokens:
            expected[i, tokens[-1]] += reward[i]
    got = add_at_last_token(scores, mask, reward)
    assert torch.equal(got, expected) and not torch.equal(got, scores)
    assert got[1, 2] == scores[1, 2] + reward[1] and torch.equal(got[0], scores[0])
