"""Running the repository's Snakemake workflow from tests (test_workflow.py, test_slurm.py)."""

from __future__ import annotations

import json
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


def snakemake(cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the repository's workflow with this venv's Snakemake in ``cwd`` (targets before options:
    --configfile and --forcerun take several values)."""
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def jobs(snakemake_output: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a (dry) run lists, in order."""
    found: list[tuple[str, list[str]]] = []
    for line in snakemake_output.splitlines():
        if m := _JOB.match(line.strip()):
            found.append((m.group(1), []))
        elif found and line.strip().startswith("output: "):
            found[-1][1].extend(line.strip().removeprefix("output: ").split(", "))
    return found


def metrics(run_dir: Path) -> list[dict]:
    """A run's per-step metrics without the wall-clock timings (the deterministic part)."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if not k.startswith("time/")} for m in lines]
