"""Prompts and rollouts of the mini trainer: reading the prompt files, the resumable prompt order,
generating and scoring G responses per prompt, and DAPO's dynamic-sampling refill."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clipo import rewards  # looked up at call time: tests swap in a reward for random models
from clipo.data import stepcheck
from clipo.data.schema import load_dataset
from clipo.errors import ConfigError
from clipo.generation import decode_responses, encode_prompts, generate, render_prompt
from clipo.mini.config import Config


@dataclass
class Problem:
    prompt: object
    """Chat messages (verl schema) or a plain string."""
    ground_truth: str | list[str]
    """One answer, or a list of accepted answers (scored as ``clipo.evaluate`` scores it)."""
    data_source: str
    extra_info: dict | None


def ground_truth_of(value) -> str | list[str]:
    """A row's ground truth as the evaluator scores it: a list of accepted answers stays a list
    (parquet gives an array), anything else becomes its text."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    return str(value)


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
    if not path.is_file():
        raise FileNotFoundError(f"{role} data {path} does not exist (create it with `clipo data synth`)")
    df = load_dataset(path)
    problems = [
        Problem(
            row["prompt"],
            ground_truth_of(row["reward_model"]["ground_truth"]),
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

    prompt_ids: torch.Tensor  # [B, P] left-padded
    prompt_mask: torch.Tensor
    response_ids: torch.Tensor  # [B, R] right-padded; the eos token is part of the response
    response_mask: torch.Tensor
    group_id: torch.Tensor  # [B]
    outcome: torch.Tensor  # [B] float, 1.0 correct / 0.0 wrong
    process: tuple[str | None, ...] = ()
    """Step check of each row (sound / lucky / wrong, None without a chain; clipo.data.stepcheck):
    measured for the logs, never part of the reward."""

    def select_groups(self, keep: torch.Tensor) -> Rollouts:
        """Rows of the groups in ``keep`` (group ids), renumbered 0..k-1 in order."""
        rows = torch.isin(self.group_id, keep)
        new_id = torch.unique(self.group_id[rows], return_inverse=True)[1]
        return Rollouts(
            self.prompt_ids[rows],
            self.prompt_mask[rows],
            self.response_ids[rows],
            self.response_mask[rows],
            new_id,
            self.outcome[rows],
            tuple(label for label, kept in zip(self.process, rows.tolist()) if kept),
        )

    @staticmethod
    def cat(parts: list[Rollouts], pad_id: int) -> Rollouts:
        """Concatenate batches, re-padding prompts on the left and responses on the right."""
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
            tuple(label for p in parts for label in p.process),
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
    rows = [problems[g] for g in group_id.tolist()]
    outcome = torch.tensor(
        [float(rewards.compute_score(p.data_source, text, p.ground_truth, p.extra_info)) for p, text in zip(rows, texts)]
    )
    process = tuple(stepcheck.classify(p.extra_info, text, r > 0.5) for p, text, r in zip(rows, texts, outcome.tolist()))
    return (
        Rollouts(prompt_ids, prompt_mask, response_ids, response_mask, group_id, outcome, process),
        t1 - t0,
        time.perf_counter() - t1,
    )


def groups_with_reward_variance(batch: Rollouts) -> Rollouts:
    """DAPO's dynamic-sampling filter: keep groups whose outcome rewards are not all equal."""
    ids = batch.group_id.unique()
    spread = (
        torch.stack([batch.outcome[batch.group_id == g].std() for g in ids]) if len(ids) else torch.zeros(0)
    )
    return batch.select_groups(ids[spread > 0])


@dataclass
class StepBatch:
    """The rollouts a step trains on, with what it took to get them."""

    rollouts: Rollouts
    first_round: Rollouts
    """The first generation round: uniformly drawn prompts, so its rewards compare across methods."""
    rounds: int
    kept_groups: int | None
    """Dynamic sampling: groups with reward variance kept (None without dynamic sampling)."""
    rollout_tokens: int
    t_generate: float
    t_score: float


def collect_batch(policy, tokenizer, problems: list[Problem], sampler: PromptSampler, cfg: Config) -> StepBatch:
    """One step's scored rollouts. With dynamic sampling (DAPO) groups whose rewards all agree are dropped
    and fresh prompts are drawn until ``train_batch_size`` groups are kept or ``max_gen_rounds`` ran out;
    if none is kept, the first round stays the batch (for logging; the policy is not updated)."""
    batch, t_gen, t_score = rollout(policy, tokenizer, [problems[i] for i in sampler.next(cfg.train_batch_size)], cfg)
    step_batch = StepBatch(batch, batch, 1, None, int(batch.response_mask.sum()), t_gen, t_score)
    if not cfg.method.dynamic_sampling:
        return step_batch
    kept = [groups_with_reward_variance(batch)]
    while sum(k.n_groups for k in kept) < cfg.train_batch_size and step_batch.rounds < cfg.max_gen_rounds:
        more, g, s = rollout(policy, tokenizer, [problems[i] for i in sampler.next(cfg.train_batch_size)], cfg)
        kept.append(groups_with_reward_variance(more))
        step_batch.rounds += 1
        step_batch.t_generate += g
        step_batch.t_score += s
        step_batch.rollout_tokens += int(more.response_mask.sum())
    filtered = Rollouts.cat(kept, tokenizer.pad_token_id)
    filtered = filtered.select_groups(torch.arange(min(filtered.n_groups, cfg.train_batch_size)))
    step_batch.kept_groups = filtered.n_groups
    if filtered.n_groups > 0:
        step_batch.rollouts = filtered
    return step_batch
