"""Running the repository's Snakemake workflow from tests (test_workflow.py, test_slurm.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / ".test" / "tiny" / "config.yaml"
"""The reduced mini workflow: every rule kind, tiny sizes."""
TINY_RUNS = ("mini_mini-base_base_none_tau-_g8_s0_mini", "mini_mini-base_grpo_none_tau-_g4_s0_mini",
             "mini_mini-base_grpo_infonce_tau0.05_g4_s0_mini")
_JOB = re.compile(r"^(?:local)?rule (\S+):$")


def snakemake(cwd: Path, *args: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the repository's workflow with this venv's Snakemake in ``cwd`` (targets before options:
    --configfile and --forcerun take several values)."""
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def jobs(snakemake_output: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a (dry) run lists, in order."""
    found: list[tuple[str, list[str]]] = []
    for line in snakemake_output.splitlines():
        if m := _JOB.match(line.strip()):
            found.append((m.group(1), []))
        elif found and line.strip().startswith("output: "):
            found[-1][1].extend(line.strip().removeprefix("output: ").split(", "))
    return found


def dry_run(cwd: Path, *args: str) -> list[tuple[str, list[str]]]:
    """The jobs a dry run of the workflow in ``cwd`` lists."""
    proc = snakemake(cwd, "-n", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return jobs(proc.stdout)


def complete_state(cwd: Path, config: Path) -> list[tuple[str, list[str]]]:
    """A finished run set without running anything: every output created, then `--touch`ed in DAG order."""
    job_list = dry_run(cwd, "--configfile", str(config))
    for rule, outs in job_list:
        for out in outs:
            path = cwd / out
            if rule == "sft":  # directory output: the base-model folder
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
    proc = snakemake(cwd, "--touch", "--cores", "1", "--configfile", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dry_run(cwd, "--configfile", str(config)) == []
    return job_list


STAND_IN_CLIPO = r"""() {
  local command=$1 out=
  while [ $# -gt 0 ]; do if [ "$1" = --out ]; then out=$2; fi; shift; done
  if [ -n "${CLIPO_JOB_TIMES:-}" ]; then echo "start $(date +%s.%N) $out" >> "$CLIPO_JOB_TIMES"; fi
  sleep "${CLIPO_JOB_SECONDS:-0}"
  mkdir -p "$out"
  case $command in
    train) touch "$out/summary.json" ;;
    evaluate) touch "$out/scores.csv" "$out/samples.parquet" ;;
  esac
  if [ -n "${CLIPO_JOB_TIMES:-}" ]; then echo "end $(date +%s.%N) $out" >> "$CLIPO_JOB_TIMES"; fi
}"""
"""`clipo train` and `clipo evaluate` reduced to creating their declared outputs under --out, as a bash
function: the rules' shell (bash) prefers it to the `clipo` the workflow puts first on PATH. Optionally
it takes $CLIPO_JOB_SECONDS and writes each job's start and end to $CLIPO_JOB_TIMES."""


def fake_completed_run(cwd: Path, config: Path) -> None:
    """A finished run set whose training and evaluation jobs really ran (through STAND_IN_CLIPO), so
    Snakemake recorded their params, code and inputs as after a real run; `--touch` records none."""
    job_list = complete_state(cwd, config)
    targets = [out for rule, outs in job_list if rule.startswith(("train_", "eval_")) for out in outs]
    env = {**os.environ, "BASH_FUNC_clipo%%": STAND_IN_CLIPO}
    proc = snakemake(cwd, *targets, "--cores", "1", "--configfile", str(config),
                     "--forcerun", "train_mini", "eval_mini", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = snakemake(cwd, "--touch", "--cores", "1", "--configfile", str(config))  # analysis up to date again
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dry_run(cwd, "--configfile", str(config)) == []


def write_config(path: Path, base: Path = TINY, **changes) -> Path:
    """A copy of config ``base`` with dotted keys changed (``**{"train.steps": 6}``)."""
    import yaml

    cfg = yaml.safe_load(base.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def metrics(run_dir: Path) -> list[dict]:
    """A run's per-step metrics without the wall-clock timings (the deterministic part)."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if not k.startswith("time/")} for m in lines]


def write_evaluation(results: Path, run_id: str, n_problems: int = 6) -> None:
    """Scores and per-sample records for one run, as `clipo evaluate` writes them, without a model: the
    analysis rules can then run for real on a `--touch`ed run set. Correctness and the step-check label
    (``process``: every third correct sample lucky) depend on the run id, so runs differ."""
    import pandas as pd

    from clipo.data.registry import benchmarks
    from clipo.evaluate import with_process_metrics
    from clipo.runs import RunSpec
    from clipo.scores import write_scores

    spec, out = RunSpec.parse(run_id), results / "eval" / run_id
    out.mkdir(parents=True, exist_ok=True)
    offset = sum(map(ord, run_id))
    samples = pd.DataFrame([
        {"run_id": run_id, "benchmark": b, "problem_id": f"{b}-{i}", "sample_id": 0, "response": "",
         "extracted_answer": None, "correct": (offset + 3 * i + j) % 4 == 0}
        for j, b in enumerate(benchmarks(spec.track)) for i in range(n_problems)])
    samples["process"] = ["wrong" if not ok else "lucky" if (offset + i) % 3 == 0 else "sound"
                          for i, ok in enumerate(samples["correct"])]
    samples.to_parquet(out / "samples.parquet")
    by_bench = samples.groupby("benchmark", sort=False)["correct"].mean() * 100
    write_scores(with_process_metrics(pd.DataFrame([
        {"source": results.name, "track": spec.track, "model": spec.model, "method": spec.method,
         "clipo": spec.clipo, "tau": spec.tau, "group_size": spec.group_size, "seed": spec.seed,
         "benchmark": b, "score": score, "n_problems": n_problems, "n_samples": 1}
        for b, score in by_bench.items()]), samples), out / "scores.csv")
