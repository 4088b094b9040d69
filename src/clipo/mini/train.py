"""CPU RL trainer of the mini track: GRPO, GSPO, DAPO or GMPO, each with or without CLIPO.

One loop, readable top to bottom (CleanRL style). Per step:

1. rollout   — sample ``train_batch_size`` prompts × G responses (KV-cache generation, temperature 1.0);
2. scoring   — ``clipo.rewards.compute_score`` gives the outcome reward (1 correct / 0 wrong);
   DAPO's dynamic sampling then drops groups whose rewards all agree and refills the batch with
   freshly sampled prompts (at most ``max_gen_rounds`` generation rounds per step);
3. one forward of the current policy on prompt + response yields the old log-probs AND the final-norm
   hidden states, mean-pooled over response tokens (eq. 9) — CLIPO costs no extra forward; the first
   minibatch's part runs with gradients and serves its update too (before the first update π = π_old);
4. CLIPO     — one step of the contrastive head; its reward max(−λ·loss, floor) (eq. 12) is added to
   the outcome reward at the last response token;
5. advantages with verl's ``compute_grpo_outcome_advantage`` on the combined reward;
6. minibatch updates with verl's policy loss of the method (``get_policy_loss_fn``), its loss
   aggregation and clip ratios, plus the low-variance KL loss to a frozen reference for GRPO;
7. logging (``metrics.jsonl``), checkpoint; every ``test_freq`` steps (and before the first) the reward on
   fixed validation prompts; the probe set's embeddings before the first and after the last step.

Every hyperparameter comes from ``clipo.methods`` (the method table and the "mini" track); the
command line only overrides. Lines that are the paper's algorithm sit under ``# --- algorithm``
comments; everything else is plumbing (I/O, timing, checkpoints).

Metrics (one ``metrics.jsonl`` line per step; keys absent when they do not apply, null when undefined):

==============================  ==========================================================================
``step``                        1-based RL step (row 0 holds the validation before training)
``reward/outcome``              mean outcome reward over the step's first generation round (= accuracy)
``reward/contrastive``          mean contrastive reward over CLIPO anchors (0 when there are none)
``reward/total``                mean combined reward of the trained batch
``val/reward``                  mean outcome reward on the fixed validation prompts after this step (every
                                ``test_freq`` steps, the last one and step 0): one response each at the
                                rollout temperature, the same random draws every time (``validate``)
``clipo/loss``                  mean contrastive loss over anchors (before the head step)
``clipo/anchor_frac``           fraction of rollouts that are anchors (correct, group 1 < #correct < G)
``clipo/nontrivial_groups``     fraction of groups with 1 < #correct < G
``clipo/cos_{pos,neg,cross}``   mean within-group cosine of head embeddings: correct–correct, wrong–wrong,
                                correct–wrong (Figure 5 plots all three)
``hidden/cos_{pos,neg,cross}``  the same for the raw mean-pooled hidden states
``loss/policy``, ``loss/kl``    verl policy loss and KL loss, mean over minibatches (absent while frozen)
``actor/clip_frac``             fraction of tokens whose ratio was clipped (``_lower``: dual-clip bound)
``actor/ppo_kl``                mean (old − new) log-prob over response tokens: how far updates moved
``actor/grad_norm``             gradient norm before clipping
``response/length``             mean response length in tokens (eos included)
``response/truncated_frac``     fraction of responses that reached ``max_new_tokens``
``train/gen_rounds``            generation rounds this step (> 1 only with dynamic sampling)
``train/kept_groups``           dynamic sampling: kept groups / train_batch_size
``train/policy_frozen``         true during head warm-up (or when dynamic sampling kept nothing)
``time/*``                      seconds in rollout, scoring, forward, clipo, update and the whole step
                                (``time/validation`` apart: not part of the step);
                                ``time/steps_per_s``, ``time/rollout_tokens_per_s`` (generation only)
==============================  ==========================================================================

Where this trainer deviates from the paper (and from verl's GPU trainer):

- Scale: a ~1 M-parameter Qwen2 trained from scratch on synthetic arithmetic instead of Qwen2.5-3B/7B
  on GSM8K/MATH; 8 prompts × 8 rollouts per step instead of 512 × 16; a fixed number of steps instead
  of epochs (the head warm-up is given in steps, not the paper's one epoch).
- Each minibatch is one forward/backward (no micro-batch gradient accumulation on CPU), so verl's
  token-mean over the minibatch is exact without verl's global-batch bookkeeping.
- The optimiser is torch's AdamW with verl's actor defaults (betas, weight decay, gradient clipping read
  from verl's ``OptimizerConfig``), constant learning rate, no warm-up; one PPO epoch, minibatches taken
  in batch order (verl's default ``shuffle=False``).
- Dynamic sampling filters on the outcome reward (as verl's DAPO recipe does); the contrastive reward is
  computed after filtering, so the kept groups are the only ones CLIPO sees. When the rounds run out the
  step trains on the groups it has (verl would raise instead).
- ``reward/outcome`` is the mean over the first generation round, i.e. over uniformly sampled prompts,
  so it is comparable between DAPO and the other methods.
- Validation (``test_freq``) answers the first ``val_size`` prompts of the track's first benchmark once
  each at the rollout temperature, also before the first step; verl validates on every evaluation
  file with the evaluation's sampling settings (``val_kwargs``).
- embeddings.parquet holds head embeddings when CLIPO is on; without a head it holds the pooled hidden
  states (column ``space`` says which), of a fixed probe set of training prompts (``probe_problems``,
  the same in every run) rolled out before the first step and after the last.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clipo.errors import ConfigError, UserError
from clipo.methods import Clipo, Method
from clipo.runs import TrainOptions, TrainRun, resolve

if TYPE_CHECKING:
    import torch


# =============================================================================================
# Configuration: every default comes from clipo.methods; the CLI only overrides.
# =============================================================================================
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
    from clipo.data.registry import get_dataset, validation_file
    from clipo.mini.loggers import parse_loggers

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


def main(args: argparse.Namespace) -> int:
    """Entry point of ``clipo train --backend mini``."""
    from clipo.lock import run_folder_lock

    cfg = resolve_config(args)
    with run_folder_lock(cfg.out):
        train(cfg)
    return 0


# =============================================================================================
# Plumbing: data, batches, the shared forward pass
# =============================================================================================
@dataclass
class Problem:
    prompt: object
    """Chat messages (verl schema) or a plain string."""
    ground_truth: str
    data_source: str
    extra_info: dict | None


def load_problems(cfg: Config, tokenizer) -> list[Problem]:
    """The training prompts; a file that does not match the verl schema fails here, naming the file."""
    problems = read_problems(Path(cfg.train_file), "training", cfg, tokenizer)
    if len(problems) < cfg.train_batch_size:
        raise ConfigError(
            f"{cfg.train_file}: {len(problems)} usable prompts, fewer than train_batch_size={cfg.train_batch_size}"
        )
    return problems


def validation_problems(cfg: Config, tokenizer) -> list[Problem]:
    """The first ``val_size`` usable prompts of the validation file: the same set in every run."""
    return read_problems(Path(cfg.val_file), "validation", cfg, tokenizer)[: cfg.val_size]


def read_problems(path: Path, role: str, cfg: Config, tokenizer) -> list[Problem]:
    """The prompts of a verl-schema file, without those longer than ``max_prompt_length`` (verl's
    ``filter_overlong_prompts``; with it off they are an error)."""
    from clipo.data.schema import load_dataset
    from clipo.generation import render_prompt

    if not path.is_file():
        raise FileNotFoundError(f"{role} data {path} does not exist (create it with `clipo data synth`)")
    df = load_dataset(path)
    problems = [
        Problem(
            row["prompt"],
            str(row["reward_model"]["ground_truth"]),
            str(row["data_source"]),
            dict(row["extra_info"]) if isinstance(row.get("extra_info"), dict) else None,
        )
        for row in df.to_dict("records")
    ]
    lengths = [
        len(ids)
        for ids in tokenizer(
            [render_prompt(tokenizer, p.prompt) for p in problems], add_special_tokens=False
        )["input_ids"]
    ]
    too_long = [i for i, n in enumerate(lengths) if n > cfg.max_prompt_length]
    if too_long and not cfg.filter_overlong_prompts:
        raise ConfigError(
            f"{path}: row {too_long[0]} has a {lengths[too_long[0]]}-token prompt, longer than "
            f"max_prompt_length={cfg.max_prompt_length} ({len(too_long)} such rows)"
        )
    if too_long:
        print(
            f"{path}: dropped {len(too_long)} of {len(problems)} prompts longer than "
            f"max_prompt_length={cfg.max_prompt_length} tokens",
            file=sys.stderr,
        )
        problems = [p for p, n in zip(problems, lengths) if n <= cfg.max_prompt_length]
    return problems


class PromptSampler:
    """Epoch-wise shuffled prompt order with an explicit position, so a resumed run sees the same prompts."""

    def __init__(self, n: int, seed: int):
        import numpy as np

        self.n = n
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(n)
        self.pos = 0
        self.epoch = 0

    def next(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if self.pos == self.n:
                self.order, self.pos, self.epoch = self.rng.permutation(self.n), 0, self.epoch + 1
            take = min(k - len(out), self.n - self.pos)
            out.extend(int(i) for i in self.order[self.pos : self.pos + take])
            self.pos += take
        return out

    def state_dict(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state,
            "order": self.order.copy(),
            "pos": self.pos,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order, self.pos, self.epoch = state["order"], state["pos"], state["epoch"]


@dataclass
class Rollouts:
    """One batch of G responses per prompt; rows of a group are adjacent, ``group_id`` numbers the groups."""

    prompt_ids: "torch.Tensor"  # [B, P] left-padded
    prompt_mask: "torch.Tensor"
    response_ids: "torch.Tensor"  # [B, R] right-padded; the eos token is part of the response
    response_mask: "torch.Tensor"
    group_id: "torch.Tensor"  # [B]
    outcome: "torch.Tensor"  # [B] float, 1.0 correct / 0.0 wrong

    def select_groups(self, keep: "torch.Tensor") -> "Rollouts":
        """Rows of the groups in ``keep`` (group ids), renumbered 0..k-1 in order."""
        import torch

        rows = torch.isin(self.group_id, keep)
        new_id = torch.unique(self.group_id[rows], return_inverse=True)[1]
        return Rollouts(
            self.prompt_ids[rows],
            self.prompt_mask[rows],
            self.response_ids[rows],
            self.response_mask[rows],
            new_id,
            self.outcome[rows],
        )

    @staticmethod
    def cat(parts: list["Rollouts"], pad_id: int) -> "Rollouts":
        """Concatenate batches, re-padding prompts on the left and responses on the right."""
        import torch
        import torch.nn.functional as F

        P = max(p.prompt_ids.shape[1] for p in parts)
        R = max(p.response_ids.shape[1] for p in parts)
        offsets = [0]
        for p in parts[:-1]:
            offsets.append(offsets[-1] + (int(p.group_id.max()) + 1 if len(p.group_id) else 0))
        return Rollouts(
            torch.cat([F.pad(p.prompt_ids, (P - p.prompt_ids.shape[1], 0), value=pad_id) for p in parts]),
            torch.cat([F.pad(p.prompt_mask, (P - p.prompt_mask.shape[1], 0)) for p in parts]),
            torch.cat([F.pad(p.response_ids, (0, R - p.response_ids.shape[1]), value=pad_id) for p in parts]),
            torch.cat([F.pad(p.response_mask, (0, R - p.response_mask.shape[1])) for p in parts]),
            torch.cat([p.group_id + o for p, o in zip(parts, offsets)]),
            torch.cat([p.outcome for p in parts]),
        )

    def tensors(self, rows: slice) -> tuple:
        """``(prompt_ids, prompt_mask, response_ids, response_mask)`` of ``rows``: the inputs of ``policy_forward``."""
        return self.prompt_ids[rows], self.prompt_mask[rows], self.response_ids[rows], self.response_mask[rows]

    @property
    def n_groups(self) -> int:
        return len(self.group_id.unique())


def rollout(policy, tokenizer, problems: list[Problem], cfg: Config, repeats: int | None = None
            ) -> tuple[Rollouts, float, float]:
    """G (or ``repeats``) scored responses per problem; returns the batch and the (generation, scoring) seconds."""
    import torch

    from clipo.generation import decode_responses, encode_prompts, generate
    from clipo.rewards import compute_score

    repeats = repeats or cfg.group_size
    t0 = time.perf_counter()
    prompt_ids, prompt_mask = encode_prompts(tokenizer, [p.prompt for p in problems])
    response_ids, response_mask = generate(
        policy,
        tokenizer,
        prompt_ids,
        prompt_mask,
        cfg.max_new_tokens,
        do_sample=True,
        temperature=cfg.temperature,
        top_p=1.0,
        repeats=repeats,
    )
    prompt_ids = prompt_ids.repeat_interleave(repeats, dim=0)
    prompt_mask = prompt_mask.repeat_interleave(repeats, dim=0)
    t1 = time.perf_counter()
    texts = decode_responses(tokenizer, response_ids, response_mask)
    group_id = torch.arange(len(problems)).repeat_interleave(repeats)
    outcome = torch.tensor(
        [
            float(compute_score(p.data_source, text, p.ground_truth, p.extra_info))
            for p, text in zip((problems[g] for g in group_id.tolist()), texts)
        ]
    )
    return (
        Rollouts(prompt_ids, prompt_mask, response_ids, response_mask, group_id, outcome),
        t1 - t0,
        time.perf_counter() - t1,
    )


def policy_forward(model, prompt_ids, prompt_mask, response_ids, response_mask, group_size: int = 1):
    """Log-probs of the response tokens [B, R] and mean-pooled final hidden states of the response [B, D].

    Logits are computed only at the positions that predict a response token; the hidden states are the
    final-norm outputs at the response tokens (eq. 9). Rows come in groups of ``group_size`` adjacent
    rows sharing one prompt: the prompt is run once per group and its keys/values are repeated for the
    group's responses. That is the same computation as running every row on its own (same causal
    attention, same positions; gradients through the shared prompt add up over the group) on about a
    third of the tokens, since prompts are longer than responses here.
    """
    import torch
    from transformers import DynamicCache
    from verl.utils.torch_functional import logprobs_from_logits

    from clipo.contrastive import mean_pool

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
    from omegaconf import OmegaConf
    from verl.utils.config import omega_conf_to_dataclass

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
    from verl.trainer.ppo import core_algos

    import clipo.verl.losses  # noqa: F401  (registers the project's losses, GMPO's among them)

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


def _mean(rows: list[dict], key: str):
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


# =============================================================================================
# The training loop
# =============================================================================================
def train(cfg: Config) -> dict:
    """Run (or resume) one RL run; returns the summary written to summary.json."""
    import numpy as np
    import torch
    from verl.trainer.ppo import core_algos

    from clipo import hf, records
    from clipo.contrastive import ClipoHeadTrainer, add_at_last_token
    from clipo.mini import checkpoint
    from clipo.mini.loggers import MetricLoggers
    from clipo.progress import progress

    wall_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"

    # --- plumbing: models, data, optimisers
    if not Path(cfg.model_path).is_dir():
        raise FileNotFoundError(
            f"base model {cfg.model_path} does not exist: train it first with `clipo sft`"
        )
    policy, tokenizer = hf.load(cfg.model_path)
    problems = load_problems(cfg, tokenizer)
    reference = hf.load(cfg.model_path)[0].requires_grad_(False) if cfg.method.use_kl_loss else None
    actor_cfg = verl_actor_config(cfg)
    # The final norm's gain scales every logit: it is the policy's sampling temperature. Adam moves each
    # parameter by about lr per step whatever its size, so at the policy lr this O(1) gain would take
    # ~1/lr steps to change by a factor of two; it gets its own learning rate (clipo.methods, mini track).
    gain = policy.base_model.norm.weight
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in policy.parameters() if p is not gain]},
            {"params": [gain], "lr": cfg.output_gain_lr, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=tuple(actor_cfg.optim.betas),
        weight_decay=actor_cfg.optim.weight_decay,
    )
    hidden_size = policy.config.hidden_size
    # The head owns its init stream and a separate generator for positive sampling, so CLIPO never moves
    # the policy's random numbers (CLIPO with λ = 0 trains bit-identical weights to CLIPO off).
    head = ClipoHeadTrainer(hidden_size, cfg.clipo, seed=cfg.seed) if cfg.clipo else None

    # --- plumbing: seeding, or resuming from the newest checkpoint
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    sampler = PromptSampler(len(problems), cfg.seed)
    probe = probe_problems(problems, cfg.train_batch_size)
    val = validation_problems(cfg, tokenizer) if cfg.test_freq > 0 else []
    metric_rows: list[dict] = []
    embedding_rows: list[dict] = []
    start_step = 0
    resume_from = checkpoint.latest(ckpt_dir)
    if resume_from is not None:
        state = checkpoint.load(resume_from)
        if differences := cfg.differences(state["config"]):
            raise ConfigError(
                f"{resume_from} was written by a run with a different configuration "
                f"({'; '.join(differences)}); use another --out or delete {ckpt_dir}"
            )
        if state["step"] > cfg.steps:
            raise ConfigError(f"{resume_from} is at step {state['step']}, beyond steps={cfg.steps}")
        policy.load_state_dict(state["policy"])
        optimizer.load_state_dict(state["optimizer"])
        if head is not None:
            head.load_state_dict(state["head"])
        sampler.load_state_dict(state["sampler"])
        checkpoint.restore_rng(state["rng"])
        metric_rows, embedding_rows, start_step = state["metrics"], state["embeddings"], state["step"]
        if start_step < cfg.steps:  # an extended run: its "end" dump moves to the new last step
            embedding_rows = [r for r in embedding_rows if r["phase"] == "start"]
    derived = {
        "rollouts_per_step": cfg.rollouts_per_step,
        "minibatches_per_step": cfg.minibatches_per_step,
        "rollouts_per_minibatch": cfg.ppo_mini_batch_size * cfg.group_size,
        "steps_per_epoch": len(problems) / cfg.train_batch_size,
        "policy_updates": (cfg.steps - cfg.head_warmup_steps) * cfg.minibatches_per_step,
        "policy_parameters": sum(p.numel() for p in policy.parameters()),
        "optimizer": {
            "betas": list(actor_cfg.optim.betas),
            "weight_decay": actor_cfg.optim.weight_decay,
            "clip_grad": actor_cfg.optim.clip_grad,
        },
        "threads": torch.get_num_threads(),
        "resumed_from_step": start_step,
    }
    print(
        f"clipo train (mini): {cfg.method.name} + clipo={cfg.clipo_variant}, {cfg.steps} steps × "
        f"{cfg.train_batch_size} prompts × G={cfg.group_size}; derived: {json.dumps(derived)}",
        file=sys.stderr,
    )
    run_info = {
        "config": asdict(cfg),
        "derived": derived,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }
    records.write_json(out / records.RUN_FILE, run_info)
    # Snakemake may have deleted the outputs of an interrupted run: restore them from the checkpoint.
    records.write_metrics(out / records.METRICS_FILE, metric_rows)
    records.write_embeddings(out / records.EMBEDDINGS_FILE, embedding_rows)

    running_reward = _mean(metric_rows[-10:], "reward/outcome")
    bar = progress(
        range(start_step + 1, cfg.steps + 1), initial=start_step, total=cfg.steps, desc="rl", unit="step",
        disable="console" not in cfg.logger,
    )
    metric_loggers = MetricLoggers(cfg.logger, out, first_step=start_step + 1)
    if start_step == 0 and val:  # the starting point of the validation curve
        metric_rows.append(records.json_row({"step": 0, **validate(policy, tokenizer, val, cfg)}))
        records.write_metrics(out / records.METRICS_FILE, metric_rows)
        metric_loggers.log(metric_rows[-1])
    for step in bar:
        t_step = time.perf_counter()
        m: dict = {"step": step}
        if step == 1:
            embedding_rows += probe_embeddings(policy, tokenizer, head, probe, cfg, step, "start")

        # --- algorithm: rollout + outcome reward (DAPO: drop zero-variance groups, refill)
        batch, t_gen, t_score = rollout(
            policy, tokenizer, [problems[i] for i in sampler.next(cfg.train_batch_size)], cfg
        )
        m["reward/outcome"] = batch.outcome.mean().item()
        m["response/length"] = batch.response_mask.sum(-1).float().mean().item()
        m["response/truncated_frac"] = (
            (batch.response_mask.sum(-1) == cfg.max_new_tokens).float().mean().item()
        )
        rounds, rollout_tokens = 1, int(batch.response_mask.sum())
        if cfg.method.dynamic_sampling:
            first_round, kept = batch, [_groups_with_reward_variance(batch)]
            while sum(k.n_groups for k in kept) < cfg.train_batch_size and rounds < cfg.max_gen_rounds:
                more, g, s = rollout(
                    policy, tokenizer, [problems[i] for i in sampler.next(cfg.train_batch_size)], cfg
                )
                kept.append(_groups_with_reward_variance(more))
                rounds, t_gen, t_score = rounds + 1, t_gen + g, t_score + s
                rollout_tokens += int(more.response_mask.sum())
            batch = Rollouts.cat(kept, tokenizer.pad_token_id)
            batch = batch.select_groups(torch.arange(min(batch.n_groups, cfg.train_batch_size)))
            m["train/kept_groups"] = batch.n_groups / cfg.train_batch_size
            if batch.n_groups == 0:  # nothing to learn from: keep the batch for logging, skip the update
                batch = first_round
        m["train/gen_rounds"] = rounds

        # --- algorithm: ONE forward of the current policy → old log-probs + pooled hidden states.
        # The first minibatch's forward is taken with gradients and reused by its update: before the
        # first optimiser step the current policy IS π_old, so its detached log-probs are the old ones.
        t0 = time.perf_counter()
        policy_frozen = step <= cfg.head_warmup_steps or m.get("train/kept_groups") == 0
        mb_rows = cfg.ppo_mini_batch_size * cfg.group_size
        with torch.set_grad_enabled(not policy_frozen):
            parts = [policy_forward(policy, *batch.tensors(slice(0, mb_rows)), cfg.group_size)]
        if len(batch.group_id) > mb_rows:
            with torch.no_grad():
                parts.append(policy_forward(policy, *batch.tensors(slice(mb_rows, None)), cfg.group_size))
        first_log_prob = parts[0][0]
        old_log_prob = torch.cat([log_prob.detach() for log_prob, _ in parts])
        pooled = torch.cat([hidden.detach() for _, hidden in parts])
        t_forward = time.perf_counter() - t0

        # --- algorithm: CLIPO head step + contrastive reward, added at the last response token
        t0 = time.perf_counter()
        reward = batch.outcome.clone()
        if head is not None:
            contrastive, clipo_metrics = head.step(pooled, batch.outcome > 0.5, batch.group_id)
            reward = reward + contrastive
            m.update(clipo_metrics)
        m["reward/total"] = reward.mean().item()
        t_clipo = time.perf_counter() - t0

        t0 = time.perf_counter()
        m["train/policy_frozen"] = policy_frozen
        if not policy_frozen:
            # --- algorithm: group-normalised advantages of the combined reward (verl's GRPO estimator)
            token_rewards = add_at_last_token(torch.zeros_like(old_log_prob), batch.response_mask, reward)
            adv, _ = core_algos.compute_grpo_outcome_advantage(
                token_level_rewards=token_rewards,
                response_mask=batch.response_mask,
                index=batch.group_id.numpy(),
            )
            ref_log_prob = None
            if reference is not None:
                with torch.no_grad():
                    ref_log_prob, _ = policy_forward(reference, *batch.tensors(slice(None)), cfg.group_size)

            # --- algorithm: minibatch updates with the method's verl policy loss (+ KL for GRPO)
            mb_metrics = []
            for start in range(0, len(batch.group_id), mb_rows):
                mb = slice(start, start + mb_rows)
                if start == 0:
                    mb_log_prob = first_log_prob
                else:
                    mb_log_prob, _ = policy_forward(policy, *batch.tensors(mb), cfg.group_size)
                loss, lm = minibatch_loss(
                    actor_cfg,
                    mb_log_prob,
                    old_log_prob[mb],
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
            for key in mb_metrics[0]:
                m[key] = _mean(mb_metrics, key)
        t_update = time.perf_counter() - t0
        _stop_if_diverged(step, m, policy, cfg)

        # --- plumbing: logging and checkpoint
        t_total = time.perf_counter() - t_step
        m.update(
            {
                "time/rollout": t_gen,
                "time/scoring": t_score,
                "time/forward": t_forward,
                "time/clipo": t_clipo,
                "time/update": t_update,
                "time/step": t_total,
                "time/steps_per_s": 1.0 / t_total,
                "time/rollout_tokens_per_s": rollout_tokens / t_gen,
            }
        )
        if val and (step % cfg.test_freq == 0 or step == cfg.steps):
            m.update(validate(policy, tokenizer, val, cfg))
        metric_rows.append(records.json_row(m))
        records.write_metrics(out / records.METRICS_FILE, metric_rows)
        metric_loggers.log(metric_rows[-1])
        running_reward = (
            m["reward/outcome"]
            if running_reward is None
            else 0.9 * running_reward + 0.1 * m["reward/outcome"]
        )
        bar.set_postfix(reward=f"{running_reward:.3f}", s_per_step=f"{t_total:.2f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint.save(
                ckpt_dir,
                step,
                {
                    "step": step,
                    "config": cfg.comparable(),
                    "policy": policy.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "head": head.state_dict() if head else None,
                    "sampler": sampler.state_dict(),
                    "rng": checkpoint.capture_rng(),
                    "metrics": metric_rows,
                    "embeddings": embedding_rows,
                },
            )
    bar.close()
    metric_loggers.close()
    if not any(r["phase"] == "end" for r in embedding_rows):
        embedding_rows += probe_embeddings(policy, tokenizer, head, probe, cfg, cfg.steps, "end")

    # --- plumbing: final outputs; summary.json last, so its presence means the run is complete
    hf.save(policy, tokenizer, out / "final")
    records.write_embeddings(out / records.EMBEDDINGS_FILE, embedding_rows)
    final = metric_rows[-1] if metric_rows else {}
    summary = {
        "steps": cfg.steps,
        "final_step": final.get("step"),
        "wall_time_s": time.perf_counter() - wall_start,
        "resumed_from_step": start_step,
        "final_metrics": final,
        "mean_last_10": {
            k: _mean(metric_rows[-10:], k)
            for k in final
            if k != "step" and isinstance(final[k], (int, float)) and not isinstance(final[k], bool)
        },
    }
    records.write_json(out / records.SUMMARY_FILE, summary)
    return summary


def _stop_if_diverged(step: int, m: dict, policy, cfg: Config) -> None:
    """Stop with one clear error (before anything of this step is saved) when the losses or the policy
    weights are no longer finite: a NaN model must not be written as a result."""
    import torch

    bad = [k for k in ("loss/policy", "loss/kl") if m.get(k) is not None and not math.isfinite(m[k])]
    if not all(bool(torch.isfinite(p).all()) for p in policy.parameters()):
        bad.append("policy weights")
    if bad:
        raise UserError(
            f"step {step}: {', '.join(bad)} became non-finite (lr={cfg.lr}); nothing of this step was "
            f"saved — lower --lr, then re-run to resume from the last checkpoint in {cfg.out}/checkpoints"
        )


def _groups_with_reward_variance(batch: Rollouts) -> Rollouts:
    """DAPO's dynamic-sampling filter: keep groups whose outcome rewards are not all equal."""
    import torch

    ids = batch.group_id.unique()
    spread = (
        torch.stack([batch.outcome[batch.group_id == g].std() for g in ids]) if len(ids) else torch.zeros(0)
    )
    return batch.select_groups(ids[spread > 0])


VAL_SEED = 0
"""Seed of the validation draws: every validation of every run samples from the same stream."""


def validate(policy, tokenizer, val: list[Problem], cfg: Config) -> dict:
    """``val/reward``: the fraction of correct answers on the fixed validation prompts, one each at the
    rollout temperature, and ``time/validation``.

    A step's ``reward/outcome`` comes from new prompts, and which ones come up moves it as much as many
    steps of learning; here the prompts and the random draws are the same every time, so the curve moves
    with the policy alone. Drawn from a private copy of the RNG state: training is unchanged by it.
    """
    import torch

    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(VAL_SEED)
        batch, _, _ = rollout(policy, tokenizer, val, cfg, repeats=1)
    return {"val/reward": batch.outcome.mean().item(), "time/validation": time.perf_counter() - t0}


PROBE_SEED = 0
"""Seed of the probe set and of its rollouts: the same prompts and draws in every run, whatever its seed."""


def probe_problems(problems: list[Problem], k: int) -> list[Problem]:
    """A fixed set of ``k`` training prompts, embedded at the start and at the end of training."""
    import numpy as np

    rows = np.random.default_rng(PROBE_SEED).choice(len(problems), size=min(k, len(problems)), replace=False)
    return [problems[i] for i in sorted(rows)]


def probe_embeddings(policy, tokenizer, head, probe: list[Problem], cfg: Config, step: int, phase: str) -> list[dict]:
    """embeddings.parquet rows of the probe set under the current policy (and head): G rollouts per prompt,
    group_id i = probe prompt i in both phases, so start and end show the same groups.

    Drawn from a private copy of the RNG state, so the dump never moves the training's random numbers."""
    import torch

    from clipo.records import embedding_rows

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PROBE_SEED)
        batch, _, _ = rollout(policy, tokenizer, probe, cfg)
    with torch.no_grad():
        _, pooled = policy_forward(policy, *batch.tensors(slice(None)), cfg.group_size)
        space, emb = ("head", head.embed(pooled)) if head is not None else ("hidden", pooled)
    return embedding_rows(step, phase, space, emb, batch.group_id, batch.outcome > 0.5)
