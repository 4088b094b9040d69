"""The run specification (clipo.runs): run ids, the workflow's grid, and the one resolver of both backends.

The bad inputs are the probes of issue #12 (items 3, 4, 5, 7); each was accepted, ignored or ended in a
traceback before the resolver existed.
"""

from __future__ import annotations

import math
import shlex

import pytest

from clipo.cli import main as cli_main
from clipo.errors import ConfigError
from clipo.methods import TRACKS
from clipo.runs import RunSpec, TrainOptions, expand_grid, format_tau, resolve

MINI = ["train", "--backend", "mini", "--track", "mini", "--method", "grpo", "--model-path", "m", "--out", "o"]
VERL = ["train", "--backend", "verl", "--track", "I", "--method", "grpo", "--dry-run"]


# ------------------------------------------------------------------------------------- τ and run ids
@pytest.mark.parametrize("tau, text", [(0.05, "0.05"), (0.1, "0.1"), (1.0, "1"), (0.0125, "0.0125"),
                                       (0.1234561, "0.1234561"), (1e6, "1000000")])
def test_every_tau_round_trips_through_the_run_id(tau, text):
    spec = RunSpec("mini", "mini-base", "grpo", "infonce", tau, 8, 0, "mini")
    assert format_tau(tau) == text and f"_tau{text}_" in spec.run_id
    assert RunSpec.parse(spec.run_id) == spec


def test_taus_that_differ_get_different_run_ids():
    ids = {run.run_id for run in expand_grid([{"track": ["mini"], "method": ["grpo"], "clipo": ["infonce"],
                                                "tau": [0.1234561, 0.1234564]}])}
    assert len(ids) == 2


@pytest.mark.parametrize("tau", [math.nan, math.inf, 0.0, -0.1])
def test_a_tau_without_a_run_id_is_rejected_at_validation(tau):
    with pytest.raises(ConfigError, match=r"config grid\[0\]: run tau=.* must be a finite number > 0"):
        expand_grid([{"track": ["mini"], "method": ["grpo"], "clipo": ["infonce"], "tau": [tau]}])


# ------------------------------------------------------------------------------------- the grid
def test_grid_is_the_deduplicated_union_of_the_sweeps_with_track_defaults():
    runs = expand_grid([
        {"track": ["mini"], "method": ["base", "grpo"]},
        {"track": ["mini"], "method": ["grpo"], "clipo": ["none", "infonce"], "group_size": [8]},
        {"track": ["II"], "method": ["gspo"], "clipo": ["softnn"], "seed": [1]},
    ])
    assert [r.run_id for r in runs] == [
        "II_qwen2.5-7b-instruct_gspo_softnn_tau0.02_g16_s1_verl",
        "mini_mini-base_base_none_tau-_g8_s0_mini",
        "mini_mini-base_grpo_infonce_tau0.05_g8_s0_mini",
        "mini_mini-base_grpo_none_tau-_g8_s0_mini",
    ]
    base = expand_grid([{"track": ["mini"], "method": ["base"], "clipo": ["infonce"], "group_size": [4]}])
    assert [(r.clipo, r.tau, r.group_size) for r in base] == [("none", None, TRACKS["mini"].rollout_n)]


def test_grid_rejects_a_backend_that_cannot_train_the_track():
    with pytest.raises(ConfigError, match=r"grid\[0\]: backend 'mini' cannot train track 'I'"):
        expand_grid([{"track": ["I"], "method": ["grpo"], "backend": ["mini"]}])


# ------------------------------------------------------------------------------------- the resolver
def test_one_resolver_gives_both_backends_the_same_run():
    mini = resolve(TrainOptions("mini", "mini", "dapo", "softnn", model_path="m", out="o"))
    verl = resolve(TrainOptions("verl", "II", "dapo", "softnn"))
    assert mini.spec.run_id == "mini_mini-base_dapo_softnn_tau0.05_g8_s0_mini"
    assert verl.spec.run_id == "II_qwen2.5-7b-instruct_dapo_softnn_tau0.02_g16_s0_verl"
    assert mini.clipo.lam == verl.clipo.lam == 1.0 and mini.method == verl.method
    assert (mini.steps, mini.lr, mini.head_warmup_steps) == (TRACKS["mini"].mini_steps, TRACKS["mini"].lr, 0)
    assert (verl.steps, verl.head_warmup_steps, verl.model_path) == (None, None, "Qwen/Qwen2.5-7B-Instruct")


@pytest.mark.parametrize("extra, message", [
    (["--lr", "inf"], "lr=inf (--lr) must be a finite number > 0"),
    (["--lr", "nan"], "lr=nan (--lr) must be a finite number > 0"),
    (["--lr", "0"], "lr=0.0 (--lr) must be a finite number > 0"),
    (["--clipo", "infonce", "--lam", "nan"], "clipo.lam=nan must be a finite number >= 0"),
    (["--clipo", "infonce", "--lam", "inf"], "clipo.lam=inf must be a finite number >= 0"),
    (["--clipo", "infonce", "--lam", "-1"], "clipo.lam=-1.0 must be a finite number >= 0"),
    (["--clipo", "infonce", "--head-output-size", "0"], "clipo.head_output_size=0 must be an integer >= 1"),
    (["--clipo", "infonce", "--head-output-size", "-5"], "clipo.head_output_size=-5 must be an integer >= 1"),
    (["--clipo", "infonce", "--reference-eps", "-1"], "clipo.reference_eps=-1.0 must be a finite number >= 0"),
    (["--clipo", "infonce", "--tau", "nan"], "clipo.temperature=nan must be a finite number > 0"),
    (["--seed", "-1"], "seed=-1 (--seed) must be an integer >= 0"),
    (["--steps", "0"], "steps=0 (--steps) must be an integer >= 1"),
    (["--threads", "0"], "threads=0 (--threads) must be an integer >= 1"),
    (["--tau", "0.1"], "--tau need(s) CLIPO on"),
    (["--dry-run"], "--dry-run is a verl-trainer option"),
    (["trainer.n_gpus_per_node=1"], "Hydra overrides are a verl-trainer option"),
])
def test_mini_numbers_out_of_range_are_one_clear_error(extra, message, capsys):
    assert cli_main([*MINI, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clipo train: error:") and message in err[0], err


@pytest.mark.parametrize("extra, message", [
    (["--threads", "4"], "--threads is a mini-trainer option"),
    (["--checkpoint-every", "2"], "--checkpoint-every is a mini-trainer option"),
    (["--tau", "0.1"], "--tau need(s) CLIPO on"),
    (["--clipo", "infonce", "--head-output-size", "-3"], "clipo.head_output_size=-3"),
    (["--clipo", "infonce", "--lam", "inf"], "clipo.lam=inf"),
    (["--seed", "-1"], "seed=-1"),
    (["--model-path", ""], "--model-path '' is empty"),
    (["--train-batch-size", "3"], "train_batch_size=3 must be a multiple of ppo_mini_batch_size=256"),
    (["actor_rollout_ref.rollout.n=1"], "set it with --group-size"),
    (["+actor_rollout_ref.actor.optim.lr=0.1"], "set it with --lr"),
    (["clipo.lam=0.5"], "set it with --clipo"),
    (["trainer.experiment_name=x"], "set it with the run id"),
])
def test_verl_options_that_cannot_take_effect_are_refused(extra, message, capsys):
    assert cli_main([*VERL, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_verl_options_take_effect_in_the_command(capsys):
    argv = [*VERL, "--lr", "0.1", "--max-new-tokens", "5", "--train-batch-size", "64", "--mini-batch-size",
            "32", "--steps", "3", "trainer.n_gpus_per_node=1"]
    assert cli_main(argv) == 0
    printed = shlex.split(capsys.readouterr().out.replace("\\\n", " "))
    for override in ("actor_rollout_ref.actor.optim.lr=0.1", "data.max_response_length=5",
                     "data.train_batch_size=64", "actor_rollout_ref.actor.ppo_mini_batch_size=32",
                     "trainer.total_training_steps=3", "trainer.n_gpus_per_node=1",
                     "trainer.save_freq=116"):  # 7473 GSM8K rows // 64 prompts per step
        assert override in printed, override
    assert printed[-1] == "trainer.n_gpus_per_node=1"  # extra overrides come last, so they win


def test_resume_compares_resolved_paths_and_names_the_differing_key(tmp_path, monkeypatch):
    from dataclasses import replace

    from clipo.cli import build_parser
    from clipo.mini.train import resolve_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ref").mkdir()
    cfg = resolve_config(build_parser().parse_args(
        ["train", "--backend", "mini", "--track", "mini", "--method", "grpo", "--clipo", "infonce",
         "--model-path", str(tmp_path / "base"), "--out", "dir/ref"]))
    saved = cfg.comparable()
    assert cfg.differences(saved) == []
    assert replace(cfg, out="dir/./ref", model_path="base").differences(saved) == []
    changed = replace(cfg, clipo=replace(cfg.clipo, lam=0.5), model_path="other")
    assert [d.split(":")[0] for d in changed.differences(saved)] == ["clipo", "model_path"]


def test_a_verl_batch_larger_than_the_training_file_is_refused(capsys):
    assert cli_main([*VERL, "--train-batch-size", "16384", "--mini-batch-size", "16384"]) == 2
    assert "exceeds the 7473 rows" in capsys.readouterr().err


def test_a_smaller_batch_keeps_the_tracks_updates_per_step():
    from clipo.runs import TrainOptions, resolve

    run = resolve(TrainOptions(backend="mini", track="mini", method="grpo", model_path="m", out="o",
                               train_batch_size=4))
    assert (run.train_batch_size, run.ppo_mini_batch_size) == (4, 2)  # the mini track: 16 prompts in 2 updates
