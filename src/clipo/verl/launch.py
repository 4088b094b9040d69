"""``clipo train --backend verl``: print (``--dry-run``) or run the full verl command of one paper run.

The command line is the record: every value of the paper's tables appears as an explicit override
(``clipo.verl.overrides``). A real run then writes, in the run folder (``--out``):
``run.json`` (resolved config, by ``clipo.verl.main``), ``metrics.jsonl`` and ``embeddings.parquet`` (by the
trainer, every step), ``checkpoints/`` (verl's, resumed automatically), ``final/`` (the last checkpoint
merged into a Hugging Face folder by verl's model merger) and ``summary.json`` last — its presence means
the run is complete, and a re-run then does nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from clipo import records
from clipo.lock import run_folder_lock
from clipo.runs import TrainOptions, resolve
from clipo.verl.overrides import VerlRun, command, format_command, verl_run

def plan_from_args(args: argparse.Namespace) -> VerlRun:
    return verl_run(resolve(TrainOptions.from_args(args)))


def check_inputs(run: VerlRun) -> None:
    """Fail before Ray starts when a data file (or a local model folder) is missing."""
    from clipo.data.registry import eval_files, get_dataset

    for d in [get_dataset(k) for k in run.track.train_files] + eval_files(run.track.name):
        path = Path(run.data_dir) / d.path
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: {d.paper_name or d.key} missing; run `clipo data fetch --track "
                f"{d.track} --dest {run.data_dir}`"
            )
    model = Path(run.model_path)
    if (model.is_absolute() or run.model_path.startswith(".")) and not model.exists():
        raise FileNotFoundError(f"{model}: --model-path does not exist")


def latest_checkpoint(checkpoints: Path) -> Path:
    """verl's latest complete checkpoint (its tracker file is written last)."""
    tracker = checkpoints / "latest_checkpointed_iteration.txt"
    if not tracker.exists():
        raise FileNotFoundError(f"{tracker}: training ended without a checkpoint")
    return checkpoints / f"global_step_{int(tracker.read_text().strip())}"


def run_env(run: VerlRun) -> dict[str, str]:
    """Environment of verl's processes: a CPU run adds the plugin that supplies the CPU's pieces."""
    from clipo.verl import cpu

    return {**os.environ, **cpu.ENV} if run.on_cpu else dict(os.environ)


def export_final(run: VerlRun) -> Path:
    """Merge the last FSDP actor checkpoint into ``final/`` (HF format) with verl's model merger."""
    out = Path(run.out_dir)
    final = out / "final"
    if final.exists():
        return final
    step = latest_checkpoint(out / "checkpoints")
    tmp = out / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.model_merger",
            "merge",
            "--backend",
            "fsdp",
            "--local_dir",
            str(step / "actor"),
            "--target_dir",
            str(tmp),
        ],
        check=True,
        env=run_env(run),
    )
    tmp.rename(final)
    return final


def write_summary(run: VerlRun, wall_time_s: float) -> Path:
    out = Path(run.out_dir)
    metrics_path = out / records.METRICS_FILE
    rows = records.read_metrics(metrics_path) if metrics_path.exists() else []
    final = rows[-1] if rows else {}

    def mean_last(key):
        values = [
            r[key]
            for r in rows[-10:]
            if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool)
        ]
        return sum(values) / len(values) if values else None

    summary = {
        "run_id": run.spec.run_id,
        "backend": "verl",
        "steps": run.total_training_steps or run.steps_per_epoch * run.track.total_epochs,
        "steps_per_epoch": run.steps_per_epoch,
        "head_warmup_steps": run.head_warmup_steps,
        "final_step": final.get("step"),
        "wall_time_s": wall_time_s,
        "final_metrics": final,
        "mean_last_10": {k: mean_last(k) for k in final if k != "step" and mean_last(k) is not None},
    }
    return records.write_json(out / records.SUMMARY_FILE, summary)


def main(args: argparse.Namespace) -> int:
    run = plan_from_args(args)
    argv = command(run)
    if args.dry_run:
        print(format_command(argv))
        return 0
    out = Path(run.out_dir)
    if (out / "summary.json").exists():
        print(f"{out}: run already complete (summary.json exists)", file=sys.stderr)
        return 0
    with run_folder_lock(out) as lock_fd:
        check_inputs(run)
        print(format_command(argv), file=sys.stderr)
        start = time.time()
        # the verl driver shares the lock, so killing only this launcher does not free the folder
        result = subprocess.run([sys.executable, *argv[1:]], pass_fds=(lock_fd,), env=run_env(run))
        if result.returncode != 0:
            print(
                f"clipo train: verl exited with status {result.returncode}; re-run the same command to resume "
                f"from {out / 'checkpoints'}",
                file=sys.stderr,
            )
            return result.returncode
        export_final(run)
        write_summary(run, time.time() - start)
    return 0
