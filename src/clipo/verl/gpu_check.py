"""Prepared GPU check of CLIPO's GPU-side pieces — torch + transformers only (no verl, SGLang or Ray).

``PYTHONPATH=src python -m clipo.verl.gpu_check --device cuda --out gpu_check.json``
(``--device cpu`` runs the same checks on CPU; the test suite does that with small sizes). Prints one
line per check (name, PASS/FAIL, measured value and its limit), then the timings; ``--out`` also gets
them as JSON; exit status 1 when a check fails. Under 8 minutes on one GPU (seconds on an H100).

1. Hidden-state hook, fp32: a tiny random Qwen2 runs one packed (remove-padding) forward with the
   final-norm hook of ``clipo.verl.pooling`` — the code the verl worker patch runs — and the pooled
   response states must equal HF's ``output_hidden_states[-1]`` averaged per sequence (both one-token
   shifts), on the device and against CPU.
2. The same in bf16 at the real widths of the paper's models (Qwen2.5-3B: hidden 2048; Qwen2.5-7B:
   hidden 3584; two decoder layers each, random weights): relative error against HF's own per-sequence
   states within bf16 rounding.
3. The whole contrastive step (``clipo.contrastive.ClipoHeadTrainer``: head forward, loss, reward,
   AdamW step) on device tensors must equal the CPU result (SupCon and SoftNN; InfoNCE draws its
   positive from the device's RNG stream, so it is checked for range only).
4. Timing: the contrastive reward and the full head step at Track I's scale (B = 8192 rollouts in groups
   of 16, d = 512, pooled size 2048) and Track II's (B = 2048, d = 2048, pooled size 3584), and the
   cost of the hook on a bf16 packed forward at width 2048.
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
BF16_TOLERANCE = 3e-2
"""Relative error allowed between the packed bf16 hook and HF's per-sequence bf16 states (bf16 keeps
8 bits of mantissa, ≈ 4e-3 per rounding, over two layers and different attention kernels)."""

REAL_WIDTHS = {
    "qwen2.5-3b": dict(hidden_size=2048, intermediate_size=11008, num_attention_heads=16, num_key_value_heads=2),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4),
}
"""Widths of the paper's Qwen2.5 models (their config.json), with two layers and a small vocabulary."""

TIMING_SCALES = {"track_I": (8192, 16, 512, 2048), "track_II": (2048, 16, 2048, 3584)}
"""(rollouts per step, group size, head output size d, pooled hidden size) of the paper's tracks."""


def tiny_qwen2(seed: int = 0, vocab_size: int = 211, layers: int = 2, **widths):
    """A random Qwen2 (64 wide unless ``widths`` give the real sizes), in eval mode."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    shape = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2) | widths
    cfg = Qwen2Config(vocab_size=vocab_size, num_hidden_layers=layers, max_position_embeddings=256, **shape)
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


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


def bf16_hook_error(device: str, widths: dict) -> float:
    """Relative error of the bf16 packed hook against HF's per-sequence bf16 last hidden states."""
    model = tiny_qwen2(vocab_size=4096, **widths).to(torch.bfloat16)
    batch = packed_batch(n=8, vocab=4096)
    return relative_error(hook_states(model, batch, device), reference_states(model, batch, device))


def time_hook(device: str, widths: dict, repeats: int) -> dict:
    """A bf16 packed forward (8 sequences) with and without the pooling hook, in milliseconds."""
    model = tiny_qwen2(vocab_size=4096, **widths).to(torch.bfloat16).to(device)
    batch = packed_batch(n=8, vocab=4096)
    request = pooling_index(batch["cu_seqlens"], batch["prompt_lengths"], batch["masks"])
    inputs = {"input_ids": batch["input_ids"].to(device), "position_ids": batch["position_ids"].to(device),
              "use_cache": False}

    @torch.no_grad()
    def plain():
        model(**inputs)

    @torch.no_grad()
    def hooked():
        with capture_pooled(model, request):
            model(**inputs)

    return {"forward_ms": _timed(plain, device, repeats), "forward_with_hook_ms": _timed(hooked, device, repeats)}


def run(device: str, batch: int | None, group: int, dim: int | None, hidden: int | None, repeats: int,
        real_widths: bool = True) -> dict:
    """All checks and timings; ``batch``/``dim``/``hidden`` replace the tracks' timing scales (tests)."""
    report: dict = {"device": device, "torch": torch.__version__, "checks": {}, "timing": {}}
    if device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(device)
    checks = report["checks"]

    def check(name: str, value: float, limit: float, passed: bool | None = None):
        checks[name] = {"value": value, "limit": limit, "passed": value <= limit if passed is None else passed}

    model, packed = tiny_qwen2(), packed_batch()
    cpu_hook = hook_states(model, packed, "cpu")
    for shift in (0, 1):
        on_device = hook_states(model, packed, device, shift)
        check(f"hook_vs_hf_shift{shift}", float((on_device - reference_states(model, packed, device, shift))
                                               .abs().max()), TOLERANCE)
    check("hook_device_vs_cpu", float((hook_states(model, packed, device) - cpu_hook).abs().max()), TOLERANCE)
    if real_widths:
        for name, widths in REAL_WIDTHS.items():
            check(f"hook_vs_hf_bf16_{name}_width", bf16_hook_error(device, widths), BF16_TOLERANCE)

    pooled, correct, groups = contrastive_inputs(256, group, 96)
    for loss in ("supcon", "softnn"):
        r_dev, m_dev, w_dev = head_step(device, loss, pooled, correct, groups, 32)
        r_cpu, m_cpu, w_cpu = head_step("cpu", loss, pooled, correct, groups, 32)
        check(f"{loss}_reward_device_vs_cpu", float((r_dev - r_cpu).abs().max()), TOLERANCE)
        check(f"{loss}_head_weights_device_vs_cpu", float((w_dev - w_cpu).abs().max()), TOLERANCE)
        check(f"{loss}_loss_device_vs_cpu", abs(m_dev["clipo/loss"] - m_cpu["clipo/loss"]), TOLERANCE)
    r_info, _, _ = head_step(device, "infonce", pooled, correct, groups, 32)
    check("infonce_reward_in_range", float(-r_info.min()), 0.5, bool(((r_info <= 0) & (r_info >= -0.5)).all()))

    scales = TIMING_SCALES if batch is None else {"custom": (batch, group, dim, hidden)}
    for name, (b, g, d, h) in scales.items():
        report["timing"][f"contrastive_{name}"] = time_contrastive(device, b, g, d, h, repeats)
    if real_widths:
        report["timing"]["hook_qwen2.5-3b_width"] = time_hook(device, REAL_WIDTHS["qwen2.5-3b"], repeats)
    report["passed"] = all(c["passed"] for c in checks.values())
    return report


def format_lines(report: dict) -> list[str]:
    """One line per check, then one per timing."""
    lines = [f"device {report['device']} {report.get('gpu', '')} torch {report['torch']}".rstrip()]
    for name, c in report["checks"].items():
        lines.append(f"{name:<40} {'PASS' if c['passed'] else 'FAIL'}  {c['value']:.3g} (limit {c['limit']:g})")
    for name, t in report["timing"].items():
        lines.append(f"{'timing ' + name:<40} " + ", ".join(f"{k} {v:.4g}" for k, v in t.items()))
    lines.append("all checks passed" if report["passed"] else "SOME CHECKS FAILED")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clipo.verl.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, help="time one custom scale instead of Tracks I and II (rollouts per step)")
    p.add_argument("--group-size", type=int, default=16)
    p.add_argument("--dim", type=int, default=512, help="head output size d of the custom scale")
    p.add_argument("--hidden", type=int, default=2048, help="pooled hidden size of the custom scale")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--no-real-widths", action="store_true",
                   help="skip the bf16 checks at the models' real widths (slow on CPU)")
    p.add_argument("--out", help="also write the JSON report here")
    args = p.parse_args(argv)
    report = run(args.device, args.batch, args.group_size, args.dim, args.hidden, args.repeats,
                 real_widths=not args.no_real_widths)
    print("\n".join(format_lines(report)))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
