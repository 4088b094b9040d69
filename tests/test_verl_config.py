"""Every generated verl command composes into a config verl accepts, with the paper's values.

Hydra's compose API on ``clipo/verl/config/clipo_trainer.yaml`` (verl's ``ppo_trainer`` + ``clipo:``)
with the overrides ``clipo train --backend verl`` prints; then verl's own ``validate_config`` and actor
dataclass. Runs: the paper grid (``clipo.analysis.paper_tables.required_runs``) plus all four methods ×
the three GPU tracks (I, II, the one-GPU ``small``) × CLIPO on/off. Each distinct override set is composed once (~1 s each).
"""

import shlex
from pathlib import Path

import pytest

pytest.importorskip(
    "transfer_queue", reason="verl's v1 trainer needs TransferQueue (requirements/test-extra.lock)"
)

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.errors import ConfigCompositionException  # noqa: E402

import clipo.verl  # noqa: E402
from clipo.cli import main as cli_main  # noqa: E402
from clipo.data.registry import eval_files  # noqa: E402
from clipo.errors import ConfigError  # noqa: E402
from clipo.methods import METHODS, clipo_variant, get_track  # noqa: E402
from clipo.verl.overrides import build_overrides, command, plan_run  # noqa: E402

CONFIG_DIR = str(Path(clipo.verl.__file__).parent / "config")


def _grid() -> dict:
    """Distinct runs (one compose each): the paper grid if the workflow defines it, plus 4 methods × 3 GPU
    tracks × CLIPO on/off."""
    runs = [
        (t, None, m, c, None, None) for t in ("I", "II", "small") for m in METHODS for c in ("none", "infonce")
    ]
    try:
        from clipo.analysis.paper_tables import required_runs
    except ImportError:
        pass
    else:
        runs += [(s.track, s.model, s.method, s.clipo, s.tau, s.group_size) for s in required_runs("verl")]
    plans = (
        plan_run(t, m, c, model=model, tau=tau, group_size=g, out="/runs/x")
        for t, model, m, c, tau, g in runs
    )
    return {p.spec.run_id: p for p in plans}


GRID = _grid()


@pytest.fixture(scope="module")
def hydra_ctx():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        yield


@pytest.mark.parametrize("run_id", sorted(GRID))
def test_generated_overrides_pass_verl_validation(hydra_ctx, run_id):
    from verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY, get_adv_estimator_fn
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.utils.import_utils import import_external_libs

    from clipo.verl.trainer import check_config

    run = GRID[run_id]
    track, method, clipo, tau, g = (
        run.spec.track,
        run.spec.method,
        run.spec.clipo,
        run.spec.tau,
        run.spec.group_size,
    )
    cfg = compose("clipo_trainer", overrides=build_overrides(run))
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    import_external_libs(cfg.actor_rollout_ref.model.external_lib)  # as verl's model config does in each worker
    assert actor.policy_loss.loss_mode in POLICY_LOSS_REGISTRY
    assert get_adv_estimator_fn(cfg.algorithm.adv_estimator) is not None
    assert not need_critic(cfg)
    assert need_reference_policy(cfg) == METHODS[method].use_kl_loss  # GRPO's KL loss needs the reference

    settings = check_config(cfg)
    assert settings.clipo == run.clipo  # the clipo: section round-trips to the same dataclass
    assert settings.out_dir == "/runs/x"

    t, m = get_track(track), METHODS[method]
    a = cfg.actor_rollout_ref
    assert (cfg.data.train_batch_size, a.actor.ppo_mini_batch_size, a.actor.ppo_micro_batch_size_per_gpu) == (
        t.train_batch_size,
        t.ppo_mini_batch_size,
        t.micro_batch_size,
    )
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (
        t.max_prompt_length,
        t.max_response_length,
    )
    assert a.actor.optim.lr == t.lr and a.actor.use_dynamic_bsz and a.model.enable_gradient_checkpointing
    assert (a.rollout.name, a.rollout.n, a.rollout.tensor_model_parallel_size) == ("sglang", g, 1)
    assert (a.rollout.val_kwargs.n, a.rollout.val_kwargs.do_sample) == (t.val_n, t.val_do_sample)
    assert (a.rollout.val_kwargs.temperature, a.rollout.val_kwargs.top_p) == (0.6, 0.95)
    assert a.ref.fsdp_config.param_offload == t.ref_param_offload
    assert (a.actor.clip_ratio_low, a.actor.clip_ratio_high, a.actor.loss_agg_mode) == (
        m.clip_ratio_low,
        m.clip_ratio_high,
        m.loss_agg_mode,
    )
    assert a.actor.use_kl_loss == m.use_kl_loss and cfg.algorithm.filter_groups.enable == m.dynamic_sampling
    assert (cfg.trainer.n_gpus_per_node, cfg.trainer.nnodes, cfg.trainer.total_epochs) == (
        {"I": 8, "II": 8, "small": 1}[track],
        1,
        {"I": 6, "II": 9, "small": 3}[track],  # Table 8 (the released train_math.sh says 10)
    )
    # Table 8's 1 warm-up epoch = 14 / 58 steps, passed literally as the released scripts do (13 / 57 head-only)
    assert cfg.trainer.critic_warmup == {"I": 14, "II": 58, "small": 58}[track]
    assert cfg.trainer.save_freq == {"I": 14, "II": 29, "small": 58}[track]
    # The released scripts' values where the paper is silent
    budget = t.max_prompt_length + t.max_response_length
    assert a.actor.ppo_max_token_len_per_gpu == 2 * budget == {"I": 5120, "II": 9216, "small": 3072}[track]
    assert a.rollout.max_num_batched_tokens == budget and a.rollout.max_num_seqs == 1024
    assert a.rollout.gpu_memory_utilization == {"I": 0.8, "II": 0.8, "small": 0.5}[track]
    # Track II: every 2 epochs, not the released 29 (sized to the job, clipo.methods)
    assert cfg.trainer.test_freq == {"I": 7, "II": 116, "small": -1}[track] and not cfg.trainer.val_before_train
    assert a.actor.entropy_coeff == 0
    assert cfg.trainer.v1.trainer_mode == "clipo_sync" and cfg.trainer.use_v1
    assert cfg.trainer.experiment_name == run.spec.run_id
    assert cfg.reward.custom_reward_function.path == "pkg://clipo.rewards"
    assert a.model.external_lib == "clipo.verl.worker_patch"
    if clipo != "none":
        assert cfg.clipo.head_output_size == {"I": 512, "II": 2048, "small": 512}[track]
        assert (cfg.clipo.head_lr, cfg.clipo.head_weight_decay) == (1e-3, 0.01)
        assert cfg.clipo.temperature == (tau or {"I": 0.05, "II": 0.02, "small": 0.05}[track])


def test_paper_schedule_is_derived_from_dataset_rows():
    one = plan_run("I", "grpo", "infonce")
    two = plan_run("II", "gmpo", "softnn")
    assert (one.steps_per_epoch, one.critic_warmup, one.head_warmup_steps) == (14, 14, 13)  # 7473 // 512
    assert (two.steps_per_epoch, two.critic_warmup, two.head_warmup_steps) == (58, 58, 57)  # 7500 // 128
    assert two.clipo == clipo_variant("softnn", get_track("II")) and two.clipo.lam == 1.0
    assert plan_run("I", "grpo", head_warmup_steps=0).critic_warmup == 0
    assert plan_run("I", "grpo", "infonce", head_warmup_steps=5).critic_warmup == 6  # 5 head-only steps
    assert plan_run("I", "grpo", model_path="/models/q").model_path == "/models/q"
    assert (
        plan_run("II", "grpo", model="llama3.1-8b-instruct").model_path == "meta-llama/Llama-3.1-8B-Instruct"
    )


def test_one_gpu_track_dry_run_composes_and_validates(hydra_ctx, capsys):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    argv = ["train", "--backend", "verl", "--track", "small", "--method", "grpo", "--clipo", "infonce",
            "--seed", "2", "--dry-run"]
    assert cli_main(argv) == 0
    printed = shlex.split(capsys.readouterr().out.replace("\\\n", " "))
    overrides = printed[3:]
    assert "trainer.n_gpus_per_node=1" in overrides
    assert "trainer.experiment_name=small_qwen2.5-1.5b-instruct_grpo_infonce_tau0.05_g8_s2_verl" in overrides
    run_id = "small_qwen2.5-1.5b-instruct_grpo_infonce_tau0.05_g8_s2_verl"
    assert f"trainer.default_local_dir=results/verl/runs/{run_id}/checkpoints" in overrides
    cfg = compose("clipo_trainer", overrides=overrides)
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    assert list(cfg.data.val_files) == [f"data/{f.path}" for f in eval_files("I")]  # Track I's benchmarks
    assert list(cfg.data.train_files) == ["data/train/gsm8k.parquet"]
    small = plan_run("small", "grpo")
    assert (small.steps_per_epoch, small.critic_warmup) == (58, 58)  # 7473 // 128


def test_one_gpu_track_without_data_names_the_fetch_that_provides_it(capsys, tmp_path):
    argv = ["train", "--backend", "verl", "--track", "small", "--method", "grpo", "--data-dir", str(tmp_path),
            "--out", str(tmp_path / "run")]
    assert cli_main(argv) == 2
    assert f"clipo data fetch --track I --dest {tmp_path}" in capsys.readouterr().err  # 'small' has no files


def test_track_two_tau_is_the_one_the_paper_grid_uses():
    """clipo train --track II (and so the docs' hand-run examples) must get the τ of configs/paper.yaml's Table 2."""
    import yaml

    grid = yaml.safe_load((Path(__file__).parents[1] / "configs" / "paper.yaml").read_text())["grid"]
    table2 = [s for s in grid if s["track"] == ["II"] and s["method"] == ["grpo", "gspo", "dapo", "gmpo"]
              and s.get("clipo") == ["infonce"]]
    assert len(table2) == 1 and table2[0]["tau"] == [get_track("II").clipo_temperature] == [0.02]
    assert plan_run("II", "grpo", "infonce").clipo.temperature == 0.02


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(track="mini", method="grpo"), "--model-path is required"),  # verl on CPU trains the SFT base
        (dict(track="I", method="ppo"), "ppo"),
        (dict(track="I", method="grpo", model="qwen9"), "qwen9"),
        (dict(track="I", method="grpo", clipo="infonce", tau=0.0), "temperature"),
        (dict(track="I", method="grpo", group_size=1), "group-size"),
    ],
)
def test_bad_runs_fail_with_one_clear_error(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        plan_run(kwargs.pop("track"), kwargs.pop("method"), **kwargs)


def test_dry_run_prints_the_complete_command(capsys):
    argv = [
        "train",
        "--backend",
        "verl",
        "--track",
        "II",
        "--method",
        "dapo",
        "--clipo",
        "supcon",
        "--tau",
        "0.02",
        "--group-size",
        "8",
        "--seed",
        "3",
        "--out",
        "/r/x",
        "--dry-run",
        "trainer.logger=[console,wandb]",
    ]
    assert cli_main(argv) == 0
    printed = shlex.split(capsys.readouterr().out.replace("\\\n", " "))
    run = plan_run("II", "dapo", "supcon", tau=0.02, group_size=8, seed=3, out="/r/x")
    assert printed == command(run) + ["trainer.logger=[console,wandb]"]
    assert "trainer.experiment_name=II_qwen2.5-7b-instruct_dapo_supcon_tau0.02_g8_s3_verl" in printed
    assert {
        "clipo.temperature=0.02",
        "clipo.lam=0.2",
        "clipo.loss=supcon",
        "actor_rollout_ref.rollout.n=8",
    } <= set(printed)


def test_cli_rejects_mini_options_and_missing_data(capsys, tmp_path):
    assert (
        cli_main(
            [
                "train",
                "--backend",
                "verl",
                "--track",
                "I",
                "--method",
                "grpo",
                "--checkpoint-every",
                "5",
                "--dry-run",
            ]
        )
        == 2
    )
    assert "mini-trainer option" in capsys.readouterr().err
    assert (
        cli_main(
            [
                "train",
                "--backend",
                "verl",
                "--track",
                "I",
                "--method",
                "grpo",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert "gsm8k.parquet" in capsys.readouterr().err


def test_typos_in_clipo_section_are_rejected(hydra_ctx):
    with pytest.raises(ConfigCompositionException, match="clipo.temprature"):
        compose("clipo_trainer", overrides=["clipo.temprature=0.1"])


def test_check_config_rejects_settings_the_hook_cannot_honour(hydra_ctx):
    from clipo.verl.trainer import check_config

    base = build_overrides(plan_run("I", "grpo", "infonce"))
    for bad, needle in [
        ("actor_rollout_ref.model.use_remove_padding=false", "use_remove_padding"),
        ("actor_rollout_ref.actor.ulysses_sequence_parallel_size=2", "ulysses"),
        ("actor_rollout_ref.model.external_lib=null", "external_lib"),
        ("algorithm.rollout_correction.bypass_mode=true", "bypass_mode"),
        ("trainer.v1.trainer_mode=sync", "trainer_mode"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            check_config(compose("clipo_trainer", overrides=base + [bad]))
    off = compose(
        "clipo_trainer",
        overrides=build_overrides(plan_run("I", "grpo"))
        + ["actor_rollout_ref.model.use_remove_padding=false"],
    )
    assert check_config(off).clipo is None  # without CLIPO nothing is pooled, so nothing to reject


def test_verl_loads_the_project_reward_function(hydra_ctx):
    from verl.trainer.ppo.reward import get_custom_reward_fn

    import clipo.rewards

    cfg = compose("clipo_trainer", overrides=build_overrides(plan_run("I", "grpo")))
    reward_fn = get_custom_reward_fn(cfg)  # what verl's reward loop calls for every rollout
    assert reward_fn.args[0] is clipo.rewards.compute_score
    assert reward_fn(data_source="openai/gsm8k", solution_str="so \\boxed{1,000}", ground_truth="1000") == 1.0
    assert reward_fn(data_source="openai/gsm8k", solution_str="no box", ground_truth="1000") == 0.0
