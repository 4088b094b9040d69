"""Seconds per GRPO step: TRL's GRPOTrainer vs the mini trainer, same model, prompts and sizes, one process.

The peer a user would otherwise pick for GRPO on a small model is TRL's ``GRPOTrainer`` (a benchmark
extra: ``pip install -e '.[bench]'``, never a runtime dependency). Both train GRPO without CLIPO
on the same policy (a random model of the mini base-model size unless ``--model-path`` is given),
the same training prompts rendered by the same chat template, and the same sizes: 8 prompts × G = 8
rollouts per step at temperature 1.0, up to 64 new tokens with the KV cache, two optimiser updates of
32 rollouts per step, one PPO epoch, clip 0.2, KL coefficient 0.001 (k3 estimator), learning rate
1e-4, fp32, the same reward function, on the same number of threads.

How a "step" maps: one mini-trainer step generates 64 rollouts and takes 2 optimiser steps; TRL does
the same with ``steps_per_generation=2`` (one generation batch of 64 serves 2 optimiser steps of 32),
so one RL step = 2 TRL optimiser steps. Times are wall-clock between step ends (TRL: a callback;
ours: the trainer's ``time/step``); the first ``--warmup`` RL steps of each run are not counted (the
first ``generate`` in a process is slow). The two trainers take turns in ABBA order over
``--repeats`` pairs of runs, so a drift in machine load hits both alike; the ratio compares medians.

    .venv/bin/python benchmarks/bench_vs_trl.py [--model-path results/mini/base-model --data-dir data]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench_clipo_overhead import prepare_random_base, train_args

PROMPTS, UPDATES, LR = 8, 2, 1e-4
"""The compared setup, fixed here so the ratio stays comparable as the mini track's recipe changes: 8 prompts
× G per step in 2 optimiser updates (the mini track's sizes when this benchmark was written)."""


def ours(model: Path, data: Path, out: Path, steps: int, threads: int) -> list[float]:
    """Seconds of each RL step of the mini trainer (GRPO, CLIPO off, default mini sizes)."""
    from clipo.mini.train import main

    sizes = ["--train-batch-size", str(PROMPTS), "--mini-batch-size", str(PROMPTS // UPDATES), "--lr", str(LR)]
    args = train_args(model, data, out, "none", steps, chunk=steps, threads=threads, extra=sizes)
    with contextlib.redirect_stderr(io.StringIO()):
        main(args)
    return [json.loads(line)["time/step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def trl(model_path: Path, data: Path, out: Path, steps: int, threads: int) -> list[float]:
    """Seconds of each RL step (2 optimiser steps, one generation batch) of TRL's GRPOTrainer."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from clipo.data.registry import get_dataset
    from clipo.data.schema import load_dataset
    from clipo.methods import METHODS, TRACKS
    from clipo.hf import load
    from clipo.rewards import compute_score

    torch.set_num_threads(threads)
    mini, grpo = TRACKS["mini"], METHODS["grpo"]
    df = load_dataset(data / get_dataset(mini.train_files[0]).path)
    dataset = Dataset.from_list(
        [
            {
                "prompt": [dict(m) for m in row["prompt"]],
                "ground_truth": str(row["reward_model"]["ground_truth"]),
                "data_source": row["data_source"],
            }
            for row in df.to_dict("records")
        ]
    )

    def outcome_reward(completions, ground_truth, data_source, **_):
        return [
            compute_score(ds, c[0]["content"], gt)
            for c, gt, ds in zip(completions, ground_truth, data_source)
        ]

    config = GRPOConfig(
        output_dir=str(out),
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=10**6,
        seed=0,
        max_steps=steps * UPDATES,
        per_device_train_batch_size=PROMPTS // UPDATES * mini.rollout_n,
        gradient_accumulation_steps=1,
        steps_per_generation=UPDATES,
        num_generations=mini.rollout_n,
        num_iterations=1,
        max_completion_length=mini.max_response_length,
        temperature=mini.rollout_temperature,
        top_p=1.0,
        top_k=0,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.01,
        max_grad_norm=1.0,
        beta=grpo.kl_loss_coef,
        epsilon=grpo.clip_ratio_low,
        epsilon_high=grpo.clip_ratio_high,
        loss_type="dapo",
    )

    class StepClock(TrainerCallback):
        ends: list[float] = []

        def on_train_begin(self, args, state, control, **kw):
            self.ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            if state.global_step % UPDATES == 0:
                self.ends.append(time.perf_counter())

    policy, tokenizer = load(model_path)
    clock = StepClock()
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=outcome_reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    trainer.train()
    return [b - a for a, b in zip(clock.ends, clock.ends[1:])]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-path", help="base-model folder (default: a random model of the mini size)")
    p.add_argument("--data-dir", help="data folder with mini/train.parquet (needed with --model-path)")
    p.add_argument("--steps", type=int, default=4, help="RL steps of each run, warm-up included")
    p.add_argument("--repeats", type=int, default=2, help="runs of each trainer (ABBA order)")
    p.add_argument("--warmup", type=int, default=1, help="first RL steps not counted")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model_path:
            model, data = Path(args.model_path), Path(args.data_dir or "data")
        else:
            model, data = prepare_random_base(tmp)
        trainers = {"ours": ours, "trl": trl}
        counted: dict[str, list[float]] = {"ours": [], "trl": []}
        for i in range(args.repeats):
            for name in ("ours", "trl") if i % 2 == 0 else ("trl", "ours"):
                ts = trainers[name](model, data, tmp / f"{name}{i}", args.steps, args.threads)
                counted[name] += ts[args.warmup :]
                print(
                    f"{name} run {i + 1}: s/step {', '.join(f'{t:.2f}' for t in ts)} "
                    f"(first {args.warmup} not counted)",
                    flush=True,
                )

    per_step = {name: statistics.median(ts) for name, ts in counted.items()}
    for name, ts in counted.items():
        print(
            f"{name:4s}: median {per_step[name]:.3f} s/step "
            f"(mean {statistics.mean(ts):.3f} over {len(ts)} steps)"
        )
    print(f"threads: {args.threads} (torch.get_num_threads() = {torch.get_num_threads()})")
    print(f"ratio (TRL s/step ÷ ours) = {per_step['trl'] / per_step['ours']:.3f}")


if __name__ == "__main__":
    main()
