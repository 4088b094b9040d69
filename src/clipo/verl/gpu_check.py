"""Prepared GPU check of CLIPO's GPU-side pieces — torch + transformers only (no verl, SGLang or Ray).

``PYTHONPATH=src python -m clipo.verl.gpu_check --device cuda --out gpu_check.json``
(``--device cpu`` runs the same checks on CPU; the test suite does that with small sizes).

1. Hidden-state hook: a tiny random Qwen2 runs one packed (remove-padding) forward with the final-norm
   hook of ``clipo.verl.pooling`` — the code the verl worker patch runs — and the pooled response states
   must equal HF's ``output_hidden_states[-1]`` averaged per sequence, on the device and against CPU.
2. The whole contrastive step (``clipo.contrastive.ClipoHeadTrainer``: head forward, loss, reward,
   AdamW step) on device tensors must equal the CPU result (SupCon and SoftNN; InfoNCE draws its
   positive from the device's RNG stream, so it is checked for shape and range only).
3. Timing of the contrastive reward (loss + reward, and the full head step) for B = 8192 rollouts in
   groups of 16, d = 512 (Track I), pooled hidden size 2048 (Qwen2.5-3B).
Prints one JSON document (also written to ``--out``); exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from clipo.contrastive import ClipoHeadTrainer, contrastive_loss, contrastive_reward
from clipo.methods import Clipo
from clipo.verl.pooling import capture_pooled, pooling_index

TOLERANCE = 1e-4


def tiny_qwen2(seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=211,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return Qwen2ForCausalLM(cfg).eval()


def packed_batch(n: int = 8, seed: int = 1, vocab: int = 211) -> dict:
    """n prompt+response sequences of random lengths, packed as verl's remove-padding path feeds them."""
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(3, 12, (n,), generator=g)
    responses = torch.randint(1, 20, (n,), generator=g)
    seqs = [
        torch.randint(0, vocab, (int(p + r),), generator=g) for p, r in zip(prompts, responses, strict=True)
    ]
    masks = [torch.ones(int(r), dtype=torch.long) for r in responses]
    lengths = torch.tensor([len(s) for s in seqs])
    return {
        "seqs": seqs,
        "prompt_lengths": prompts,
        "masks": masks,
        "cu_seqlens": torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
        "input_ids": torch.cat(seqs)[None],
        "position_ids": torch.cat([torch.arange(len(s)) for s in seqs])[None],
    }


@torch.no_grad()
def hook_states(model, batch: dict, device: str, shift: int = 0) -> torch.Tensor:
    """Pooled states from ONE packed forward, through the worker patch's hook."""
    model = model.to(device)
    request = pooling_index(batch["cu_seqlens"], batch["prompt_lengths"], batch["masks"], shift)
    with capture_pooled(model, request) as captured:
        model(
            input_ids=batch["input_ids"].to(device),
            position_ids=batch["position_ids"].to(device),
            use_cache=False,
        )
    return captured["pooled"].cpu()


@torch.no_grad()
def reference_states(model, batch: dict, device: str, shift: int = 0) -> torch.Tensor:
    """HF's last hidden state (post-norm) of each sequence on its own, averaged over its response."""
    model = model.to(device)
    rows = []
    for seq, p, mask in zip(batch["seqs"], batch["prompt_lengths"], batch["masks"], strict=True):
        hidden = model(seq[None].to(device), output_hidden_states=True).hidden_states[-1][0].float().cpu()
        rows.append(hidden[int(p) - shift : int(p) - shift + len(mask)].mean(0))
    return torch.stack(rows)


def contrastive_inputs(batch: int, group: int, hidden: int, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    pooled = torch.randn(batch, hidden, generator=g)
    correct = torch.rand(batch, generator=g) < 0.5
    groups = torch.arange(batch) // group
    return pooled, correct, groups


def head_step(device: str, loss: str, pooled, correct, groups, output_size: int):
    """One ClipoHeadTrainer step on ``device``: rewards, metrics and the updated head weights (on CPU)."""
    trainer = ClipoHeadTrainer(
        pooled.shape[1], Clipo(loss=loss, head_output_size=output_size), seed=0, device=device
    )
    reward, metrics = trainer.step(pooled.to(device), correct.to(device), groups.to(device))
    weights = torch.cat([p.detach().cpu().reshape(-1) for p in trainer.head.parameters()])
    return reward.cpu(), metrics, weights


def _timed(fn, device: str, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def time_contrastive(device: str, batch: int, group: int, dim: int, hidden: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(3)
    emb = torch.nn.functional.normalize(torch.randn(batch, dim, generator=g), dim=-1).to(device)
    correct = (torch.rand(batch, generator=g) < 0.5).to(device)
    groups = (torch.arange(batch) // group).to(device)
    gen = torch.Generator(device=device).manual_seed(0)

    def reward():
        loss, anchors = contrastive_loss(emb, correct, groups, "infonce", 0.05, gen)
        return contrastive_reward(loss, anchors, 0.2)

    pooled = torch.randn(batch, hidden, generator=g).to(device)
    trainer = ClipoHeadTrainer(hidden, Clipo(head_output_size=dim), seed=0, device=device)
    return {
        "batch": batch,
        "group_size": group,
        "dim": dim,
        "hidden": hidden,
        "reward_ms": _timed(reward, device, repeats),
        "head_step_ms": _timed(lambda: trainer.step(pooled, correct, groups), device, repeats),
    }


def run(device: str, batch: int, group: int, dim: int, hidden: int, repeats: int) -> dict:
    report: dict = {"device": device, "torch": torch.__version__, "checks": {}}
    if device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(device)
    model, packed = tiny_qwen2(), packed_batch()
    cpu_hook = hook_states(model, packed, "cpu")
    for shift in (0, 1):
        on_device = hook_states(model, packed, device, shift)
        report["checks"][f"hook_vs_hf_shift{shift}"] = float(
            (on_device - reference_states(model, packed, device, shift)).abs().max()
        )
    report["checks"]["hook_device_vs_cpu"] = float(
        (hook_states(model, packed, device) - cpu_hook).abs().max()
    )

    pooled, correct, groups = contrastive_inputs(256, group, 96)
    for loss in ("supcon", "softnn"):
        r_dev, m_dev, w_dev = head_step(device, loss, pooled, correct, groups, 32)
        r_cpu, m_cpu, w_cpu = head_step("cpu", loss, pooled, correct, groups, 32)
        report["checks"][f"{loss}_reward_device_vs_cpu"] = float((r_dev - r_cpu).abs().max())
        report["checks"][f"{loss}_head_weights_device_vs_cpu"] = float((w_dev - w_cpu).abs().max())
        report["checks"][f"{loss}_loss_device_vs_cpu"] = abs(m_dev["clipo/loss"] - m_cpu["clipo/loss"])
    r_info, _, _ = head_step(device, "infonce", pooled, correct, groups, 32)
    report["infonce_reward_in_range"] = bool(((r_info <= 0) & (r_info >= -0.5)).all())
    report["timing"] = time_contrastive(device, batch, group, dim, hidden, repeats)
    report["passed"] = report["infonce_reward_in_range"] and all(
        v <= TOLERANCE for v in report["checks"].values()
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clipo.verl.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--batch", type=int, default=8192, help="rollouts per step for the timing (Track I: 512 × 16)"
    )
    p.add_argument("--group-size", type=int, default=16)
    p.add_argument("--dim", type=int, default=512, help="head output size d")
    p.add_argument("--hidden", type=int, default=2048, help="pooled hidden size (Qwen2.5-3B: 2048)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", help="also write the JSON report here")
    args = p.parse_args(argv)
    report = run(args.device, args.batch, args.group_size, args.dim, args.hidden, args.repeats)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
