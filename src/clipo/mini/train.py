"""CPU RL trainer of the mini track: GRPO, GSPO, DAPO or GMPO, each with or without CLIPO.

One loop, readable top to bottom (CleanRL style). Per step:

1. rollout   — sample ``train_batch_size`` prompts × G responses (KV-cache generation, temperature 1.0);
2. scoring   — ``clipo.rewards.compute_score`` gives the outcome reward (1 correct / 0 wrong);
   DAPO's dynamic sampling then drops groups whose rewards all agree and refills the batch with
   freshly sampled prompts (at most ``max_gen_rounds`` generation rounds per step);
3. one forward of the current policy on prompt + response yields the old log-probs AND the final-norm
   hidden states, mean-pooled over response tokens (eq. 9) — CLIPO costs no extra forward; the first
   minibatch's part runs with gradients and serves its update too (before the first update π = π_old;
   ``clipo.mini.policy.OldPolicyPass``);
4. CLIPO     — one step of the contrastive head; its reward max(−λ·loss, floor) (eq. 12) is added to
   the outcome reward at the last response token;
5. advantages of the combined reward by the method's estimator (``Method.adv_estimator``) from verl's
   registry (``get_adv_estimator_fn``; GRPO's group normalisation for every method of the table);
6. minibatch updates with verl's policy loss of the method (``get_policy_loss_fn``), its loss
   aggregation and clip ratios, plus the low-variance KL loss to a frozen reference for GRPO;
7. logging (``metrics.jsonl``), checkpoint; every ``test_freq`` steps (and before the first) the reward on
   fixed validation prompts; the probe set's embeddings before the first and after the last step.

Every hyperparameter comes from ``clipo.methods`` (the method table and the "mini" track); the
command line only overrides. ``train`` is the loop; lines that are the paper's algorithm sit under
``# --- algorithm`` comments. Setup, validation and probe dumps are below it; prompts and rollouts live
in ``clipo.mini.rollout``, the policy's forward, advantages and updates in ``clipo.mini.policy``,
checkpoints and when to resume them in ``clipo.mini.resume``.

Metrics (one ``metrics.jsonl`` line per step; keys absent when they do not apply, null when undefined):

==============================  ==========================================================================
``step``                        1-based RL step (row 0 holds the validation before training)
``reward/outcome``              mean outcome reward over the step's first generation round (= accuracy)
``reward/contrastive``          mean contrastive reward over CLIPO anchors (0 when there are none)
``reward/total``                mean combined reward of the trained batch
``val/reward``                  mean outcome reward on the fixed validation prompts after this step (every
                                ``test_freq`` steps, the last one and step 0): one response each at the
                                rollout temperature, the same random draws every time (``validate``)
``process/sound_share``         step-checked answers of the first generation round (clipo.data.stepcheck;
                                measured, never rewarded): share whose every step is right
``process/lucky_share``         share of the correct answers whose steps are wrong somewhere (null when no
                                answer is correct); ``val/sound_share``, ``val/lucky_share``: the same on the
                                validation prompts
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

import numpy as np
import torch

from clipo import hf, records
from clipo.contrastive import ClipoHeadTrainer
from clipo.data import stepcheck
from clipo.errors import UserError
from clipo.lock import run_folder_lock
from clipo.mini import checkpoint
from clipo.mini.config import Config, resolve_config
from clipo.mini.loggers import MetricLoggers
from clipo.mini.policy import (
    OldPolicyPass,
    advantage_estimator,
    advantages,
    make_optimizer,
    mean,
    policy_forward,
    update_policy,
    verl_actor_config,
)
from clipo.mini.resume import CHECKPOINT_DIR, TrainingState, input_fingerprint, resume, validation_due
from clipo.mini.rollout import (
    Problem,
    PromptSampler,
    Rollouts,
    StepBatch,
    collect_batch,
    load_problems,
    rollout,
    validation_problems,
)
from clipo.progress import progress


def main(args: argparse.Namespace) -> int:
    """Entry point of ``clipo train --backend mini``."""
    cfg = resolve_config(args)
    with run_folder_lock(cfg.out):
        train(cfg, restart_if_changed=bool(getattr(args, "restart_if_changed", False)))
    return 0


@dataclass
class Run:
    """What a run trains with, built from its settings (``setup``), and its resumable state."""

    tokenizer: object
    reference: torch.nn.Module | None
    """Frozen copy of the base model for the KL loss (methods with ``use_kl_loss`` only)."""
    actor_cfg: object
    """verl's ActorConfig of the method: loss, aggregation, clip ratios, KL, optimiser defaults."""
    problems: list[Problem]
    probe: list[Problem]
    val: list[Problem]
    inputs: dict[str, str]
    """Fingerprint of the base model and data files (``clipo.mini.resume.input_fingerprint``)."""
    state: TrainingState


# =============================================================================================
# The training loop
# =============================================================================================
def train(cfg: Config, restart_if_changed: bool = False) -> dict:
    """Run (or resume) one RL run; returns the summary written to summary.json."""
    wall_start = time.perf_counter()
    run = setup(cfg, restart_if_changed)
    state, tokenizer = run.state, run.tokenizer
    policy, head = state.policy, state.head
    start_step = state.step
    loggers = MetricLoggers(cfg.logger, Path(cfg.out), first_step=start_step + 1)
    bar = progress(range(start_step + 1, cfg.steps + 1), initial=start_step, total=cfg.steps, desc="rl",
                   unit="step", disable="console" not in cfg.logger)
    running_reward = mean(state.metric_rows[-10:], "reward/outcome")
    if start_step == 0 and run.val:  # the starting point of the validation curve
        log_step(run, cfg, loggers, {"step": 0, **validate(policy, tokenizer, run.val, cfg)})
    for step in bar:
        t_step = time.perf_counter()
        if step == 1:
            state.embedding_rows += probe_embeddings(policy, tokenizer, head, run.probe, cfg, step, "start")

        # --- algorithm: rollout + outcome reward (DAPO: drop groups whose rewards all agree, refill)
        collected = collect_batch(policy, tokenizer, run.problems, state.sampler, cfg)
        batch, m = collected.rollouts, {"step": step, **rollout_metrics(collected, cfg)}
        policy_frozen = step <= cfg.head_warmup_steps or collected.kept_groups == 0

        # --- algorithm: ONE forward of the current policy → π_old log-probs + pooled hidden states
        t0 = time.perf_counter()
        forward = OldPolicyPass(policy, batch, cfg, with_grad=not policy_frozen)
        t_forward = time.perf_counter() - t0

        # --- algorithm: CLIPO head step + contrastive reward, added to the outcome reward
        t0 = time.perf_counter()
        reward = batch.outcome.clone()
        if head is not None:
            contrastive, clipo_metrics = head.step(forward.pooled, batch.outcome > 0.5, batch.group_id)
            reward = reward + contrastive
            m.update(clipo_metrics)
        m["reward/total"] = reward.mean().item()
        t_clipo = time.perf_counter() - t0

        # --- algorithm: advantages by the method's estimator, then minibatch updates with its loss
        t0 = time.perf_counter()
        m["train/policy_frozen"] = policy_frozen
        if not policy_frozen:
            adv = advantages(cfg, reward, batch, like=forward.old_log_prob)
            m.update(update_policy(policy, run.reference, state.optimizer, run.actor_cfg, forward, adv))
        t_update = time.perf_counter() - t0
        stop_if_diverged(step, m, policy, cfg)

        # --- plumbing: timing, validation, logging, checkpoint
        t_total = time.perf_counter() - t_step
        m.update(step_times(collected, t_forward, t_clipo, t_update, t_total))
        if run.val and validation_due(step, cfg):
            m.update(validate(policy, tokenizer, run.val, cfg))
        state.step = step
        log_step(run, cfg, loggers, m)
        reward_now = m["reward/outcome"]
        running_reward = reward_now if running_reward is None else 0.9 * running_reward + 0.1 * reward_now
        bar.set_postfix(reward=f"{running_reward:.3f}", s_per_step=f"{t_total:.2f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint.save(Path(cfg.out) / CHECKPOINT_DIR, step, state.to_checkpoint(cfg, run.inputs))
    bar.close()
    loggers.close()
    return finish(run, cfg, start_step, wall_start)


# =============================================================================================
# Setup, records and the step's bookkeeping
# =============================================================================================
def setup(cfg: Config, restart_if_changed: bool) -> Run:
    """Models, data, optimisers and seeds; then the newest checkpoint of this run, if there is one."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if not Path(cfg.model_path).is_dir():
        raise FileNotFoundError(f"base model {cfg.model_path} does not exist: train it first with `clipo sft`")
    advantage_estimator(cfg.method.adv_estimator)  # an unknown estimator fails before any work
    policy, tokenizer = hf.load(cfg.model_path)
    problems = load_problems(cfg, tokenizer)
    reference = hf.load(cfg.model_path)[0].requires_grad_(False) if cfg.method.use_kl_loss else None
    actor_cfg = verl_actor_config(cfg)
    optimizer = make_optimizer(policy, cfg, actor_cfg)
    # The head owns its init stream and a separate generator for positive sampling, so CLIPO never moves
    # the policy's random numbers (CLIPO with λ = 0 trains bit-identical weights to CLIPO off).
    head = ClipoHeadTrainer(policy.config.hidden_size, cfg.clipo, seed=cfg.seed) if cfg.clipo else None
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    run = Run(
        tokenizer=tokenizer,
        reference=reference,
        actor_cfg=actor_cfg,
        problems=problems,
        probe=probe_problems(problems, cfg.train_batch_size),
        val=validation_problems(cfg, tokenizer) if cfg.test_freq > 0 else [],
        inputs=input_fingerprint(cfg),
        state=TrainingState(policy, optimizer, head, PromptSampler(len(problems), cfg.seed)),
    )
    resume(run.state, cfg, run.inputs, restart_if_changed)
    write_run_records(run, cfg)
    return run


def write_run_records(run: Run, cfg: Config) -> None:
    """run.json (settings, derived sizes, input fingerprint, versions); metrics and embeddings so far
    (Snakemake may have deleted the outputs of an interrupted run: they come back from the checkpoint)."""
    actor_cfg, out = run.actor_cfg, Path(cfg.out)
    derived = {
        "rollouts_per_step": cfg.rollouts_per_step,
        "minibatches_per_step": cfg.minibatches_per_step,
        "rollouts_per_minibatch": cfg.ppo_mini_batch_size * cfg.group_size,
        "steps_per_epoch": len(run.problems) / cfg.train_batch_size,
        "policy_updates": (cfg.steps - cfg.head_warmup_steps) * cfg.minibatches_per_step,
        "policy_parameters": sum(p.numel() for p in run.state.policy.parameters()),
        "optimizer": {
            "betas": list(actor_cfg.optim.betas),
            "weight_decay": actor_cfg.optim.weight_decay,
            "clip_grad": actor_cfg.optim.clip_grad,
        },
        "threads": torch.get_num_threads(),
        "resumed_from_step": run.state.step,
    }
    print(
        f"clipo train (mini): {cfg.method.name} + clipo={cfg.clipo_variant}, {cfg.steps} steps × "
        f"{cfg.train_batch_size} prompts × G={cfg.group_size}; derived: {json.dumps(derived)}",
        file=sys.stderr,
    )
    records.write_json(out / records.RUN_FILE, {
        "config": asdict(cfg),
        "derived": derived,
        "inputs": run.inputs,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    })
    records.write_metrics(out / records.METRICS_FILE, run.state.metric_rows)
    records.write_embeddings(out / records.EMBEDDINGS_FILE, run.state.embedding_rows)


def rollout_metrics(collected: StepBatch, cfg: Config) -> dict:
    """Reward and response length of the first generation round (uniformly drawn prompts), and what
    dynamic sampling did."""
    first = collected.first_round
    lengths = first.response_mask.sum(-1)
    m = {
        "reward/outcome": first.outcome.mean().item(),
        "response/length": lengths.float().mean().item(),
        "response/truncated_frac": (lengths == cfg.max_new_tokens).float().mean().item(),
    }
    m.update(process_shares(first, "process/"))
    if collected.kept_groups is not None:
        m["train/kept_groups"] = collected.kept_groups / cfg.train_batch_size
    m["train/gen_rounds"] = collected.rounds
    return m


def process_shares(batch: Rollouts, prefix: str) -> dict:
    """Step-checked shares of a batch (clipo.data.stepcheck): sound among all answers, lucky among the
    correct ones (None without a correct one). Measured only; absent when no row carries a chain."""
    counts = stepcheck.count_labels(batch.process)
    if not counts.checked:
        return {}
    return {f"{prefix}sound_share": counts.sound_share, f"{prefix}lucky_share": counts.lucky_share}


def step_times(collected: StepBatch, t_forward: float, t_clipo: float, t_update: float, t_total: float) -> dict:
    return {
        "time/rollout": collected.t_generate,
        "time/scoring": collected.t_score,
        "time/forward": t_forward,
        "time/clipo": t_clipo,
        "time/update": t_update,
        "time/step": t_total,
        "time/steps_per_s": 1.0 / t_total,
        "time/rollout_tokens_per_s": collected.rollout_tokens / collected.t_generate,
    }


def log_step(run: Run, cfg: Config, loggers: MetricLoggers, row: dict) -> None:
    """Append a metrics row: metrics.jsonl (rewritten atomically), then the loggers."""
    run.state.metric_rows.append(records.json_row(row))
    records.write_metrics(Path(cfg.out) / records.METRICS_FILE, run.state.metric_rows)
    loggers.log(run.state.metric_rows[-1])


def finish(run: Run, cfg: Config, start_step: int, wall_start: float) -> dict:
    """The probe dump of the end, the final model, embeddings.parquet, and summary.json last, so its
    presence means the run is complete."""
    state, out = run.state, Path(cfg.out)
    if not any(r["phase"] == "end" for r in state.embedding_rows):
        state.embedding_rows += probe_embeddings(state.policy, run.tokenizer, state.head, run.probe, cfg,
                                                 cfg.steps, "end")
    hf.save(state.policy, run.tokenizer, out / "final")
    records.write_embeddings(out / records.EMBEDDINGS_FILE, state.embedding_rows)
    final = state.metric_rows[-1] if state.metric_rows else {}
    summary = {
        "steps": cfg.steps,
        "final_step": final.get("step"),
        "wall_time_s": time.perf_counter() - wall_start,
        "resumed_from_step": start_step,
        "final_metrics": final,
        "mean_last_10": {
            k: mean(state.metric_rows[-10:], k)
            for k in final
            if k != "step" and isinstance(final[k], (int, float)) and not isinstance(final[k], bool)
        },
    }
    records.write_json(out / records.SUMMARY_FILE, summary)
    return summary


def stop_if_diverged(step: int, m: dict, policy, cfg: Config) -> None:
    """Stop with one clear error (before anything of this step is saved) when the losses or the policy
    weights are no longer finite: a NaN model must not be written as a result."""
    bad = [k for k in ("loss/policy", "loss/kl") if m.get(k) is not None and not math.isfinite(m[k])]
    if not all(bool(torch.isfinite(p).all()) for p in policy.parameters()):
        bad.append("policy weights")
    if bad:
        raise UserError(
            f"step {step}: {', '.join(bad)} became non-finite (lr={cfg.lr}); nothing of this step was "
            f"saved — lower --lr, then re-run to resume from the last checkpoint in {cfg.out}/checkpoints"
        )


# =============================================================================================
# Validation and probe-set embeddings (outside the training's random streams)
# =============================================================================================
VAL_SEED = 0
"""Seed of the validation draws: every validation of every run samples from the same stream."""


def validate(policy, tokenizer, val: list[Problem], cfg: Config) -> dict:
    """``val/reward``: the fraction of correct answers on the fixed validation prompts, one each at the
    rollout temperature, and ``time/validation``.

    A step's ``reward/outcome`` comes from new prompts, and which ones come up moves it as much as many
    steps of learning; here the prompts and the random draws are the same every time, so the curve moves
    with the policy alone. Drawn from a private copy of the RNG state: training is unchanged by it.
    """
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(VAL_SEED)
        batch, _, _ = rollout(policy, tokenizer, val, cfg, repeats=1)
    return {"val/reward": batch.outcome.mean().item(), **process_shares(batch, "val/"),
            "time/validation": time.perf_counter() - t0}


PROBE_SEED = 0
"""Seed of the probe set and of its rollouts: the same prompts and draws in every run, whatever its seed."""


def probe_problems(problems: list[Problem], k: int) -> list[Problem]:
    """A fixed set of ``k`` training prompts, embedded at the start and at the end of training."""
    rows = np.random.default_rng(PROBE_SEED).choice(len(problems), size=min(k, len(problems)), replace=False)
    return [problems[i] for i in sorted(rows)]


def probe_embeddings(policy, tokenizer, head, probe: list[Problem], cfg: Config, step: int, phase: str) -> list[dict]:
    """embeddings.parquet rows of the probe set under the current policy (and head): G rollouts per prompt,
    group_id i = probe prompt i in both phases, so start and end show the same groups.

    Drawn from a private copy of the RNG state, so the dump never moves the training's random numbers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PROBE_SEED)
        batch, _, _ = rollout(policy, tokenizer, probe, cfg)
    with torch.no_grad():
        _, pooled = policy_forward(policy, *batch.tensors(slice(None)), cfg.group_size)
        space, emb = ("head", head.embed(pooled)) if head is not None else ("hidden", pooled)
    return records.embedding_rows(step, phase, space, emb, batch.group_id, batch.outcome > 0.5)
