"""Settings of one mini RL run: every default comes from ``clipo.methods``; the CLI only overrides."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

from clipo.data.registry import get_dataset, validation_file
from clipo.methods import Clipo, Method
from clipo.mini.loggers import parse_loggers
from clipo.runs import TrainOptions, TrainRun, resolve


@dataclass(frozen=True)
class Config:
    """Fully resolved settings of one mini RL run (written to run.json and into every checkpoint)."""

    method: Method
    """Policy-optimisation method (row of clipo.methods.METHODS): loss, aggregation, clip ratios, KL."""
    clipo_variant: str
    """CLIPO variant name: none, infonce, supcon, softnn, infonce-fixed."""
    clipo: Clipo | None
    """Contrastive head and reward settings; None when CLIPO is off."""
    seed: int
    """Seed of every random stream (policy sampling, prompt order, head init, positive sampling)."""
    model_path: str
    """HF folder of the initial policy (the SFT base model); also the frozen KL reference."""
    train_file: str
    """Training prompts in the verl parquet schema."""
    val_file: str
    """Validation prompts (the track's first benchmark); only the first ``val_size`` rows are used."""
    val_size: int
    """Validation prompts per validation run."""
    test_freq: int
    """Steps between validation runs (-1: none); validation also runs before the first step."""
    out: str
    """Run folder: metrics.jsonl, embeddings.parquet, run.json, checkpoints/, final/, summary.json."""
    steps: int
    """RL steps, head warm-up steps included."""
    train_batch_size: int
    """Prompts per step."""
    group_size: int
    """G: rollouts per prompt."""
    ppo_mini_batch_size: int
    """Prompts per optimiser update (train_batch_size / this = updates per step)."""
    max_prompt_length: int
    """Longest prompt in tokens."""
    filter_overlong_prompts: bool
    """Drop longer prompts up front (verl's data.filter_overlong_prompts); otherwise they are an error."""
    max_new_tokens: int
    """Response length limit in tokens."""
    temperature: float
    """Rollout sampling temperature."""
    lr: float
    """Policy learning rate (AdamW)."""
    output_gain_lr: float
    """Learning rate of the final norm's gain, the policy's output temperature (mini track, see clipo.methods)."""
    head_warmup_steps: int
    """First steps that train only the contrastive head; the policy stays frozen."""
    checkpoint_every: int
    """Steps between checkpoints (the last step is always checkpointed)."""
    max_gen_rounds: int
    """Dynamic sampling: generation rounds per step at most."""
    threads: int | None
    """torch CPU threads (None: torch's default)."""
    logger: tuple[str, ...]
    """Where steps are shown besides metrics.jsonl: console (progress), tensorboard (clipo.mini.loggers)."""

    @property
    def minibatches_per_step(self) -> int:
        return self.train_batch_size // self.ppo_mini_batch_size

    @property
    def rollouts_per_step(self) -> int:
        return self.train_batch_size * self.group_size

    def comparable(self) -> dict:
        """The settings a checkpoint must share with this run to be resumed.

        Left out are those that do not change what earlier steps computed: the thread count, the
        checkpoint interval, the loggers, the validation settings (validation draws from its own random
        stream) and the number of steps (so a finished run can be extended).
        """
        d = asdict(self)
        for name in ("threads", "checkpoint_every", "logger", "steps", "val_file", "val_size", "test_freq"):
            d.pop(name)
        return d

    def differences(self, saved: dict) -> list[str]:
        """``key: saved → now`` for each comparable setting a checkpoint's config differs in; paths
        compare resolved, so ``dir/./ref`` or a relative spelling of the same folder is no difference."""
        now = self.comparable()
        found = []
        for key in sorted(set(now) | set(saved)):
            a, b = saved.get(key), now.get(key)
            if key in _PATH_KEYS and a is not None and b is not None:
                same = Path(a).resolve() == Path(b).resolve()
            else:
                same = a == b
            if not same:
                found.append(f"{key}: {a!r} → {b!r}")
        return found


_PATH_KEYS = ("model_path", "train_file", "out")


def resolve_config(args: argparse.Namespace) -> Config:
    """The mini trainer's settings of ``clipo train --backend mini`` (``clipo.runs.resolve`` checks them)."""
    return config_of(resolve(TrainOptions.from_args(args)))


def config_of(run: TrainRun) -> Config:
    """The resolved run plus the mini track's fixed settings (prompt length, rollout temperature)."""
    track = run.track
    return Config(
        method=run.method,
        clipo_variant=run.spec.clipo,
        clipo=run.clipo,
        seed=run.spec.seed,
        model_path=run.model_path,
        train_file=str(Path(run.options.data_dir) / get_dataset(track.train_files[0]).path),
        val_file=str(Path(run.options.data_dir) / validation_file(track.name).path),
        val_size=track.val_size,
        test_freq=run.test_freq,
        out=str(run.out),
        steps=run.steps,
        train_batch_size=run.train_batch_size,
        group_size=run.spec.group_size,
        ppo_mini_batch_size=run.ppo_mini_batch_size,
        max_prompt_length=track.max_prompt_length,
        filter_overlong_prompts=track.filter_overlong_prompts,
        max_new_tokens=run.max_new_tokens,
        temperature=track.rollout_temperature,
        lr=run.lr,
        output_gain_lr=run.output_gain_lr,
        head_warmup_steps=run.head_warmup_steps,
        checkpoint_every=run.checkpoint_every,
        max_gen_rounds=track.max_gen_rounds,
        threads=run.threads,
        logger=parse_loggers(run.options.logger),
    )
