"""The mini RL trainer end to end on a random 2-layer, 32-wide Qwen2 (2 prompts × 4 rollouts, 8 new tokens).

A random model never writes a correct ``\\boxed{}`` answer, so the outcome reward is replaced by a
deterministic function of the response text (even length = correct). That gives mixed groups, hence
non-zero advantages and CLIPO anchors, which is what the trainer's machinery needs to be exercised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from clipo.cli import build_parser
from clipo.cli import main as cli_main
from clipo.errors import ConfigError
from clipo.methods import METHODS, TRACKS, Clipo

TINY = [
    "--train-batch-size",
    "2",
    "--mini-batch-size",
    "1",
    "--group-size",
    "4",
    "--max-new-tokens",
    "8",
    "--threads",
    "1",
]


def fake_score(data_source, solution_str, ground_truth, extra_info=None) -> float:
    return float(len(solution_str) % 2 == 0)


FAKE_REWARD_CLI = (
    "import sys, clipo.rewards as r\n"
    "r.compute_score = lambda ds, s, gt, extra_info=None: float(len(s) % 2 == 0)\n"
    "from clipo.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Synthetic data + a random tiny policy saved as an HF folder (what `clipo sft` would produce)."""
    from clipo.data.synthetic import mini_corpus, write_mini
    from clipo.hf import save
    from clipo.mini.model import new_model
    from clipo.mini.tokenizer import build_tokenizer

    root = tmp_path_factory.mktemp("mini")
    write_mini(root / "data", seed=0, n_train=32, n_eval=2)
    tokenizer = build_tokenizer(mini_corpus(root / "data"), vocab_size=600)
    save(
        new_model(tokenizer, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64),
        tokenizer,
        root / "base",
    )
    return root


@pytest.fixture(autouse=True)
def _fake_reward(monkeypatch):
    monkeypatch.setattr("clipo.rewards.compute_score", fake_score)


def argv(base: Path, out: Path, method="grpo", clipo="none", steps=2, *extra) -> list[str]:
    return [
        "train",
        "--backend",
        "mini",
        "--track",
        "mini",
        "--method",
        method,
        "--clipo",
        clipo,
        "--seed",
        "0",
        "--model-path",
        str(base / "base"),
        "--data-dir",
        str(base / "data"),
        "--out",
        str(out),
        "--steps",
        str(steps),
        *TINY,
        *extra,
    ]


def train(base: Path, out: Path, method="grpo", clipo="none", steps=2, *extra) -> Path:
    from clipo.mini.train import main

    assert main(build_parser().parse_args(argv(base, out, method, clipo, steps, *extra))) == 0
    return out


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "final" / "model.safetensors")


def all_metric_lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def metric_lines(run: Path) -> list[dict]:
    """The training steps' rows (row 0 holds only the validation before training)."""
    return [r for r in all_metric_lines(run) if r["step"] >= 1]


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def last_checkpoint(run: Path) -> dict:
    from clipo.mini import checkpoint

    return checkpoint.load(checkpoint.latest(run / "checkpoints"))


def fresh_head(clipo_cfg: Clipo):
    from clipo.contrastive import ClipoHeadTrainer

    return ClipoHeadTrainer(32, clipo_cfg, seed=0).head.state_dict()


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_loss_path_is_verls_function(base, tmp_path, monkeypatch, method):
    """Every minibatch loss the trainer backpropagates equals verl's loss called directly on its tensors."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo import core_algos
    from verl.utils.config import omega_conf_to_dataclass

    import clipo.mini.policy as mt

    calls = []
    real = mt.minibatch_loss

    def spy(actor_cfg, log_prob, old_log_prob, advantages, response_mask, ref_log_prob=None):
        loss, metrics = real(actor_cfg, log_prob, old_log_prob, advantages, response_mask, ref_log_prob)
        calls.append(
            [
                t.detach().clone() if t is not None else None
                for t in (log_prob, old_log_prob, advantages, response_mask, ref_log_prob, loss)
            ]
        )
        return loss, metrics

    monkeypatch.setattr(mt, "minibatch_loss", spy)
    run = train(base, tmp_path / method, method, "none", 2)

    m = METHODS[method]
    expected_cfg = omega_conf_to_dataclass(
        OmegaConf.create(
            {
                "_target_": "verl.workers.config.ActorConfig",
                "strategy": "fsdp",
                "rollout_n": 4,
                "ppo_micro_batch_size_per_gpu": 4,
                "clip_ratio_low": m.clip_ratio_low,
                "clip_ratio_high": m.clip_ratio_high,
                "loss_agg_mode": m.loss_agg_mode,
            }
        )
    )
    loss_fn = core_algos.get_policy_loss_fn(m.policy_loss)
    # 2 steps × 2 minibatches (DAPO trains on fewer when its refills run out of groups with mixed rewards)
    assert len(calls) == 4 if not m.dynamic_sampling else 2 <= len(calls) <= 4
    assert any(bool(adv.abs().sum() > 0) for _, _, adv, *_ in calls), "advantages must not all vanish"
    for log_prob, old_log_prob, adv, mask, ref_log_prob, loss in calls:
        direct, _ = loss_fn(
            old_log_prob, log_prob, adv, mask, loss_agg_mode=m.loss_agg_mode, config=expected_cfg
        )
        if m.use_kl_loss:
            kld = core_algos.kl_penalty(log_prob, ref_log_prob, "low_var_kl")
            direct = direct + 0.001 * core_algos.agg_loss(kld, mask, m.loss_agg_mode)
        else:
            assert ref_log_prob is None
        torch.testing.assert_close(loss, direct, rtol=0, atol=0)
    rows = metric_lines(run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["loss/policy"] is not None for r in rows)
    assert all(("loss/kl" in r) == m.use_kl_loss for r in rows)


def test_forward_gives_the_models_log_probs_and_pooled_last_hidden_state(base):
    """The single forward equals HF's full forward (log-softmax of logits; hidden_states[-1] pooled)."""
    from clipo.generation import encode_prompts, generate
    from clipo.hf import load
    from clipo.mini.policy import policy_forward

    model, tok = load(base / "base")
    ids, mask = encode_prompts(tok, ["Tom has 3 apples.", "Ann has 12 pears and gets 5 more."])
    torch.manual_seed(0)
    r_ids, r_mask = generate(model, tok, ids, mask, 8, do_sample=True)
    r_mask[0, 5:] = 0  # a shorter first response, so padding after the response is exercised
    with torch.no_grad():
        log_prob, pooled = policy_forward(model, ids, mask, r_ids, r_mask)
        attn = torch.cat([mask, r_mask], 1)
        out = model(
            input_ids=torch.cat([ids, r_ids], 1),
            attention_mask=attn,
            position_ids=(attn.cumsum(-1) - 1).clamp(min=0),
            output_hidden_states=True,
        )
    P = ids.shape[1]
    expected = out.logits[:, P - 1 : -1].log_softmax(-1).gather(-1, r_ids[..., None])[..., 0]
    torch.testing.assert_close(log_prob, expected, rtol=1e-5, atol=1e-5)
    h = out.hidden_states[-1][:, P:]
    for i in range(2):
        n = int(r_mask[i].sum())
        torch.testing.assert_close(pooled[i], h[i, :n].mean(0), rtol=1e-5, atol=1e-6)


def test_grouped_forward_equals_the_per_row_forward_in_values_and_gradients(base):
    """Running each group's prompt once and sharing its keys/values changes neither outputs nor gradients."""
    from clipo.generation import encode_prompts, generate
    from clipo.hf import load
    from clipo.mini.policy import policy_forward

    model, tok = load(base / "base")
    model.train()
    ids, mask = encode_prompts(tok, ["Tom has 3 apples.", "Ann has 12 pears and gets 5 more."])
    G = 3
    r_ids, r_mask = generate(model, tok, ids, mask, 8, do_sample=True, seed=0, repeats=G)
    r_mask[1, 4:] = 0  # groups hold responses of different lengths
    rows_ids, rows_mask = ids.repeat_interleave(G, 0), mask.repeat_interleave(G, 0)
    weights = torch.linspace(0.5, 1.5, r_ids.numel()).view_as(r_ids)

    def run(group_size):
        model.zero_grad(set_to_none=True)
        log_prob, pooled = policy_forward(model, rows_ids, rows_mask, r_ids, r_mask, group_size=group_size)
        ((log_prob * r_mask * weights).sum() + pooled.square().sum()).backward()
        return log_prob.detach(), pooled.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    lp_rows, pooled_rows, grad_rows = run(1)
    lp_grouped, pooled_grouped, grad_grouped = run(G)
    torch.testing.assert_close(lp_grouped, lp_rows, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled_grouped, pooled_rows, rtol=1e-5, atol=1e-5)
    for name, g in grad_rows.items():
        torch.testing.assert_close(grad_grouped[name], g, rtol=1e-4, atol=1e-5, msg=name)


def test_clipo_with_lambda_zero_trains_bit_identical_policy(base, tmp_path):
    off = weights(train(base, tmp_path / "off", "grpo", "none", 3))
    zero = weights(train(base, tmp_path / "zero", "grpo", "infonce", 3, "--lam", "0"))
    on = weights(train(base, tmp_path / "on", "grpo", "infonce", 3))
    assert off.keys() == zero.keys()
    assert all(torch.equal(off[k], zero[k]) for k in off)
    # ... while a non-zero λ does change the policy: the comparison above can fail.
    assert not all(torch.equal(off[k], on[k]) for k in off)
    rows = metric_lines(tmp_path / "zero")
    assert all(r["reward/contrastive"] == 0 for r in rows)
    assert any(r["clipo/anchor_frac"] > 0 for r in rows)


def test_head_warmup_leaves_policy_unchanged_and_trains_the_head(base, tmp_path):
    run = train(base, tmp_path / "warm", "grpo", "infonce", 2, "--head-warmup-steps", "2")
    initial = load_file(base / "base" / "model.safetensors")
    final = weights(run)
    assert all(torch.equal(initial[k], final[k]) for k in initial)
    assert all(r["train/policy_frozen"] and "loss/policy" not in r for r in metric_lines(run))
    head = last_checkpoint(run)["head"]["head"]
    start = fresh_head(Clipo(head_output_size=TRACKS["mini"].head_output_size))
    assert not all(torch.equal(head[k], start[k]) for k in start)


def test_fixed_head_is_never_updated(base, tmp_path):
    run = train(base, tmp_path / "fixed", "grpo", "infonce-fixed", 2)
    head = last_checkpoint(run)["head"]["head"]
    start = fresh_head(Clipo(head_output_size=TRACKS["mini"].head_output_size, fixed_head=True))
    assert all(torch.equal(head[k], start[k]) for k in start)
    assert any(r["clipo/anchor_frac"] > 0 for r in metric_lines(run))  # it had something to learn from


def test_metrics_and_embedding_dump_are_complete(base, tmp_path):
    run = train(base, tmp_path / "run", "gmpo", "supcon", 3, "--checkpoint-every", "2")
    rows = metric_lines(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    required = [
        "reward/outcome",
        "reward/contrastive",
        "clipo/loss",
        "clipo/nontrivial_groups",
        "clipo/cos_pos",
        "clipo/cos_neg",
        "clipo/cos_cross",
        "hidden/cos_pos",
        "hidden/cos_neg",
        "hidden/cos_cross",
        "loss/policy",
        "actor/clip_frac",
        "response/length",
        "time/rollout",
        "time/scoring",
        "time/clipo",
        "time/update",
        "time/step",
    ]
    for r in rows:
        assert not [k for k in required if k not in r]
    emb = pd.read_parquet(run / "embeddings.parquet")
    assert sorted(emb.columns) == sorted(["step", "phase", "group_id", "correct", "embedding", "space"])
    assert emb.groupby("phase")["step"].agg(["min", "max", "size"]).to_dict("index") == {
        "start": {"min": 1, "max": 1, "size": 8},
        "end": {"min": 3, "max": 3, "size": 8},
    }
    assert {len(e) for e in emb["embedding"]} == {TRACKS["mini"].head_output_size}
    assert set(emb["space"]) == {"head"}
    by_phase = emb.groupby("phase")["group_id"].apply(sorted).to_dict()
    assert by_phase["start"] == by_phase["end"]  # the same probe groups before and after training
    cfg = json.loads((run / "run.json").read_text())["config"]
    assert cfg["method"]["policy_loss"] == "geo_mean_global" and cfg["clipo"]["loss"] == "supcon"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_step"] == 3 and summary["final_metrics"] == rows[-1]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000003.pt"]
    assert (run / "final" / "config.json").is_file() and (run / "final" / "tokenizer.json").is_file()


def test_killed_run_resumes_to_identical_weights_and_metrics(base, tmp_path):
    """SIGKILL a real training process after its 2nd checkpoint; the same command then finishes the run."""
    steps = 6
    reference = train(base, tmp_path / "uninterrupted", "dapo", "infonce", steps, "--checkpoint-every", "1")

    run = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-c",
        FAKE_REWARD_CLI,
        *argv(base, run, "dapo", "infonce", steps, "--checkpoint-every", "1"),
    ]
    log = tmp_path / "killed.log"  # a file, not a pipe: a full pipe would stall the child
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    deadline = time.monotonic() + 900  # only a guard against a hung child; a loaded CI box is slow
    while not (run / "checkpoints" / "step_000002.pt").exists():
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 900 s"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "summary.json").exists(), "the run finished before it could be killed"
    (run / "metrics.jsonl").unlink()  # as Snakemake does with the outputs of an incomplete job

    train(base, run, "dapo", "infonce", steps, "--checkpoint-every", "1")
    assert json.loads((run / "summary.json").read_text())["resumed_from_step"] >= 2
    a, b = weights(reference), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert without_time(metric_lines(run)) == without_time(metric_lines(reference))
    pd.testing.assert_frame_equal(
        pd.read_parquet(run / "embeddings.parquet"), pd.read_parquet(reference / "embeddings.parquet")
    )
    ckpt_a, ckpt_b = last_checkpoint(reference), last_checkpoint(run)
    assert all(
        torch.equal(ckpt_a["head"]["head"][k], ckpt_b["head"]["head"][k]) for k in ckpt_a["head"]["head"]
    )


def test_resume_refuses_a_checkpoint_of_another_configuration(base, tmp_path):
    run = train(base, tmp_path / "run", "grpo", "none", 2)
    assert cli_main(argv(base, run, "gspo", "none", 2)) == 2
    assert cli_main(argv(base, run, "grpo", "none", 1)) == 2  # checkpoint beyond --steps


def test_extending_a_finished_run_equals_the_longer_run(base, tmp_path):
    longer = train(base, tmp_path / "longer", "gspo", "infonce", 3)
    extended = train(base, tmp_path / "extended", "gspo", "infonce", 2)
    train(base, extended, "gspo", "infonce", 3)
    a, b = weights(longer), weights(extended)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert without_time(metric_lines(extended)) == without_time(metric_lines(longer))
    emb = pd.read_parquet(extended / "embeddings.parquet")
    assert sorted(set(zip(emb["phase"], emb["step"]))) == [("end", 3), ("start", 1)]


# ---------------------------------------------------------------------------------------------
def test_dynamic_sampling_keeps_only_groups_with_reward_variance():
    from clipo.mini.rollout import Rollouts, groups_with_reward_variance

    def batch(outcomes, width):
        n = len(outcomes)
        return Rollouts(
            torch.full((n, width), 7),
            torch.ones(n, width, dtype=torch.long),
            torch.arange(n)[:, None].repeat(1, width + 1),
            torch.ones(n, width + 1, dtype=torch.long),
            torch.arange(n // 2).repeat_interleave(2),
            torch.tensor(outcomes),
            tuple(f"{width}:{i}" for i in range(n)),  # step-check labels must follow their rows
        )

    first = groups_with_reward_variance(batch([1.0, 0.0, 1.0, 1.0, 0.0, 1.0], 3))  # groups 0 and 2 kept
    assert first.group_id.tolist() == [0, 0, 1, 1] and first.outcome.tolist() == [1.0, 0.0, 0.0, 1.0]
    second = groups_with_reward_variance(batch([0.0, 0.0, 0.0, 1.0], 5))  # group 1 kept
    both = Rollouts.cat([first, second], pad_id=0)
    assert both.group_id.tolist() == [0, 0, 1, 1, 2, 2]
    assert both.process == ("3:0", "3:1", "3:4", "3:5", "5:2", "5:3")
    assert both.prompt_ids.shape == (6, 5) and both.prompt_mask[:4, :2].sum() == 0  # left-padded
    assert both.response_ids.shape == (6, 6) and both.response_mask[:4, 4:].sum() == 0  # right-padded
    assert both.select_groups(torch.arange(2)).group_id.tolist() == [0, 0, 1, 1]


def test_defaults_come_from_the_mini_track(base, tmp_path):
    from clipo.mini.train import resolve_config

    args = build_parser().parse_args(
        [
            "train",
            "--backend",
            "mini",
            "--track",
            "mini",
            "--method",
            "dapo",
            "--clipo",
            "softnn",
            "--model-path",
            "m",
            "--out",
            str(tmp_path),
        ]
    )
    cfg = resolve_config(args)
    mini = TRACKS["mini"]
    assert (
        cfg.steps,
        cfg.train_batch_size,
        cfg.group_size,
        cfg.lr,
        cfg.max_new_tokens,
        cfg.checkpoint_every,
    ) == (
        mini.mini_steps,
        mini.train_batch_size,
        mini.rollout_n,
        mini.lr,
        mini.max_response_length,
        mini.checkpoint_every,
    )
    assert cfg.minibatches_per_step == 2 and cfg.clipo.lam == 1.0 and cfg.method.dynamic_sampling


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, b: a.__setitem__(a.index("--model-path") + 1, str(b / "nowhere")), "clipo sft"),
        (lambda a, b: a.__setitem__(a.index("--group-size") + 1, "1"), "group_size=1"),
        (lambda a, b: a.__setitem__(a.index("--mini-batch-size") + 1, "3"), "ppo_mini_batch_size=3"),
        (lambda a, b: a.__setitem__(a.index("--data-dir") + 1, str(b / "baddata")), "baddata"),
        (lambda a, b: a.extend(["--tau", "0.1"]), "--tau"),
    ],
)
def test_bad_input_is_one_clear_error(base, tmp_path, capsys, change, message):
    bad = tmp_path / "baddata" / "mini"
    bad.mkdir(parents=True)
    pd.DataFrame({"question": ["1+1"], "answer": ["2"]}).to_parquet(bad / "train.parquet")
    args = argv(base, tmp_path / "out", "grpo", "none", 1)
    change(args, tmp_path)
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("clipo train: error:") and message in err


def test_overlong_prompts_are_dropped_like_verls_filter_or_rejected(base, tmp_path):
    from dataclasses import replace

    from clipo.generation import render_prompt
    from clipo.hf import load
    from clipo.mini.rollout import load_problems
    from clipo.mini.train import resolve_config

    _, tok = load(base / "base")
    cfg = resolve_config(build_parser().parse_args(argv(base, tmp_path / "out")))
    problems = load_problems(cfg, tok)
    lengths = sorted(
        len(tok(render_prompt(tok, p.prompt), add_special_tokens=False)["input_ids"]) for p in problems
    )
    limit = lengths[len(lengths) // 2]
    kept = load_problems(replace(cfg, max_prompt_length=limit), tok)
    assert len(kept) == sum(n <= limit for n in lengths) < len(lengths)
    with pytest.raises(ConfigError, match="max_prompt_length"):
        load_problems(replace(cfg, max_prompt_length=limit, filter_overlong_prompts=False), tok)
    with pytest.raises(ConfigError, match="usable prompts"):
        load_problems(replace(cfg, max_prompt_length=lengths[0] - 1), tok)


def test_a_diverging_run_stops_with_a_clear_error_and_writes_no_model(base, tmp_path, capsys):
    """#12.3: a finite but absurd learning rate turns the weights non-finite; the run must not end with
    a NaN model in final/ (it exited 0 before)."""
    out = tmp_path / "out"
    assert cli_main(argv(base, out, "grpo", "none", 3, "--lr", "1e30")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("clipo train: error: step ") and "became non-finite (lr=1e+30)" in err
    assert not (out / "final").exists() and not (out / "summary.json").exists()


def test_grpo_raises_the_reward_on_a_fixed_handful_of_prompts(base, tmp_path):
    """Overfit check: on four prompts seen over and over, GRPO must raise the reward clearly.

    A change that breaks learning (an advantage sign, misaligned log-probs, a loss that does not reach
    the policy) leaves the reward where it starts (~0.5 under the parity reward of this module). Two-token
    responses keep the task learnable for a random model within seconds.
    """
    import shutil

    from clipo.data.schema import load_dataset

    data = tmp_path / "data"
    shutil.copytree(base / "data", data)
    train_file = data / "mini" / "train.parquet"
    load_dataset(train_file).iloc[:4].to_parquet(train_file, index=False)
    overfit = {**dict(zip(TINY[::2], TINY[1::2])), "--train-batch-size": "4", "--mini-batch-size": "2",
               "--group-size": "8", "--max-new-tokens": "2", "--lr": "3e-3"}
    args = argv(base, tmp_path / "run", "grpo", "none", 60)
    args[args.index("--data-dir") + 1] = str(data)
    args = args[: args.index(TINY[0])] + [x for kv in overfit.items() for x in kv]
    from clipo.mini.train import main

    assert main(build_parser().parse_args(args)) == 0
    reward = [r["reward/outcome"] for r in metric_lines(tmp_path / "run")]
    first, last = sum(reward[:5]) / 5, sum(reward[-5:]) / 5
    assert last >= first + 0.25, f"reward {first:.2f} → {last:.2f}: {[round(r, 2) for r in reward]}"


def test_validation_every_test_freq_steps_leaves_training_unchanged(base, tmp_path):
    every = train(base, tmp_path / "every", "grpo", "infonce", 3, "--test-freq", "2")
    rows = all_metric_lines(every)
    assert [r["step"] for r in rows if "val/reward" in r] == [0, 2, 3]  # before training, every 2, last
    assert rows[0].keys() == {"step", "val/reward", "val/sound_share", "val/lucky_share", "time/validation"}
    assert all(0.0 <= r["val/reward"] <= 1.0 for r in rows if "val/reward" in r)
    never = train(base, tmp_path / "never", "grpo", "infonce", 3, "--test-freq", "-1")
    assert not any("val/reward" in r for r in all_metric_lines(never))
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("val/")} for r in without_time(rows)]  # noqa: E731
    assert strip(metric_lines(every)) == strip(metric_lines(never))
    assert all(torch.equal(weights(every)[k], weights(never)[k]) for k in weights(never))


def test_validation_draws_the_same_answers_every_time_and_leaves_the_rng(base, tmp_path):
    from clipo.hf import load
    from clipo.mini.train import resolve_config, validate, validation_problems

    cfg = resolve_config(build_parser().parse_args(argv(base, tmp_path / "out")))
    policy, tokenizer = load(cfg.model_path)
    val = validation_problems(cfg, tokenizer)
    assert [p.ground_truth for p in val] == [
        str(t["ground_truth"]) for t in pd.read_parquet(cfg.val_file)["reward_model"][: cfg.val_size]]
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first = validate(policy, tokenizer, val, cfg)["val/reward"]
    assert torch.equal(torch.rand(3), expected)
    assert validate(policy, tokenizer, val, cfg)["val/reward"] == first


def test_test_freq_is_checked_and_mini_only():
    from clipo.runs import TrainOptions, resolve

    mini = dict(backend="mini", track="mini", method="grpo", model_path="base", out="out")
    assert resolve(TrainOptions(**mini)).test_freq == TRACKS["mini"].test_freq
    assert resolve(TrainOptions(**mini, test_freq=-1)).test_freq == -1
    with pytest.raises(ConfigError, match=r"test_freq=0 \(--test-freq\) must be -1"):
        resolve(TrainOptions(**mini, test_freq=0))
    with pytest.raises(ConfigError, match="--test-freq is a mini-trainer option"):
        resolve(TrainOptions(backend="verl", track="I", method="grpo", test_freq=5))


def test_probe_set_is_fixed_whatever_the_run_seed():
    from clipo.mini.train import Problem, probe_problems

    problems = [Problem(f"q{i}", str(i), "mini_test", None) for i in range(50)]
    first = probe_problems(problems, 8)
    assert first == probe_problems(problems, 8)
    assert len({p.prompt for p in first}) == 8
    assert len(probe_problems(problems[:5], 8)) == 5


def test_tensorboard_event_files_only_when_asked_and_console_is_the_progress(base, tmp_path, capsys):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    plain = train(base, tmp_path / "plain", "grpo", "none", 2)
    assert not (plain / "tensorboard").exists()
    assert "rl: 2/2 step (100%)" in capsys.readouterr().err
    run = train(base, tmp_path / "tb", "grpo", "none", 2, "--logger", "tensorboard")
    assert "rl: " not in capsys.readouterr().err
    events = event_accumulator.EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    rewards = [(e.step, e.value) for e in events.Scalars("reward/outcome")]
    assert rewards == [(r["step"], pytest.approx(r["reward/outcome"])) for r in metric_lines(run)]
