"""verl's own v1 trainer on CPU through ``clipo train --backend verl --track mini``: Ray, TransferQueue,
the FSDP2 engine on gloo with the hidden-state patch, the ``hf_cpu`` rollout, verl's checkpoints and
model merger (``clipo.verl.cpu``).

The policy is a random tiny Qwen2 with the mini tokenizer, and the reward is this file's
``even_length_score`` (1 for a response of an even number of characters): a random policy then has
groups with correct and wrong rollouts, which is all the contrastive reward needs. Each run is a Ray
cluster of its own (``ray.init`` in verl's driver, ≤ 2 CPU threads: one per process); the driver's
exit takes it down.

About 7.5 minutes on 2 cores, so these run where CLIPO_VERL_CPU_TEST=1: .ci/run sets it in a step of its
own after `make test`, which keeps the default suite within its ~20-minute budget.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip(
    "transfer_queue", reason="verl's v1 trainer needs TransferQueue (requirements/test-extra.lock)"
)

from safetensors.torch import load_file  # noqa: E402

from clipo.verl.trainer import HEAD_CHECKPOINT, load_head_state  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.verl_cpu,
    pytest.mark.skipif(os.environ.get("CLIPO_VERL_CPU_TEST") != "1",
                       reason="CLIPO_VERL_CPU_TEST=1 not set (.ci/run sets it after make test; ~7.5 min of Ray runs)"),
]
G = 4
RUN_TIMEOUT_S = 600


def even_length_score(data_source, solution_str, ground_truth, extra_info=None, **_):
    """Test reward: independent of the answer, so groups of a random policy are mixed."""
    return float(len(solution_str) % 2 == 0)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Mini data (16 training problems) and a random tiny policy whose tokenizer fits its prompts."""
    from clipo.mini.model import new_model
    from clipo.mini.sft import load_examples
    from clipo.mini.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("verl-cpu")
    data = root / "data"
    subprocess.run([sys.executable, "-m", "clipo.cli", "data", "synth", "--data-dir", str(data),
                    "--n-train", "16", "--n-eval", "8"], check=True, capture_output=True, cwd=root)
    prompts, solutions = load_examples(data / "mini" / "train.parquet")
    tokenizer = build_tokenizer([m["content"] for p in prompts for m in p] + solutions)
    torch.manual_seed(0)
    model = new_model(tokenizer)
    model.save_pretrained(root / "policy")
    tokenizer.save_pretrained(root / "policy")
    return data, root / "policy"


def _command(inputs, out, method="grpo", clipo="infonce", steps=1, extra=()):
    data, policy = inputs
    return [
        sys.executable, "-m", "clipo.cli", "train", "--backend", "verl", "--track", "mini",
        "--method", method, "--clipo", clipo, "--data-dir", str(data), "--model-path", str(policy),
        "--out", str(out), "--steps", str(steps), "--train-batch-size", "4", "--group-size", str(G),
        "--max-new-tokens", "16",
        f"reward.custom_reward_function.path={__file__}",
        "reward.custom_reward_function.name=even_length_score",
        f"trainer.rollout_data_dir={out}/rollouts",
        "trainer.test_freq=-1",
        *extra,
    ]


def _train(*args, **kwargs) -> subprocess.CompletedProcess:
    out = args[1]
    proc = subprocess.run(_command(*args, **kwargs), capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          cwd=out.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    # Hydra keeps its record in the run folder, never a dated outputs/ in the working directory
    assert (out / "hydra" / ".hydra" / "config.yaml").is_file() and not (out.parent / "outputs").exists()
    return proc


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------- resume
def _train_killed_after_checkpoint(inputs, out, step, **kwargs) -> None:
    """Start a run and SIGKILL its whole process group (launcher, verl driver, Ray) once verl's
    checkpoint of ``step`` is complete and the step is logged, i.e. during the next step. (verl saves a
    step's checkpoint before it validates and logs that step; a kill in that window resumes exactly but
    leaves that step without a metrics row, which the resumed run says on stderr.)"""
    proc = subprocess.Popen(_command(inputs, out, **kwargs), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd=out.parent)
    tracker = out / "checkpoints" / "latest_checkpointed_iteration.txt"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while not (tracker.exists() and tracker.read_text().strip() == str(step)
                   and (out / "metrics.jsonl").exists() and step in [r["step"] for r in _metrics(out)]):
            assert proc.poll() is None, f"run ended (status {proc.returncode}) before its step-{step} checkpoint"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_killed_run_resumes_to_the_uninterrupted_result(inputs, tmp_path):
    extra = ("trainer.save_freq=2",)
    full, killed = tmp_path / "full", tmp_path / "killed"
    _train(inputs, full, steps=3, extra=extra)
    _train_killed_after_checkpoint(inputs, killed, step=2, steps=3, extra=extra)
    assert not (killed / "summary.json").exists() and not (killed / "checkpoints" / "global_step_3").exists()
    _train(inputs, killed, steps=3, extra=extra)  # the same command: verl resumes from global_step_2

    assert [r["step"] for r in _metrics(killed)] == [1, 2, 3]
    for a, b in zip(_metrics(full), _metrics(killed), strict=True):  # same rollouts, rewards, losses
        for key in ("reward/outcome", "reward/contrastive", "clipo/loss", "loss/policy", "actor/grad_norm"):
            if a[key] is None:  # no anchor in the step: no contrastive loss (NaN is logged as null)
                assert b[key] is None, (a["step"], key)
            else:
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["step"], key)
    # the contrastive head and its AdamW, saved with verl's step-3 checkpoint
    head_a, head_b = (load_head_state(d / "checkpoints" / "global_step_3" / HEAD_CHECKPOINT) for d in (full, killed))
    for name, tensor in head_a["head"].items():
        torch.testing.assert_close(head_b["head"][name], tensor, rtol=1e-5, atol=1e-7)
    moments_a, moments_b = head_a["optimizer"]["state"], head_b["optimizer"]["state"]
    assert moments_a.keys() == moments_b.keys()
    for i in moments_a:
        # the head steps only in steps with an anchor (a group with correct and wrong rollouts)
        assert float(moments_a[i]["step"]) == float(moments_b[i]["step"]) >= 1
        torch.testing.assert_close(moments_b[i]["exp_avg_sq"], moments_a[i]["exp_avg_sq"], rtol=1e-5, atol=1e-12)
    # the policy merged by verl's model merger
    final_a, final_b = (load_file(d / "final" / "model.safetensors") for d in (full, killed))
    assert final_a.keys() == final_b.keys()
    for name, tensor in final_a.items():
        torch.testing.assert_close(final_b[name], tensor, rtol=1e-5, atol=1e-7)
    # verl's merger writes bf16: most of 3 steps at lr 3e-5 round away, small weights still show them
    base = load_file(inputs[1] / "model.safetensors")
    assert any(not torch.equal(t, base[k].to(t.dtype)) for k, t in final_a.items()), "the policy never moved"
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["backend"] == "verl" and summary["final_step"] == 3


# ------------------------------------------------------------------------------------- methods
def _grpo_advantages(scores: dict[str, list[float]]) -> list[float]:
    """verl's GRPO outcome advantage per rollout: (score − group mean) / (group std + 1e-6)."""
    out = []
    for group in scores.values():
        t = torch.tensor(group, dtype=torch.float64)
        out += ((t - t.mean()) / (t.std() + 1e-6)).tolist() if len(t) > 1 else [0.0]
    return out


def _dumped_scores(out: Path, step: int) -> dict[str, list[float]]:
    """Rollout scores verl dumped after the step (rm_scores summed: outcome + contrastive), by prompt."""
    groups: dict[str, list[float]] = {}
    for line in (out / "rollouts" / f"{step}.jsonl").read_text().splitlines():
        row = json.loads(line)
        groups.setdefault(row["uid"].rsplit("_", 2)[0], []).append(row["score"])
    return groups


@pytest.mark.parametrize(
    "method, clipo",
    [("gspo", "infonce"), ("dapo", "infonce"), ("gmpo", "infonce"), ("grpo", "infonce-fixed")],
)
def test_method_with_clipo_trains_on_the_contrastive_reward(inputs, tmp_path, method, clipo):
    out = tmp_path / f"{method}-{clipo}"
    _train(inputs, out, method=method, clipo=clipo, steps=1)
    row = _metrics(out)[0]
    assert row["clipo/nontrivial_groups"] > 0 and row["reward/contrastive"] < 0
    scores = _dumped_scores(out, 1)
    flat = [s for group in scores.values() for s in group]
    assert any(s not in (0.0, 1.0) for s in flat), "no contrastive reward in verl's token-level rewards"
    outcome = {k: [float(s > 0.5) for s in g] for k, g in scores.items()}
    # verl's advantage statistics come from the rewards with the contrastive term, not from the outcome
    # (GSPO/DAPO/GMPO change the policy loss, not GRPO's advantage; DAPO's group filter keeps mixed groups)
    with_cl, without = _grpo_advantages(scores), _grpo_advantages(outcome)
    assert row["advantage/max"] == pytest.approx(max(with_cl), abs=1e-4)
    assert row["advantage/min"] == pytest.approx(min(with_cl), abs=1e-4)
    assert max(without) != pytest.approx(max(with_cl), abs=1e-4)
    assert (out / "final" / "model.safetensors").exists()
