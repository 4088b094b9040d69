"""verl v1 trainer mode ``clipo_sync``: verl's synchronous PPO trainer plus CLIPO's contrastive reward.

Nothing of verl's loop is copied. The class overrides hooks only:

- ``_compute_old_log_prob`` asks the actor for mean-pooled last hidden states of the response tokens
  (``clipo.verl.worker_patch``) during the forward it runs anyway, then calls verl's method;
- ``_compute_advantage`` reads outcome rewards, group ids and pooled states from TransferQueue, runs
  one step of the contrastive head (``clipo.contrastive.ClipoHeadTrainer``, the same code as the mini
  track), adds max(−λ·L, floor) at the last response token of ``rm_scores`` and calls verl's method,
  so GRPO's group normalisation (and every method's loss) is unchanged;
- ``_save_checkpoint`` / ``_load_checkpoint`` keep the head and its AdamW next to verl's checkpoint;
- ``_compute_metrics`` appends the step's row to ``metrics.jsonl`` in the mini trainer's format.

The head lives in this (trainer) process, as the paper's "driver" did; head warm-up is verl's
``trainer.critic_warmup`` (actor updates start at that step), the fixed-head ablation skips the
head's optimiser step. With ``clipo.enable=false`` the trainer is verl's sync trainer plus logging.

Deviations from the released implementation: hidden states come from the actor's old-log-prob
forward instead of SGLang's decode pass (identical weights; ``clipo.hidden_shift=1`` reproduces the
decode-time alignment); the contrastive loss is computed per group (``clipo.contrastive``).
DAPO's group filter runs on the outcome reward before this hook, so it is unaffected by CLIPO.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import transfer_queue as tq
from omegaconf import DictConfig
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.workers.utils.padding import response_to_nested

from clipo import records
from clipo.contrastive import ClipoHeadTrainer, add_at_last_token
from clipo.errors import ConfigError
from clipo.methods import Clipo
from clipo.records import atomic_write
from clipo.verl import HIDDEN_FIELD, HIDDEN_FLAG, HIDDEN_SHIFT

TRAINER_MODE = "clipo_sync"
WORKER_PATCH = "clipo.verl.worker_patch"
HEAD_CHECKPOINT = "clipo_head.pt"

# verl metric → key of the mini trainer's metrics.jsonl (common format of both backends)
METRIC_KEYS = {
    "actor/pg_loss": "loss/policy",
    "actor/kl_loss": "loss/kl",
    "actor/pg_clipfrac": "actor/clip_frac",
    "actor/pg_clipfrac_lower": "actor/clip_frac_lower",
    "actor/ppo_kl": "actor/ppo_kl",
    "actor/grad_norm": "actor/grad_norm",
    "critic/rewards/mean": "reward/total",
    "critic/advantages/max": "advantage/max",
    "critic/advantages/min": "advantage/min",
    "response_length/mean": "response/length",
    "response_length/clip_ratio": "response/truncated_frac",
    "timing_s/gen": "time/rollout",
    "timing_s/reward": "time/scoring",
    "timing_s/old_log_prob": "time/forward",
    "timing_s/update_actor": "time/update",
    "timing_s/step": "time/step",
}


# =============================================================================================
# Configuration
# =============================================================================================
@dataclass(frozen=True)
class ClipoSettings:
    """The ``clipo:`` section: head/reward settings (None = CLIPO off) plus plumbing."""

    clipo: Clipo | None
    seed: int = 0
    hidden_shift: int = 0
    out_dir: str | None = None


def clipo_settings(section: DictConfig | dict) -> ClipoSettings:
    """Parse ``config.clipo``; unset (null) values take clipo.methods.Clipo's defaults."""
    values = dict(section)
    enable = bool(values.pop("enable", False))
    seed, shift, out_dir = values.pop("seed", 0), values.pop("hidden_shift", 0), values.pop("out_dir", None)
    known = {f.name for f in fields(Clipo)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown clipo.* key(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    if shift not in (0, 1):
        raise ConfigError(f"clipo.hidden_shift={shift!r}; valid: 0, 1")
    cfg = Clipo(**{k: v for k, v in values.items() if v is not None}) if enable else None
    return ClipoSettings(cfg, int(seed), int(shift), out_dir)


def pooling_problems(config: DictConfig) -> list[str]:
    """verl settings under which the hidden-state hook cannot pool (empty when it can)."""
    arr = config.actor_rollout_ref
    problems = []
    if not arr.model.get("use_remove_padding", False):
        problems.append("actor_rollout_ref.model.use_remove_padding must be true")
    if arr.actor.get("ulysses_sequence_parallel_size", 1) != 1:
        problems.append("actor_rollout_ref.actor.ulysses_sequence_parallel_size must be 1")
    if arr.actor.strategy not in ("fsdp", "fsdp2"):
        problems.append(
            f"actor_rollout_ref.actor.strategy={arr.actor.strategy!r}: the hook patches the FSDP engine"
        )
    libs = arr.model.get("external_lib")
    if WORKER_PATCH not in ([libs] if isinstance(libs, str) else list(libs or [])):
        problems.append(f"actor_rollout_ref.model.external_lib must load {WORKER_PATCH}")
    if (config.algorithm.get("rollout_correction") or {}).get("bypass_mode", False):
        problems.append(
            "algorithm.rollout_correction.bypass_mode must be false (it skips the old-log-prob forward)"
        )
    if arr.rollout.get("multi_turn", {}).get("enable", False):
        problems.append("actor_rollout_ref.rollout.multi_turn.enable must be false (one output per rollout)")
    return problems


def check_config(config: DictConfig) -> ClipoSettings:
    """Reject verl settings the CLIPO trainer cannot honour, before any GPU work starts."""
    settings = clipo_settings(config.clipo)
    if not config.trainer.get("use_v1", False):
        raise ConfigError("trainer.use_v1=false: CLIPO runs on verl's v1 trainer only")
    if config.trainer.v1.trainer_mode != TRAINER_MODE:
        raise ConfigError(
            f"trainer.v1.trainer_mode={config.trainer.v1.trainer_mode!r}; CLIPO needs {TRAINER_MODE!r}"
        )
    problems = pooling_problems(config) if settings.clipo is not None else []
    if problems:
        raise ConfigError("CLIPO on verl: " + "; ".join(problems))
    return settings


# =============================================================================================
# The algorithm on plain tensors (tested without TransferQueue)
# =============================================================================================
def group_numbers(uids) -> torch.Tensor:
    """Integer group id per rollout from verl's prompt uids (strings), in order of first appearance."""
    order: dict = {}
    return torch.tensor([order.setdefault(u, len(order)) for u in uids], dtype=torch.long)


def add_contrastive_reward(
    head: ClipoHeadTrainer,
    rm_scores: torch.Tensor,
    response_mask: torch.Tensor,
    pooled_hidden: torch.Tensor,
    group_ids: torch.Tensor,
    real: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One head step; returns (rm_scores with r^CL added at the last response token, r^CL [B], metrics).

    ``rm_scores``/``response_mask`` are right-padded [B, R]; a rollout is correct when its outcome score
    (the sum of its token rewards, 1 or 0 from ``clipo.rewards``) exceeds 0.5. Rows with ``real`` False
    (verl's batch padding) take no part and get no reward.
    """
    mask = response_mask.to(rm_scores.dtype)
    outcome = (rm_scores * mask).sum(-1)
    correct = outcome > 0.5
    reward = torch.zeros(len(outcome), dtype=rm_scores.dtype)
    metrics: dict = {}
    if bool(real.any()):
        r_real, metrics = head.step(pooled_hidden[real], correct[real], group_ids[real])
        reward[real] = r_real.to(rm_scores.dtype)
        metrics["reward/outcome"] = float(outcome[real].mean())
    return add_at_last_token(rm_scores, response_mask, reward), reward, metrics


def metrics_row(step: int, verl_metrics: dict, clipo_metrics: dict, policy_frozen: bool) -> dict:
    """One metrics.jsonl row: verl's metrics renamed to the mini trainer's keys, NaN → null."""
    row: dict = {"step": step}
    if "critic/score/mean" in verl_metrics and "reward/outcome" not in clipo_metrics:
        row["reward/outcome"] = verl_metrics["critic/score/mean"]
    for source, key in METRIC_KEYS.items():
        if source in verl_metrics:
            row[key] = verl_metrics[source]
    row.update(clipo_metrics)
    row["train/policy_frozen"] = policy_frozen
    return records.json_row(row)


# =============================================================================================
# Run-folder records (same files and columns as clipo.mini.train)
# =============================================================================================
class RunRecords:
    """metrics.jsonl and embeddings.parquet of one run (``clipo.records``), rewritten after every change."""

    def __init__(self, out_dir: str | os.PathLike):
        self.out = Path(out_dir)
        self.metrics: list[dict] = []
        self.embeddings: list[dict] = []
        if (self.out / records.METRICS_FILE).exists():
            self.metrics = records.read_metrics(self.out / records.METRICS_FILE)
        if (self.out / records.EMBEDDINGS_FILE).exists():
            self.embeddings = records.read_embeddings(self.out / records.EMBEDDINGS_FILE).to_dict("records")

    def truncate(self, step: int) -> None:
        """Forget rows logged after ``step`` (a resumed run repeats those steps)."""
        self.metrics = [r for r in self.metrics if r["step"] <= step]
        self.embeddings = [r for r in self.embeddings if r["step"] <= step]
        self.write_metrics()
        self.write_embeddings()

    def add_metrics(self, row: dict) -> None:
        self.metrics = [r for r in self.metrics if r["step"] != row["step"]] + [row]
        self.write_metrics()

    def add_embeddings(
        self, step: int, phase: str, space: str, emb: torch.Tensor, group_ids, correct
    ) -> None:
        self.embeddings = [r for r in self.embeddings if r["phase"] != phase]
        self.embeddings += records.embedding_rows(step, phase, space, emb, group_ids, correct)
        self.write_embeddings()

    def write_metrics(self) -> None:
        records.write_metrics(self.out / records.METRICS_FILE, self.metrics)

    def write_embeddings(self) -> None:
        records.write_embeddings(self.out / records.EMBEDDINGS_FILE, self.embeddings)


def canonical_order(prompt_index: list, responses: list[list[int]]) -> list[int]:
    """Rows sorted by the prompt's dataset index, then by response tokens: the same rollouts give the
    same order whatever order they finished in (the rollouts of one prompt are exchangeable)."""
    return sorted(range(len(responses)), key=lambda i: (str(prompt_index[i]), responses[i]))


def load_head_state(path: Path) -> dict:
    """The head checkpoint: tensors, numbers and strings only (a checkpoint folder is not trusted to unpickle)."""
    return torch.load(path, map_location="cpu", weights_only=True)


# =============================================================================================
# The trainer mode
# =============================================================================================
@register_trainer(TRAINER_MODE)
class ClipoTrainerSync(PPOTrainerSync):
    """verl's sync trainer with CLIPO's contrastive reward (see the module docstring)."""

    def __init__(self, config: DictConfig):
        self.settings = check_config(config)
        super().__init__(config)
        self.head: ClipoHeadTrainer | None = None
        self._head_state: dict | None = None
        self._clipo_metrics: dict = {}
        self.records = RunRecords(self.settings.out_dir) if self.settings.out_dir else None
        # without CLIPO, pooled states are only dumped (first and last step) where the hook can pool
        self._dump_hidden = self.records is not None and not pooling_problems(config)

    # verl's base class switches to its async replay buffer, refill and checkpoint logic for every
    # trainer mode other than "sync"; CLIPO's mode is the sync trainer, so it reports "sync" there.
    @property
    def trainer_mode(self) -> str:
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, configured: str) -> None:
        if configured != TRAINER_MODE:
            raise ConfigError(
                f"trainer.v1.trainer_mode={configured!r} selected the CLIPO trainer; "
                f"expected {TRAINER_MODE!r}"
            )

    # ---------------------------------------------------------------------------------- hooks
    def _balance_batch(self, batch, metrics, *args, **kwargs):
        """Rollouts reach TransferQueue in the order they finish; put them in a canonical order first
        (``canonical_order``), so the mini-batches, the head's step and a resumed run do not depend on
        timing. verl's balancing then reorders as it would."""
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["index", "responses"])
        index = data["index"]  # a tensor, or a list of the dataset's own index values
        index = index.tolist() if isinstance(index, torch.Tensor) else list(index)
        batch.reorder(canonical_order(index, [r.tolist() for r in data["responses"].unbind()]))
        return super()._balance_batch(batch, metrics, *args, **kwargs)

    def _wants_hidden(self) -> bool:
        """Pooled states are needed every step with CLIPO, and for the embedding dumps without it."""
        return self.settings.clipo is not None or (
            self._dump_hidden and self.global_steps in (1, self.total_training_steps)
        )

    def _compute_old_log_prob(self, batch, metrics: dict):
        if not self._wants_hidden():
            return super()._compute_old_log_prob(batch, metrics)
        batch.extra_info.update({HIDDEN_FLAG: True, HIDDEN_SHIFT: self.settings.hidden_shift})
        try:
            out = super()._compute_old_log_prob(batch, metrics)
        finally:
            # the same batch object goes on to the reference and actor passes, which must not pool
            batch.extra_info.pop(HIDDEN_FLAG, None)
        out.extra_info.pop(HIDDEN_FLAG, None)
        return out

    def _compute_advantage(self, batch, metrics: dict):
        self._clipo_metrics = {}
        if self._wants_hidden():
            start = time.perf_counter()
            self._clipo_step(batch)
            self._clipo_metrics["time/clipo"] = time.perf_counter() - start
            metrics.update(
                {
                    k: v
                    for k, v in self._clipo_metrics.items()
                    if k.startswith(("clipo/", "hidden/", "reward/"))
                }
            )
        return super()._compute_advantage(batch, metrics)

    def _clipo_step(self, batch) -> None:
        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["uid", "rm_scores", "response_mask", HIDDEN_FIELD],
        )
        nested_mask = data["response_mask"]
        uids = data.pop("uid").tolist()
        padded = data.to_padded_tensor()
        rm_scores, mask = padded["rm_scores"].float(), padded["response_mask"]
        pooled = padded[HIDDEN_FIELD].float()
        groups = group_numbers(uids)
        real = torch.tensor([not tag.get("is_padding", False) for tag in batch.tags], dtype=torch.bool)
        correct = (rm_scores * mask).sum(-1) > 0.5
        step, last_step = self.global_steps, self.total_training_steps

        if self.settings.clipo is None:  # embedding dumps only: pooled hidden states, as the mini trainer
            for phase in ("start",) * (step == 1) + ("end",) * (step == last_step):
                self.records.add_embeddings(step, phase, "hidden", pooled[real], groups[real], correct[real])
            return

        head = self._get_head(pooled.shape[1])
        if self.records is not None and step == 1:
            self.records.add_embeddings(
                step, "start", "head", head.embed(pooled[real]), groups[real], correct[real]
            )
        total, _, head_metrics = add_contrastive_reward(head, rm_scores, mask, pooled, groups, real)
        if self.records is not None and step == last_step:
            self.records.add_embeddings(
                step, "end", "head", head.embed(pooled[real]), groups[real], correct[real]
            )
        self._clipo_metrics.update(head_metrics)
        tq.kv_batch_put(
            keys=batch.keys,
            partition_id=batch.partition_id,
            fields=TensorDict({"rm_scores": response_to_nested(total, nested_mask)}, batch_size=len(batch)),
        )

    def _get_head(self, hidden_size: int) -> ClipoHeadTrainer:
        """The head is built on first use: its input size is the policy's hidden size."""
        if self.head is None:
            self.head = ClipoHeadTrainer(hidden_size, self.settings.clipo, seed=self.settings.seed)
            if self._head_state is not None:
                self.head.load_state_dict(self._head_state)
                self._head_state = None
        return self.head

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        if self.records is not None:
            frozen = self.config.trainer.critic_warmup > global_steps
            self.records.add_metrics(metrics_row(global_steps, metrics, self._clipo_metrics, frozen))

    # ---------------------------------------------------------------------------------- checkpoints
    def _step_folder(self, step: int) -> Path:
        if self.config.trainer.resume_mode == "resume_path" and step == self._resumed_step():
            return Path(self.config.trainer.resume_from_path)
        return Path(self.config.trainer.default_local_dir) / f"global_step_{step}"

    def _resumed_step(self) -> int | None:
        path = self.config.trainer.get("resume_from_path")
        return int(str(path).split("global_step_")[-1]) if path and "global_step_" in str(path) else None

    def _save_checkpoint(self):
        # written before verl's tracker file, so a checkpoint verl can resume from always has the head
        state = self.head.state_dict() if self.head is not None else self._head_state
        if state is not None:
            folder = Path(self.config.trainer.default_local_dir) / f"global_step_{self.global_steps}"
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / HEAD_CHECKPOINT, lambda tmp: torch.save(state, tmp))
        super()._save_checkpoint()

    def _load_checkpoint(self):
        super()._load_checkpoint()
        if self.global_steps == 0:
            return
        if self.records is not None:
            self.records.truncate(self.global_steps)
            if not any(r["step"] == self.global_steps for r in self.records.metrics):
                # verl saves a step's checkpoint before it validates and logs that step: a kill in between
                # resumes exactly (weights, optimiser, head) but that step's metrics row was never written
                print(f"clipo: resuming after step {self.global_steps}, whose metrics row was not written before "
                      f"the interruption; metrics.jsonl has no row for it", file=sys.stderr)
        if self.settings.clipo is None:
            return
        path = self._step_folder(self.global_steps) / HEAD_CHECKPOINT
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: resuming a CLIPO run needs the contrastive head saved with the checkpoint"
            )
        self._head_state = load_head_state(path)
