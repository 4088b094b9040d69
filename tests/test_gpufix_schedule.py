"""The verl schedule of the paper's tracks: warm-up as the authors passed it, checkpoints and validations
sized to the job's wall time (clipo.methods.TRACKS, docs/gpu.md "Wall-time limits")."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from clipo.cli import main as cli_main
from clipo.methods import get_track
from clipo.verl.overrides import plan_run

ROOT = Path(__file__).resolve().parents[1]


def dry_run(capsys, track: str, method: str = "grpo") -> dict[str, str]:
    assert cli_main(["train", "--backend", "verl", "--track", track, "--method", method, "--clipo", "infonce",
                     "--dry-run"]) == 0
    printed = shlex.split(capsys.readouterr().out.replace("\\\n", " "))
    return dict(arg.split("=", 1) for arg in printed[3:])


@pytest.mark.parametrize("track, warmup, save, test", [("I", "14", "14", "7"), ("II", "58", "29", "116")])
def test_dry_run_passes_table_8_warmup_literally(capsys, track, warmup, save, test):
    """Table 8's 14 / 58 warm-up steps, as the released scripts pass them: verl then trains the head alone
    for 13 / 57 steps and updates the actor from step 14 / 58 on."""
    overrides = dry_run(capsys, track)
    assert overrides["trainer.critic_warmup"] == warmup
    assert (overrides["trainer.save_freq"], overrides["trainer.test_freq"]) == (save, test)
    assert overrides["trainer.total_epochs"] == {"I": "6", "II": "9"}[track]
    assert overrides["trainer.resume_mode"] == "auto"


def test_head_only_steps_under_verls_rule():
    run = plan_run("II", "dapo", "infonce")
    frozen = [step for step in range(1, run.steps_per_epoch * 9 + 1) if run.critic_warmup > step]  # clipo_sync's test
    assert len(frozen) == run.head_warmup_steps == 57
    # --head-warmup-steps counts head-only steps
    assert plan_run("II", "dapo", "infonce", head_warmup_steps=58).critic_warmup == 59


def test_track_ii_validation_and_checkpoints_fit_the_job():
    """verl validates and saves at multiples of test_freq / save_freq and after the last step."""
    track, run = get_track("II"), plan_run("II", "grpo")
    steps = run.steps_per_epoch * track.total_epochs
    validations = {s for s in range(1, steps + 1) if s % track.test_freq == 0} | {steps}
    checkpoints = {s for s in range(1, steps + 1) if s % track.save_freq == 0} | {steps}
    assert (steps, sorted(validations)) == (522, [116, 232, 348, 464, 522])  # the released test_freq: 18
    assert len(checkpoints) == 18 and max(b - a for a, b in zip([0, *sorted(checkpoints)], sorted(checkpoints))) == 29
    for config in ("config.yaml", "configs/paper.yaml"):
        runtime = yaml.safe_load((ROOT / config).read_text())["resources"]["train_verl"]["runtime"]
        # 24 h, the common partition limit: Track II's ≈ 26-35 h take two jobs, the second resuming
        assert runtime == 1440, config
