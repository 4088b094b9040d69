"""Resuming a mini RL run: what a checkpoint holds, and when it may be continued.

A checkpoint is continued only when it was made with the same comparable settings
(``Config.comparable``) and a step not beyond ``steps``; otherwise the run stops with one error saying
what differs.

Checkpoints hold only tensors and plain Python values, so they load with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from clipo.contrastive import ClipoHeadTrainer
from clipo.errors import ConfigError
from clipo.mini import checkpoint
from clipo.mini.config import Config
from clipo.mini.rollout import PromptSampler

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainingState:
    """Everything the next step depends on besides the settings and inputs: what a checkpoint holds."""

    policy: torch.nn.Module
    optimizer: torch.optim.Optimizer
    head: ClipoHeadTrainer | None
    sampler: PromptSampler
    step: int = 0
    """The last completed step."""
    metric_rows: list[dict] = field(default_factory=list)
    embedding_rows: list[dict] = field(default_factory=list)

    def to_checkpoint(self, cfg: Config) -> dict:
        """The checkpoint of the current step, in tensors and plain values only (numpy arrays and random
        states are converted), so it loads with ``weights_only=True``."""
        sampler = self.sampler.state_dict()
        return {
            "step": self.step,
            "config": cfg.comparable(),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "head": self.head.state_dict() if self.head else None,
            "sampler": {**sampler, "order": torch.from_numpy(sampler["order"])},
            "rng": checkpoint.capture_rng(),
            "metrics": self.metric_rows,
            "embeddings": [{**r, "embedding": torch.from_numpy(r["embedding"])} for r in self.embedding_rows],
        }

    def restore(self, saved: dict, cfg: Config) -> None:
        """Continue from ``saved``; an extended run (more steps than the checkpoint's run had) drops the
        probe dump of the old end, which moves to the new last step."""
        self.policy.load_state_dict(saved["policy"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.head is not None:
            self.head.load_state_dict(saved["head"])
        self.sampler.load_state_dict({**saved["sampler"], "order": saved["sampler"]["order"].numpy()})
        checkpoint.restore_rng(saved["rng"])
        self.step = saved["step"]
        self.metric_rows = saved["metrics"]
        self.embedding_rows = [{**r, "embedding": r["embedding"].numpy()} for r in saved["embeddings"]]
        if self.step < cfg.steps:
            self.embedding_rows = [r for r in self.embedding_rows if r["phase"] == "start"]


def validation_due(step: int, cfg: Config) -> bool:
    """Validation runs every ``test_freq`` steps and after the last one (and before the first, step 0)."""
    return cfg.test_freq > 0 and (step % cfg.test_freq == 0 or step == cfg.steps)


def resume(state: TrainingState, cfg: Config) -> None:
    """Load the newest checkpoint of ``cfg.out`` into ``state``; one that another configuration wrote,
    or one beyond ``steps``, is an error."""
    folder = Path(cfg.out) / CHECKPOINT_DIR
    path = checkpoint.latest(folder)
    if path is None:
        return
    saved = checkpoint.load(path)
    if differences := cfg.differences(saved["config"]):
        raise ConfigError(
            f"{path} was written by a run with a different configuration "
            f"({'; '.join(differences)}); use another --out or delete {folder}"
        )
    if saved["step"] > cfg.steps:
        raise ConfigError(f"{path} is at step {saved['step']}, beyond steps={cfg.steps}")
    state.restore(saved, cfg)
