"""The ``clipo_sync`` trainer: its tensor logic, its records, its checkpoints, and its hooks on a real
TransferQueue (Ray with 2 CPUs) around verl's own ``_compute_old_log_prob`` / ``_compute_advantage``."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip(
    "transfer_queue", reason="verl's v1 trainer needs TransferQueue (requirements/test-extra.lock)"
)

from hydra import compose, initialize_config_dir  # noqa: E402

import clipo.verl  # noqa: E402
from clipo.contrastive import ClipoHeadTrainer  # noqa: E402
from clipo.methods import Clipo  # noqa: E402
from clipo.verl import HIDDEN_FIELD, HIDDEN_FLAG, HIDDEN_SHIFT  # noqa: E402
from clipo.verl.overrides import build_overrides, plan_run  # noqa: E402
from clipo.verl.trainer import (  # noqa: E402
    HEAD_CHECKPOINT,
    ClipoTrainerSync,
    RunRecords,
    add_contrastive_reward,
    clipo_settings,
    group_numbers,
    metrics_row,
)

CONFIG_DIR = str(Path(clipo.verl.__file__).parent / "config")
N_CORRECT = [0, 1, 2, 4, 3]  # per group of G=4: none, one, two, all, three correct
G = 4


def _config(out_dir, extra=(), clipo="infonce"):
    run = plan_run("I", "grpo", clipo, group_size=G, out=str(out_dir))
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("clipo_trainer", overrides=build_overrides(run) + list(extra))


def _synthetic_batch(hidden_size=16, seed=0):
    """Groups of G rollouts with jagged responses; the score 1/0 sits at the last response token."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for gi, n_correct in enumerate(N_CORRECT):
        for s in range(G):
            length = 3 + (gi + s) % 3
            score = torch.zeros(length)
            score[-1] = 1.0 if s < n_correct else 0.0
            rows.append(
                dict(
                    key=f"p{gi}_{s}_0",
                    uid=f"p{gi}",
                    rm_scores=score,
                    response_mask=torch.ones(length, dtype=torch.int64),
                    hidden=torch.randn(hidden_size, generator=g),
                    prompt_len=2 + s,
                )
            )
    return rows


def _padded(rows, name):
    width = max(len(r[name]) for r in rows)
    return torch.stack([torch.nn.functional.pad(r[name], (0, width - len(r[name]))) for r in rows])


# ------------------------------------------------------------------------------------------ pure tensor logic
def test_contrastive_reward_goes_to_anchors_of_eligible_groups_only():
    rows = _synthetic_batch()
    # verl's batch padding: a correct-looking row in group 4 that must take no part and get no reward
    rows.append(dict(rows[-4], key="pad_0_0", hidden=torch.randn(16)))
    scores, mask = _padded(rows, "rm_scores"), _padded(rows, "response_mask")
    hidden = torch.stack([r["hidden"] for r in rows])
    groups = group_numbers([r["uid"] for r in rows])
    real = torch.ones(len(rows), dtype=torch.bool)
    real[-1] = False
    head = ClipoHeadTrainer(16, Clipo(), seed=0)
    total, reward, metrics = add_contrastive_reward(head, scores, mask, hidden, groups, real)

    assert reward[-1] == 0 and torch.equal(total[-1], scores[-1])
    reward = reward[:-1].view(len(N_CORRECT), G)
    assert torch.all(reward[[0, 1, 3]] == 0)  # 0, 1 or all correct: no contrastive signal
    assert torch.all(reward[2, :2] < 0) and torch.all(reward[2, 2:] == 0)  # anchors: the correct ones
    assert torch.all(reward[4, :3] < 0) and reward[4, 3] == 0
    assert torch.all(reward >= -0.5)  # the floor of eq. 12
    # the reward is added at the last response token; everything else is unchanged
    lengths = mask.sum(-1)
    for i in range(len(rows) - 1):
        expect = scores[i].clone()
        expect[lengths[i] - 1] += reward.view(-1)[i]
        assert torch.equal(total[i], expect)
    assert metrics["reward/outcome"] == pytest.approx(float((scores.sum(-1) > 0.5)[real].float().mean()))
    assert metrics["clipo/nontrivial_groups"] == pytest.approx(2 / 5)  # groups 2 and 4
    assert {"clipo/loss", "clipo/cos_pos", "clipo/cos_neg", "clipo/cos_cross", "hidden/cos_pos"} <= set(
        metrics
    )


def test_fixed_head_is_not_trained_and_learned_head_is():
    rows = _synthetic_batch()
    args = (
        _padded(rows, "rm_scores"),
        _padded(rows, "response_mask"),
        torch.stack([r["hidden"] for r in rows]),
        group_numbers([r["uid"] for r in rows]),
        torch.ones(len(rows), dtype=torch.bool),
    )
    for fixed in (True, False):
        head = ClipoHeadTrainer(16, Clipo(fixed_head=fixed), seed=0)
        before = [p.detach().clone() for p in head.head.parameters()]
        add_contrastive_reward(head, *args)
        same = all(torch.equal(a, b) for a, b in zip(before, head.head.parameters(), strict=True))
        assert same == fixed


def test_group_numbers_follow_first_appearance():
    assert group_numbers(["b", "a", "b", "c", "a"]).tolist() == [0, 1, 0, 2, 1]


def test_metrics_row_uses_the_mini_trainers_keys():
    verl = {
        "actor/pg_loss": 0.1,
        "actor/kl_loss": 0.01,
        "actor/pg_clipfrac": 0.2,
        "response_length/mean": 100.0,
        "timing_s/gen": 3.0,
        "timing_s/update_actor": 2.0,
        "critic/score/mean": 0.4,
        "actor/lr": 1e-6,
    }
    row = metrics_row(
        7, verl, {"reward/outcome": 0.5, "clipo/cos_pos": float("nan"), "time/clipo": 0.1}, True
    )
    assert row == {
        "step": 7,
        "reward/outcome": 0.5,
        "loss/policy": 0.1,
        "loss/kl": 0.01,
        "actor/clip_frac": 0.2,
        "response/length": 100.0,
        "time/rollout": 3.0,
        "time/update": 2.0,
        "clipo/cos_pos": None,
        "time/clipo": 0.1,
        "train/policy_frozen": True,
    }
    assert metrics_row(1, verl, {}, False)["reward/outcome"] == 0.4  # CLIPO off: verl's score is the outcome


def test_clipo_section_defaults_come_from_the_dataclass():
    settings = clipo_settings(
        {"enable": True, "loss": "softnn", "lam": None, "seed": 3, "out_dir": None, "hidden_shift": 1}
    )
    assert settings.clipo == Clipo(loss="softnn") and settings.seed == 3 and settings.hidden_shift == 1
    assert clipo_settings({"enable": False, "loss": "infonce"}).clipo is None
    with pytest.raises(ValueError, match="hidden_shift"):
        clipo_settings({"enable": True, "hidden_shift": 2})


def test_run_records_match_the_mini_format_and_resume(tmp_path):
    import pyarrow.parquet as pq

    records = RunRecords(tmp_path)
    for step in (1, 2, 3):
        records.add_metrics({"step": step, "reward/outcome": step / 10})
    emb = torch.randn(4, 8)
    records.add_embeddings(
        1, "start", "head", emb, torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 1, 1]).bool()
    )
    schema = pq.read_schema(tmp_path / "embeddings.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("step", "int64"),
        ("phase", "string"),
        ("group_id", "int64"),
        ("correct", "bool"),
        ("embedding", "list<element: float>"),
        ("space", "string"),
    ]
    reopened = RunRecords(tmp_path)  # a resumed run forgets what came after its checkpoint
    reopened.truncate(2)
    assert [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    table = pq.read_table(tmp_path / "embeddings.parquet").to_pandas()
    assert len(table) == 4 and np.allclose(np.stack(table["embedding"]), emb.numpy())


# ------------------------------------------------------------------------------------------ trainer object
def test_trainer_is_verls_sync_trainer_underneath(tmp_path):
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    cfg = _config(tmp_path)
    assert get_trainer_cls("clipo_sync") is ClipoTrainerSync
    trainer = ClipoTrainerSync(cfg)
    # verl switches to its async replay buffer for any mode other than "sync"
    assert type(trainer.replay_buffer) is ReplayBuffer and trainer.trainer_mode == "sync"
    assert trainer.parameter_sync_step == 1 and trainer.settings.clipo.head_output_size == 512


def test_head_and_optimiser_are_saved_and_restored_with_verls_checkpoint(tmp_path, monkeypatch):
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    ckpt = tmp_path / "checkpoints"
    cfg = _config(tmp_path, [f"trainer.default_local_dir={ckpt}"])
    monkeypatch.setattr(PPOTrainerSync, "_save_checkpoint", lambda self: None)  # verl's actor/dataloader part
    monkeypatch.setattr(PPOTrainerSync, "_load_checkpoint", lambda self: setattr(self, "global_steps", 2))
    rows = _synthetic_batch()
    args = (
        _padded(rows, "rm_scores"),
        _padded(rows, "response_mask"),
        torch.stack([r["hidden"] for r in rows]),
        group_numbers([r["uid"] for r in rows]),
        torch.ones(len(rows), dtype=torch.bool),
    )

    trainer = ClipoTrainerSync(cfg)
    for step in (1, 2, 3):
        trainer.records.add_metrics({"step": step})
    trainer.global_steps = 2
    add_contrastive_reward(trainer._get_head(16), *args)
    trainer._save_checkpoint()
    assert (ckpt / "global_step_2" / HEAD_CHECKPOINT).exists()
    _, expected, _ = add_contrastive_reward(trainer.head, *args)  # step 3 of the original run

    resumed = ClipoTrainerSync(cfg)
    resumed._load_checkpoint()
    _, again, _ = add_contrastive_reward(resumed._get_head(16), *args)
    assert torch.equal(again, expected)  # same head, same AdamW state, same positive sampling
    assert [r["step"] for r in resumed.records.metrics] == [1, 2]

    (ckpt / "global_step_2" / HEAD_CHECKPOINT).unlink()
    with pytest.raises(FileNotFoundError, match=HEAD_CHECKPOINT):
        ClipoTrainerSync(cfg)._load_checkpoint()


# ------------------------------------------------------------------------------- real TransferQueue
@pytest.fixture(scope="module")
def transfer_queue():
    """Ray (2 CPUs) + TransferQueue's in-memory storage, as verl's task runner starts them."""
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf

    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        tq.init(
            OmegaConf.create(
                {"backend": {"SimpleStorage": {"num_data_storage_units": 1, "total_storage_size": 1000}}}
            )
        )
    except Exception as e:  # a sandbox without local sockets/processes
        ray.shutdown()
        pytest.skip(f"Ray/TransferQueue cannot start here: {type(e).__name__}: {e}")
    yield tq
    tq.close()
    ray.shutdown()


class FakeActor:
    """Stands in for the actor worker group: what the patched worker writes to TransferQueue."""

    def __init__(self, tq, rows):
        self.tq, self.rows, self.seen = tq, {r["key"]: r for r in rows}, []

    def compute_log_prob(self, batch):
        from verl.utils import tensordict_utils as tu

        self.seen.append(dict(batch.extra_info))
        rows = [self.rows[k] for k in batch.keys]
        nested = lambda xs: torch.nested.as_nested_tensor(xs, layout=torch.jagged)  # noqa: E731
        fields = {
            name: nested([torch.full((r["prompt_len"] + len(r["rm_scores"]),), -0.5) for r in rows])
            for name in ("log_probs", "entropy")
        }
        if batch.extra_info.get(HIDDEN_FLAG):
            fields[HIDDEN_FIELD] = nested([r["hidden"] for r in rows])
        self.tq.kv_batch_put(
            keys=batch.keys, partition_id=batch.partition_id, fields=tu.get_tensordict(fields)
        )
        return batch


def test_hooks_on_transfer_queue_add_the_reward_before_grpo(transfer_queue, tmp_path):
    from transfer_queue import KVBatchMeta
    from verl.utils import tensordict_utils as tu

    tq = transfer_queue
    rows = _synthetic_batch()
    keys = [r["key"] for r in rows]
    nested = lambda name: torch.nested.as_nested_tensor([r[name] for r in rows], layout=torch.jagged)  # noqa: E731
    tq.kv_batch_put(
        keys=keys,
        partition_id="train",
        tags=[{} for _ in rows],
        fields=tu.get_tensordict(
            {
                "rm_scores": nested("rm_scores"),
                "response_mask": nested("response_mask"),
                "uid": np.array([r["uid"] for r in rows], dtype=object),
            }
        ),
    )
    cfg = _config(tmp_path, ["actor_rollout_ref.rollout.calculate_log_probs=false", "clipo.hidden_shift=1"])
    trainer = ClipoTrainerSync(cfg)
    trainer.actor_rollout_wg = FakeActor(tq, rows)
    trainer.global_steps, trainer.total_training_steps = 1, 3
    batch = KVBatchMeta(keys=keys, tags=[{} for _ in rows], partition_id="train")

    metrics: dict = {}
    batch = trainer._compute_old_log_prob(batch, metrics)
    assert (
        trainer.actor_rollout_wg.seen[0][HIDDEN_FLAG] is True
        and trainer.actor_rollout_wg.seen[0][HIDDEN_SHIFT] == 1
    )
    assert HIDDEN_FLAG not in batch.extra_info  # the reference and actor passes must not pool
    trainer._compute_advantage(batch, metrics)

    out = tq.kv_batch_get(
        keys=keys, partition_id="train", select_fields=["rm_scores", "advantages"]
    ).to_padded_tensor()
    bonus = (out["rm_scores"].sum(-1) - torch.stack([r["rm_scores"].sum() for r in rows])).view(
        len(N_CORRECT), G
    )
    assert torch.all(bonus[[0, 1, 3]] == 0) and torch.all(bonus[2, :2] < 0) and torch.all(bonus[4, :3] < 0)
    adv = out["advantages"][:, 0].view(len(N_CORRECT), G)
    assert torch.all(adv[[0, 3]] == 0)  # verl's GRPO: no variance, no advantage
    assert adv[1, 0] > 0 and torch.allclose(
        adv[1, 1:], adv[1, 1]
    )  # one correct: outcome only, wrong ones tie
    assert adv[2, 0] != adv[2, 1] and adv[2, 0] > 0 and adv[2, 1] > 0  # correct rollouts now differ
    assert torch.all(adv[4, :3] > adv[4, 3])  # still above the wrong one
    for key in ("clipo/loss", "clipo/cos_pos", "clipo/cos_neg", "clipo/cos_cross", "hidden/cos_pos"):
        assert key in metrics
    assert trainer._clipo_metrics["reward/outcome"] == pytest.approx(10 / 20)
    emb = __import__("pandas").read_parquet(tmp_path / "embeddings.parquet")
    assert set(emb["phase"]) == {"start"} and len(emb) == len(rows) and len(emb["embedding"][0]) == 512


def test_without_clipo_hidden_states_are_pooled_only_for_the_embedding_dumps(tmp_path):
    trainer = ClipoTrainerSync(_config(tmp_path, clipo="none"))
    trainer.total_training_steps = 5
    asked = []
    for step in range(1, 6):
        trainer.global_steps = step
        asked.append(trainer._wants_hidden())
    assert asked == [True, False, False, False, True]
    unpadded = ClipoTrainerSync(
        _config(tmp_path, ["actor_rollout_ref.model.use_remove_padding=false"], "none")
    )
    unpadded.global_steps, unpadded.total_training_steps = 1, 5
    assert not unpadded._wants_hidden()  # the hook cannot pool there: no dump rather than a crash
