"""`clipo sft`: the mini track's "Base Model" — a tiny Qwen2 taught the synthetic solutions by SFT.

Plays the role the instruct checkpoint plays in the paper: a policy that already solves part of the
problems, so RL has non-trivial groups to learn from. Trained once per run set and shared by every
RL run. Loss on solution tokens only (the prompt is context, not a target); prompts are rendered
through the tokenizer's chat template exactly as rollouts and evaluation render them.

Resumable: the latest checkpoint (model, optimiser, schedule, RNG, step) lives in a folder beside
the output; the batch order is a pure function of (seed, step), so a killed run that resumes ends
with the same weights as one that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from clipo.methods import MiniSFT

SOLUTION_KEY = "solution"
"""Key in ``extra_info`` holding the worked solution text (clipo.data.synthetic writes it)."""
CHECKPOINT_FILE = "state.pt"


def load_examples(path: str | os.PathLike) -> tuple[list[list[dict]], list[str]]:
    """Prompts (chat messages) and solution texts of a verl-schema training file."""
    from clipo.data.schema import load_dataset
    from clipo.errors import SchemaError

    df = load_dataset(path)
    prompts, solutions = [], []
    for row, (prompt, extra) in enumerate(zip(df["prompt"], df["extra_info"], strict=True)):
        solution = extra.get(SOLUTION_KEY)
        if not isinstance(solution, str) or not solution:
            raise SchemaError(f"{path}: row {row}: extra_info[{SOLUTION_KEY!r}] must hold the solution text "
                              f"for SFT, got {solution!r}")
        prompts.append([{"role": m["role"], "content": m["content"]} for m in prompt])
        solutions.append(solution)
    return prompts, solutions


def bare_answers(solutions: list[str], share: float, seed: int) -> list[str]:
    """``solutions`` with a seeded ``share`` of them cut to their final sentence, "The answer is \\boxed{N}.":
    the demonstrations of a teacher that often gives the answer without its work (MiniSFT.bare_answer_share).
    The rows cut are a pure function of (seed, number of rows)."""
    from clipo.data.synthetic import FINAL_SENTENCE
    from clipo.errors import SchemaError

    cut = np.random.default_rng(seed).random(len(solutions)) < share
    out = []
    for row, (solution, bare) in enumerate(zip(solutions, cut, strict=True)):
        if bare:
            if FINAL_SENTENCE not in solution:
                raise SchemaError(f"solution of training row {row} has no final sentence {FINAL_SENTENCE!r} to "
                                  f"keep as its bare answer (MiniSFT.bare_answer_share={share}): {solution!r}")
            solution = FINAL_SENTENCE + solution.rsplit(FINAL_SENTENCE, 1)[1]
        out.append(solution)
    return out


def tokenize_examples(tokenizer, prompts, solutions) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, solution ids + eos) per example, the prompt rendered as for generation."""
    from clipo.generation import render_prompt

    prompt_ids = tokenizer([render_prompt(tokenizer, p) for p in prompts], add_special_tokens=False)["input_ids"]
    solution_ids = tokenizer(list(solutions), add_special_tokens=False)["input_ids"]
    return [(p, s + [tokenizer.eos_token_id]) for p, s in zip(prompt_ids, solution_ids, strict=True)]


def batch_indices(n_examples: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Example indices of one step: epochs of seeded permutations, a pure function of (seed, step)."""
    start = step * batch_size
    positions = np.arange(start, start + batch_size)
    epochs = positions // n_examples
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(epochs):
        perm = np.random.default_rng([seed, int(epoch)]).permutation(n_examples)
        sel = epochs == epoch
        out[sel] = perm[positions[sel] % n_examples]
    return out


def collate(examples, pad_id: int):
    """Right-padded inputs with labels = -100 on prompt and padding (loss on the solution only)."""
    import torch

    length = max(len(p) + len(s) for p, s in examples)
    input_ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, -100)
    for i, (p, s) in enumerate(examples):
        n = len(p) + len(s)
        input_ids[i, :n] = torch.tensor(p + s)
        attention_mask[i, :n] = 1
        labels[i, len(p):n] = torch.tensor(s)
    return input_ids, attention_mask, labels


def lr_factor(step: int, cfg: MiniSFT) -> float:
    """Linear warm-up to the peak, then cosine decay to 10% of it at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def default_checkpoint_dir(out: Path) -> Path:
    """Beside the output folder, so the atomic rename of the output never touches it."""
    return out.parent / f"{out.name}.sft-checkpoint"


def _fingerprint(cfg: MiniSFT, seed: int, data_path: Path, tokenizer) -> dict:
    """What a checkpoint must match to be resumed: settings, data and the (deterministic) tokenizer."""
    return {"config": asdict(cfg), "seed": seed, "data": data_path.name, "data_bytes": data_path.stat().st_size,
            "tokenizer": tokenizer.backend_tokenizer.to_str()}


def run_sft(data_path: str | os.PathLike, out: str | os.PathLike, cfg: MiniSFT | None = None, seed: int = 0,
            checkpoint_dir: str | os.PathLike | None = None, stop_after: int | None = None,
            progress: bool = True) -> dict | None:
    """Train the base model and write it (model + tokenizer + training_info.json) atomically to ``out``.

    ``stop_after`` ends this invocation after that many total steps with a checkpoint but no output
    (training in chunks under a time limit); re-running continues. Returns the training info, or
    None when stopped early.
    """
    import torch

    from clipo.hf import save
    from clipo.mini.checkpoint import load as load_checkpoint
    from clipo.mini.model import new_model
    from clipo.mini.tokenizer import build_tokenizer
    from clipo.progress import progress as progress_bar
    from clipo.records import atomic_write

    cfg = cfg or MiniSFT()
    data_path, out = Path(data_path), Path(out)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else default_checkpoint_dir(out)
    prompts, solutions = load_examples(data_path)
    solutions = bare_answers(solutions, cfg.bare_answer_share, seed)

    # ---- plumbing: tokenizer, model, optimiser, resume -------------------------------------------
    tokenizer = build_tokenizer([m["content"] for p in prompts for m in p] + solutions, vocab_size=cfg.vocab_size)
    fingerprint = _fingerprint(cfg, seed, data_path, tokenizer)
    state = None
    if (ckpt_dir / CHECKPOINT_FILE).is_file():
        state = load_checkpoint(ckpt_dir / CHECKPOINT_FILE)
        if state.get("fingerprint") != fingerprint:
            print(f"clipo sft: ignoring checkpoint {ckpt_dir} (made with other settings or data)")
            state = None
    examples = tokenize_examples(tokenizer, prompts, solutions)
    model = new_model(tokenizer, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                      num_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size,
                      max_position_embeddings=cfg.max_position_embeddings, seed=seed)
    too_long = max(len(p) + len(s) for p, s in examples)
    if too_long > cfg.max_position_embeddings:
        raise ValueError(f"{data_path}: an example has {too_long} tokens > max_position_embeddings="
                         f"{cfg.max_position_embeddings}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    step, losses, seconds = 0, [], 0.0
    torch.manual_seed(seed)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        step, losses, seconds = state["step"], state["losses"], state["seconds"]

    def checkpoint() -> None:
        state = {"fingerprint": fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "torch_rng": torch.get_rng_state(), "step": step,
                 "losses": losses, "seconds": seconds}
        atomic_write(ckpt_dir / CHECKPOINT_FILE, lambda tmp: torch.save(state, tmp))

    # ---- the algorithm: next-token cross-entropy on solution tokens ----------------------------
    model.train()
    last = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = progress_bar(total=cfg.steps, initial=step, desc="sft", unit="step", disable=not progress)
    while step < last:
        t0 = time.perf_counter()
        # Sorted by length and cut into micro-batches, so each pads only to its own longest example (a
        # whole batch padded to its longest was 1.5× the real tokens); the gradient is the batch's token mean.
        batch = sorted((examples[i] for i in batch_indices(len(examples), cfg.batch_size, step, seed)),
                       key=lambda e: len(e[0]) + len(e[1]))
        n_targets = sum(len(solution) for _, solution in batch)
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for micro in np.array_split(np.arange(len(batch)), min(cfg.micro_batches, len(batch))):
            input_ids, attention_mask, labels = collate([batch[i] for i in micro], tokenizer.pad_token_id)
            part = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                         num_items_in_batch=n_targets).loss
            part.backward()
            loss += part.detach()
        optimizer.step()
        schedule.step()
        step += 1
        seconds += time.perf_counter() - t0
        losses.append(round(loss.item(), 5))
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{schedule.get_last_lr()[0]:.1e}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == last:
            checkpoint()
    bar.close()
    if step < cfg.steps:
        return None

    # ---- output ------------------------------------------------------------------------------------
    info = {
        "config": asdict(cfg), "seed": seed, "data": str(data_path), "n_examples": len(examples),
        "n_parameters": sum(p.numel() for p in model.parameters()), "vocab_size": len(tokenizer),
        "steps": step, "final_loss": float(np.mean(losses[-10:])), "seconds_per_step": seconds / max(step, 1),
        "losses": losses,
    }
    model.eval()
    save(model, tokenizer, out, extra_files={"training_info.json": json.dumps(info, indent=2) + "\n"})
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return info


def main(args) -> int:
    """Handler of ``clipo sft`` (see clipo.mini.commands)."""
    from clipo.data.registry import get_dataset

    overrides = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "bare_answer_share")
                 if getattr(args, k) is not None}
    cfg = replace(MiniSFT(), **overrides)
    data_path = Path(args.data_dir) / get_dataset("mini_train").path
    info = run_sft(data_path, args.out, cfg=cfg, seed=args.seed, stop_after=args.stop_after)
    if info is None:
        print(f"clipo sft: stopped after step {args.stop_after}; re-run to continue")
    else:
        print(f"clipo sft: trained {args.out} ({info['n_parameters']:,} parameters, {info['steps']} steps, "
              f"final loss {info['final_loss']:.3f}, {info['seconds_per_step']:.2f} s/step)")
    return 0
