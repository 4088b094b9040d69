"""The one-GPU recipe (configs/gpu-1.yaml, docs/gpu.md; issue 20, items 2 and 3): its documented commands
parse, give apptainer --nv, and run the GPU jobs one at a time.

Scheduling is checked by running Snakemake for real on a finished-looking run set, with the training and
evaluation jobs forced and `clipo` replaced by a stand-in (workflow_helpers.STAND_IN_CLIPO) that takes half
a second and records when each job starts and ends.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from workflow_helpers import REPO, STAND_IN_CLIPO, complete_state, snakemake

GPU_1 = REPO / "configs" / "gpu-1.yaml"
GPU_RULES = ("train_verl", "eval_verl")

def documented_commands() -> list[str]:
    """Every `snakemake ... configs/gpu-1.yaml` command line of docs/gpu.md and of the config's header."""
    text = (REPO / "docs" / "gpu.md").read_text() + GPU_1.read_text()
    lines = (line.lstrip("# ").strip() for line in text.splitlines())
    return [line for line in lines if line.startswith("snakemake ") and "configs/gpu-1.yaml" in line
            and "profiles/slurm" not in line]


def test_documented_one_gpu_commands_parse_with_one_gpu_and_nv(monkeypatch):
    from snakemake.cli import parse_args

    commands = documented_commands()
    assert len(commands) == 4  # docs/gpu.md and the config: with the profile, and by hand
    monkeypatch.chdir(REPO)  # the commands name the profile relative to the checkout
    for command in commands:
        _, args = parse_args(shlex.split(command)[1:])  # exits (SystemExit) on an argument it cannot read
        assert {name: res.value for name, res in args.resources.items()} == {"gpu": 1}, command
        assert args.apptainer_args == "--nv", command


def gpu_job_intervals(times: Path) -> list[tuple[float, float]]:
    """(start, end) of each stand-in job, paired by its --out folder."""
    starts, intervals = {}, []
    for kind, stamp, out in (line.split(" ", 2) for line in times.read_text().splitlines()):
        if kind == "start":
            starts[out] = float(stamp)
        else:
            intervals.append((starts.pop(out), float(stamp)))
    assert not starts, f"jobs that never ended: {starts}"
    return sorted(intervals)


def run_gpu_jobs(workdir: Path, *options: str) -> list[tuple[float, float]]:
    """Force every training and evaluation job of the one-GPU config on a finished-looking run set, 64
    cores (so cores alone would let several run together), and return when each ran."""
    job_list = complete_state(workdir, GPU_1)
    targets = [out for rule, outs in job_list if rule in GPU_RULES for out in outs]
    times = workdir / "gpu-job-times.txt"
    env = {**os.environ, "BASH_FUNC_clipo%%": STAND_IN_CLIPO, "CLIPO_JOB_TIMES": str(times), "CLIPO_JOB_SECONDS": "0.5"}
    proc = snakemake(workdir, *targets, *options, "--cores", "64", "--configfile", str(GPU_1),
                     "--forcerun", *GPU_RULES, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    forced = re.findall(r"^(?:local)?rule (\S+):$", proc.stdout + proc.stderr, re.M)
    assert sorted(set(forced)) == sorted(GPU_RULES) and len(forced) == 13  # 6 trainings, 7 evaluations
    return gpu_job_intervals(times)


def overlapping(intervals: list[tuple[float, float]]) -> int:
    return sum(later_start < end for (_, end), (later_start, _) in zip(intervals, intervals[1:]))


def test_the_profile_runs_one_gpu_job_at_a_time(tmp_path):
    """With the documented profile (less --sdm apptainer: no apptainer here), no two GPU jobs overlap."""
    intervals = run_gpu_jobs(tmp_path, "--profile", str(REPO / "profiles" / "gpu-1"))
    assert len(intervals) == 13 and overlapping(intervals) == 0, intervals


@pytest.mark.slow
def test_without_a_gpu_total_gpu_jobs_run_together(tmp_path):
    """The control: the same run without `resources: gpu=1` starts GPU jobs together."""
    intervals = run_gpu_jobs(tmp_path)
    assert overlapping(intervals) > 0, intervals
