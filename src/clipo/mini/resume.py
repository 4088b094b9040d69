"""Resuming a mini RL run: what a checkpoint holds, and when it may be continued.

A checkpoint is continued only when it was made by the same run: the same comparable settings
(``Config.comparable``), the same inputs by content (``input_fingerprint``: the base model's weights,
config and tokenizer files and the data files, so a rebuilt base model or dataset at the same path is
noticed) and a step not beyond ``steps``. Otherwise the run stops with one error saying what differs, or,
with ``--restart-if-changed`` (the workflow's choice: a changed input or option is what it reruns for),
moves the old run folder's contents to ``<out>/discarded/<n>/`` and starts afresh (so does a checkpoint
that cannot be read: damaged, or written in another format).

Checkpoints hold only tensors and plain Python values, so they load with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from clipo.contrastive import ClipoHeadTrainer
from clipo.errors import ConfigError, SchemaError
from clipo.lock import LOCK_FILE
from clipo.mini import checkpoint
from clipo.mini.config import Config
from clipo.mini.rollout import PromptSampler

CHECKPOINT_DIR = "checkpoints"
def is_validation_key(key: str) -> bool:
    """Whether a metric is one a validation adds to its step's row (``val/*`` and its time)."""
    return key.startswith("val/") or key == "time/validation"
DISCARDED_DIR = "discarded"
"""Where ``--restart-if-changed`` keeps the contents of a run folder it does not continue."""

MODEL_FILE_PATTERNS = ("*.safetensors", "*.bin", "config.json", "generation_config.json", "tokenizer*",
                       "special_tokens_map.json", "added_tokens.json", "vocab*", "merges.txt", "chat_template*")
"""The files of an HF folder that make the model (``clipo sft``'s training_info.json, with its wall
times, is left out: a base model rebuilt to the same weights is the same base model)."""


def input_fingerprint(cfg: Config) -> dict[str, str]:
    """SHA-256 of what the run is trained from: the base model's files and the data files (the
    validation file only when the run validates)."""
    model = Path(cfg.model_path)
    files = sorted({p for pattern in MODEL_FILE_PATTERNS for p in model.glob(pattern) if p.is_file()})
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(_sha256(path).encode())
    found = {"base model": digest.hexdigest(), "training data": _sha256(Path(cfg.train_file))}
    if cfg.test_freq > 0:
        found["validation data"] = _sha256(Path(cfg.val_file))
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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

    def to_checkpoint(self, cfg: Config, inputs: dict[str, str]) -> dict:
        """The checkpoint of the current step, in tensors and plain values only (numpy arrays and random
        states are converted), so it loads with ``weights_only=True``."""
        sampler = self.sampler.state_dict()
        return {
            "step": self.step,
            "config": cfg.comparable(),
            "inputs": inputs,
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "head": self.head.state_dict() if self.head else None,
            "sampler": {**sampler, "order": torch.from_numpy(sampler["order"])},
            "rng": checkpoint.capture_rng(),
            "metrics": self.metric_rows,
            "embeddings": [{**r, "embedding": torch.from_numpy(r["embedding"])} for r in self.embedding_rows],
        }

    def restore(self, saved: dict, cfg: Config) -> None:
        """Continue from ``saved``. An extended run (more steps than the checkpoint's run had) drops what
        only the old last step had: the probe dump of the end, and a validation that ``test_freq`` would
        not have run there."""
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
            last = self.metric_rows[-1] if self.metric_rows else {}
            if last.get("step") == self.step and not validation_due(self.step, cfg):
                self.metric_rows[-1] = {k: v for k, v in last.items() if not is_validation_key(k)}


def validation_due(step: int, cfg: Config) -> bool:
    """Validation runs every ``test_freq`` steps and after the last one (and before the first, step 0)."""
    return cfg.test_freq > 0 and (step % cfg.test_freq == 0 or step == cfg.steps)


def resume(state: TrainingState, cfg: Config, inputs: dict[str, str], restart_if_changed: bool) -> None:
    """Load the newest checkpoint of ``cfg.out`` into ``state`` if it belongs to this run; else refuse, or
    with ``restart_if_changed`` move the old run aside and leave ``state`` at step 0."""
    folder = Path(cfg.out) / CHECKPOINT_DIR
    path = checkpoint.latest(folder)
    if path is None:
        return
    try:
        saved = checkpoint.load(path)
    except SchemaError as e:  # damaged, or not ours (an older format included): nothing to continue
        if not restart_if_changed:
            raise
        why = str(e)
    else:
        reasons = stale_reasons(saved, cfg, inputs)
        if not reasons:
            state.restore(saved, cfg)
            return
        why = f"{path} is not a checkpoint of this run ({'; '.join(reasons)})"
    if not restart_if_changed:
        raise ConfigError(f"{why}; use another --out, delete {folder}, or pass --restart-if-changed to "
                          "move the old run aside and start afresh")
    moved_to, names = discard_run(Path(cfg.out))
    print(f"clipo train: {why}: moved the old run ({', '.join(names)}) to {moved_to} and starting afresh",
          file=sys.stderr)


def stale_reasons(saved: dict, cfg: Config, inputs: dict[str, str]) -> list[str]:
    """Why a checkpoint cannot be continued by this run (empty when it can)."""
    reasons = [f"setting {d}" for d in cfg.differences(saved["config"])]
    saved_inputs = saved.get("inputs")
    if saved_inputs is None:
        reasons.append("it records no fingerprint of its base model and data")
    else:
        paths = {"base model": cfg.model_path, "training data": cfg.train_file, "validation data": cfg.val_file}
        reasons += [f"{name} {paths[name]} changed in content since it was written"
                    for name in inputs if name in saved_inputs and saved_inputs[name] != inputs[name]]
    if saved["step"] > cfg.steps:
        reasons.append(f"it is at step {saved['step']}, beyond steps={cfg.steps}")
    return reasons


def discard_run(out: Path) -> tuple[Path, list[str]]:
    """Move everything in the run folder but its lock and earlier discards to ``out/discarded/<n>/``."""
    names = sorted(p.name for p in out.iterdir() if p.name not in (LOCK_FILE, DISCARDED_DIR))
    root = out / DISCARDED_DIR
    n = 1 + max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0) if root.is_dir() else 1
    target = root / str(n)
    target.mkdir(parents=True)
    for name in names:
        shutil.move(str(out / name), str(target / name))
    return target, [name + "/" if (target / name).is_dir() else name for name in names]
