"""The verl override guard cannot be bypassed through a parent key, a deletion or a config group (issue 22, #4)."""

from __future__ import annotations

import pytest

from clipo.cli import main
from clipo.errors import ConfigError
from clipo.verl.overrides import check_overrides

BYPASSES = [
    ("actor_rollout_ref.rollout={n:2}", "--group-size"),
    ("actor_rollout_ref.actor.optim={lr:1.0}", "--lr"),
    ("algorithm={adv_estimator:gae}", "--method"),
    ("~algorithm", "--method"),
    ("++algorithm={filter_groups:{enable:true}}", "--method"),
    ("data.train_files=[/elsewhere/train.parquet]", "--track and --data-dir"),
    ("data={seed:3}", "--seed"),
    ("actor_rollout_ref={rollout:{n:2}}", "--group-size"),
    ("actor@actor_rollout_ref.actor=megatron_actor", "--lr"),
    ("trainer={experiment_name:x}", "the run id"),
    ("+clipo.temperature=1", "--tau"),
    ("actor_rollout_ref.model.external_lib=null", "worker patch"),  # GMPO's loss would vanish in the workers
]


@pytest.mark.parametrize("override,option", BYPASSES)
def test_overrides_reaching_a_run_key_are_refused(override, option):
    with pytest.raises(ConfigError, match="contradict the run id") as info:
        check_overrides([override])
    assert option in str(info.value)
    assert repr(override) in str(info.value)


@pytest.mark.parametrize("override", [
    "trainer.logger=[console,tensorboard]",
    "actor_rollout_ref.rollout.val_kwargs.n=4",
    "actor_rollout_ref.actor.optim.weight_decay=0.0",
    "data.max_prompt_length=2048",
    "+trainer.val_only=false",
])
def test_overrides_beside_the_run_keys_pass(override):
    check_overrides([override])


def test_dry_run_refuses_a_parent_key_override(capsys):
    argv = ["train", "--backend", "verl", "--track", "II", "--method", "grpo", "--clipo", "infonce",
            "--dry-run", "actor_rollout_ref.rollout={n:2}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "actor_rollout_ref.rollout={n:2}" in err and "--group-size" in err


@pytest.mark.parametrize("flag", ["--config-name=ppo_megatron_trainer", "-cd=/elsewhere", "--cfg=job"])
def test_hydra_flags_that_swap_the_config_are_refused(flag):
    with pytest.raises(ConfigError, match="Hydra command-line flag, not an override"):
        check_overrides([flag])
