"""The entry point (``python -m clipo.verl.main``) and the launcher around it, without GPUs.

verl's ``run_ppo`` and the launcher's subprocesses are replaced by recorders; everything before and
after them (Hydra config, checks, run.json, model export, summary.json, resume) runs for real.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "transfer_queue", reason="verl's v1 trainer needs TransferQueue (requirements/test-extra.lock)"
)

from clipo.cli import main as cli_main  # noqa: E402
from clipo.data.registry import eval_files, get_dataset  # noqa: E402
from clipo.verl.overrides import build_overrides, plan_run  # noqa: E402


def test_entry_point_checks_the_config_writes_run_json_and_uses_the_clipo_runner(tmp_path, monkeypatch):
    import clipo.verl.main as entry

    seen = {}
    monkeypatch.setattr(
        entry, "run_ppo", lambda config, task_runner_class: seen.update(runner=task_runner_class)
    )
    monkeypatch.chdir(tmp_path)  # Hydra's outputs/ folder
    run = plan_run("II", "gspo", "softnn", out=str(tmp_path / "run"))
    monkeypatch.setattr(sys, "argv", ["clipo.verl.main", *build_overrides(run)])
    entry.main()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["run_id"] == run.spec.run_id and record["backend"] == "verl"
    assert record["command"] == ["python", "-m", "clipo.verl.main", *build_overrides(run)]
    assert record["config"]["clipo"]["loss"] == "softnn" and record["config"]["clipo"]["lam"] == 1.0
    assert record["config"]["actor_rollout_ref"]["actor"]["policy_loss"]["loss_mode"] == "gspo"
    assert seen["runner"].__ray_actor_class__ is entry.ClipoTaskRunner

    seen.clear()
    monkeypatch.setattr(
        sys,
        "argv",
        ["clipo.verl.main", *build_overrides(run), "actor_rollout_ref.model.use_remove_padding=false"],
    )
    with pytest.raises((SystemExit, ValueError)):
        entry.main()
    assert not seen  # rejected before Ray starts


def test_task_runner_registers_the_trainer_before_verl_looks_it_up(monkeypatch):
    """What happens inside the Ray actor, whose process has not imported the trainer module yet."""
    from verl.trainer.main_ppo import TaskRunnerV1
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, get_trainer_cls

    import clipo.verl.main as entry

    monkeypatch.delitem(TRAINER_REGISTRY, "clipo_sync", raising=False)
    monkeypatch.delitem(sys.modules, "clipo.verl.trainer", raising=False)
    monkeypatch.setattr(
        TaskRunnerV1.__ray_actor_class__,
        "run",
        lambda self, config: get_trainer_cls(config["trainer"]["v1"]["trainer_mode"]),
    )
    trainer_cls = entry.ClipoTaskRunner().run({"trainer": {"v1": {"trainer_mode": "clipo_sync"}}})
    assert trainer_cls.__module__ == "clipo.verl.trainer" and trainer_cls.__name__ == "ClipoTrainerSync"


def _data(tmp_path, track):
    for d in [get_dataset(k) for k in ("gsm8k_train", "math_train")] + eval_files(track):
        path = tmp_path / "data" / d.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return tmp_path / "data"


def test_launcher_trains_exports_summarises_and_skips_a_finished_run(tmp_path, monkeypatch):
    from clipo.verl import launch

    out, calls = tmp_path / "run", []

    def fake_run(argv, check=False, pass_fds=(), env=None):
        calls.append(argv)
        if argv[1:3] == [
            "-m",
            "clipo.verl.main",
        ]:  # training: verl's checkpoint tracker + the trainer's metrics
            (out / "checkpoints" / "global_step_84" / "actor").mkdir(parents=True)
            (out / "checkpoints" / "latest_checkpointed_iteration.txt").write_text("84")
            (out / "metrics.jsonl").write_text(
                "".join(json.dumps({"step": s, "reward/outcome": s / 100}) + "\n" for s in range(1, 85))
            )
        else:  # verl's model merger
            Path(argv[argv.index("--target_dir") + 1]).mkdir(parents=True)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(launch.subprocess, "run", fake_run)
    argv = [
        "train",
        "--backend",
        "verl",
        "--track",
        "I",
        "--method",
        "grpo",
        "--clipo",
        "infonce",
        "--data-dir",
        str(_data(tmp_path, "I")),
        "--out",
        str(out),
        "--model-path",
        "Qwen/Qwen2.5-3B-Instruct",
    ]
    assert cli_main(argv) == 0
    assert calls[0][0] == sys.executable and calls[0][1:3] == ["-m", "clipo.verl.main"]
    assert calls[1][1:4] == ["-m", "verl.model_merger", "merge"]
    assert calls[1][calls[1].index("--local_dir") + 1] == str(
        out / "checkpoints" / "global_step_84" / "actor"
    )
    assert (out / "final").is_dir()
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["final_step"] == summary["steps"] == 84
        and summary["steps_per_epoch"] == 14
        and summary["head_warmup_steps"] == 13  # critic_warmup=14: the 14th step updates the actor
    )
    assert summary["mean_last_10"]["reward/outcome"] == pytest.approx(0.795)

    calls.clear()
    assert cli_main(argv) == 0 and calls == []  # summary.json exists: nothing to do


def test_launcher_reports_a_failed_training_and_writes_no_summary(tmp_path, monkeypatch, capsys):
    from clipo.verl import launch

    monkeypatch.setattr(
        launch.subprocess, "run", lambda argv, check=False, pass_fds=(), env=None: subprocess.CompletedProcess(argv, 3)
    )
    argv = [
        "train",
        "--backend",
        "verl",
        "--track",
        "II",
        "--method",
        "gmpo",
        "--data-dir",
        str(_data(tmp_path, "II")),
        "--out",
        str(tmp_path / "run"),
    ]
    assert cli_main(argv) == 3
    assert "resume" in capsys.readouterr().err and not (tmp_path / "run" / "summary.json").exists()


REPO = Path(__file__).resolve().parents[1]


def _dry_run_resources(tmp_path: Path, configfile: str, rule: str) -> list[dict]:
    """The resources Snakemake gives each job of ``rule`` under profiles/slurm (a dry run, no cluster)."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--profile", str(REPO / "profiles" / "slurm"), "--configfile", str(REPO / configfile), "-n"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jobs = []
    for block in done.stdout.split("\nrule ")[1:]:
        if block.startswith(f"{rule}:"):
            line = next(x for x in block.splitlines() if x.strip().startswith("resources:"))
            pairs = (kv.split("=", 1) for kv in line.split(":", 1)[1].split(", "))
            jobs.append({k.strip(): int(v) if v.isdigit() else v for k, v in pairs})
    return jobs


def _sbatch(resources: dict, threads: int) -> str:
    """The sbatch line snakemake-executor-plugin-slurm builds for a job with these resources."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(resources=Resources(resources), threads=threads, name="train_verl")
    params = {"run_uuid": "x", "slurm_logfile": "x.log", "comment_str": "x", "account": "", "partition": "",
              "workdir": None}
    return get_submit_command(job, params) + set_gres_string(job)


@pytest.mark.parametrize("configfile,gpus", [("configs/paper.yaml", 8), ("configs/gpu-1.yaml", 1)])
def test_slurm_training_jobs_ask_for_one_node_with_all_their_gpus(tmp_path, configfile, gpus):
    jobs = _dry_run_resources(tmp_path, configfile, "train_verl")
    assert jobs
    for res in jobs:
        call = _sbatch(res, threads=64)
        assert " --nodes=1" in call and f" --gpus={gpus}" in call, call
        assert res["mem_mb"] <= 512_000 and res["runtime"] <= 24 * 60  # fits common nodes and limits


def test_slurm_profile_gives_containers_the_gpus():
    from snakemake.cli import parse_args

    _, args = parse_args(["--profile", str(REPO / "profiles" / "slurm"), "-n"])
    assert args.apptainer_args.split() == ["--nv"]
