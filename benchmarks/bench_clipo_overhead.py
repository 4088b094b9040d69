"""CLIPO's cost per RL step in the mini trainer: the same default mini config with CLIPO off and on.

CLIPO should be nearly free: its hidden states come out of the old-log-prob forward that already
happens, and the head is one small linear layer. Both runs advance in alternating chunks of steps
(each chunk resumes its run from the previous chunk's checkpoint), so load on the machine hits both
alike; the first chunk of each run is warm-up and not counted. Step times are the trainer's own
``time/step`` (rollout → update, without checkpoint I/O); the ratio compares medians, which a
momentary load spike on a shared machine moves less than it moves means.

The CLIPO run uses λ = 0 by default: it does all of CLIPO's work (pooling, head forward and backward,
loss, similarity statistics) but trains bit-identical policy weights to the baseline, so both runs
generate the same tokens and the difference is CLIPO's overhead alone, not a different trajectory.
Without ``--model-path`` the policy is a random model of the mini base-model size; since it never
answers correctly, the outcome reward is then replaced by response-length parity so that groups are
mixed and CLIPO has anchors to train on, as in a real run.

    .venv/bin/python benchmarks/bench_clipo_overhead.py [--model-path results/mini/base-model --data-dir data]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
from pathlib import Path


def prepare_random_base(root: Path) -> tuple[Path, Path]:
    """Synthetic data and a random policy of the mini base-model size (MiniSFT) in ``root``."""
    from clipo.data.synthetic import mini_corpus, write_mini
    from clipo.methods import MiniSFT
    from clipo.hf import save
    from clipo.mini.model import new_model
    from clipo.mini.tokenizer import build_tokenizer

    write_mini(root / "data", seed=0, n_train=512, n_eval=8)
    tokenizer = build_tokenizer(mini_corpus(root / "data"), vocab_size=MiniSFT.vocab_size)
    save(new_model(tokenizer), tokenizer, root / "base")
    return root / "base", root / "data"


def use_parity_reward() -> None:
    """Outcome reward = even response length: mixed groups from a model that cannot solve anything."""
    import clipo.rewards

    clipo.rewards.compute_score = lambda data_source, text, ground_truth, extra_info=None: float(
        len(text) % 2 == 0
    )


def train_args(
    model: Path, data: Path, out: Path, clipo: str, steps: int, chunk: int, threads: int, extra: list[str]
) -> argparse.Namespace:
    from clipo.cli import build_parser

    return build_parser().parse_args(
        [
            "train",
            "--backend",
            "mini",
            "--track",
            "mini",
            "--method",
            "grpo",
            "--clipo",
            clipo,
            "--seed",
            "0",
            "--model-path",
            str(model),
            "--data-dir",
            str(data),
            "--out",
            str(out),
            "--steps",
            str(steps),
            "--checkpoint-every",
            str(chunk),
            "--test-freq",  # the RL step is what is measured; validation (not in time/step) would only add wall time
            "-1",
            "--threads",
            str(threads),
            *extra,
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-path", help="base-model folder (default: a random model of the mini size)")
    p.add_argument("--data-dir", help="data folder with mini/train.parquet (needed with --model-path)")
    p.add_argument("--steps", type=int, default=11, help="steps per run, warm-up chunk included")
    p.add_argument("--chunk", type=int, default=1, help="steps per turn before switching runs")
    p.add_argument("--lam", type=float, default=0.0, help="λ of the CLIPO run (0: same trajectory)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    from clipo.mini.train import main as train_main

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model_path:
            model, data = Path(args.model_path), Path(args.data_dir or "data")
        else:
            model, data = prepare_random_base(tmp)
            use_parity_reward()
        runs = {
            "baseline": (tmp / "off", "none", []),
            "clipo": (tmp / "on", "infonce", ["--lam", str(args.lam)]),
        }
        for until in range(args.chunk, args.steps + 1, args.chunk):
            for name, (out, clipo, extra) in runs.items():
                with contextlib.redirect_stderr(io.StringIO()):  # progress bars of 2-step chunks are noise
                    train_main(train_args(model, data, out, clipo, until, args.chunk, args.threads, extra))
                print(f"{name}: steps {until - args.chunk + 1}-{until} done", flush=True)
        rows = {
            name: [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            for name, (out, _, _) in runs.items()
        }

    measured = {name: [r for r in rs if r["step"] > args.chunk] for name, rs in rows.items()}
    for name, rs in measured.items():
        parts = " ".join(
            f"{k.removeprefix('time/')}={statistics.mean(r[k] for r in rs):.3f}s"
            for k in ("time/rollout", "time/scoring", "time/forward", "time/clipo", "time/update")
        )
        print(
            f"{name:8s}: median {statistics.median(r['time/step'] for r in rs):.3f} s/step, "
            f"mean {statistics.mean(r['time/step'] for r in rs):.3f} over {len(rs)} steps ({parts})"
        )
    print(
        f"CLIPO anchors per step (mean fraction of rollouts): "
        f"{statistics.mean(r['clipo/anchor_frac'] for r in measured['clipo']):.2f}"
    )
    ratio = statistics.median(r["time/step"] for r in measured["clipo"]) / statistics.median(
        r["time/step"] for r in measured["baseline"]
    )
    print(f"ratio (CLIPO ÷ baseline step time) = {ratio:.3f}")


if __name__ == "__main__":
    main()
