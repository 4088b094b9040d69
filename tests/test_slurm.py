"""The workflow on a real single-node SLURM cluster, submitted through ``--profile profiles/slurm``.

The cluster (munged, slurmctld, slurmd from Debian's packages; no accounting database, so the
plugin polls with squeue; one fake GPU) is started by .ci/slurm/setup.sh and stopped by pid file by
.ci/slurm/stop.sh. Runs only where CLIPO_SLURM_TEST=1 (CI sets it) and as root with apt; everywhere
else it is skipped with the reason printed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, TINY, TINY_RUNS, metrics

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SETUP, STOP = REPO / ".ci" / "slurm" / "setup.sh", REPO / ".ci" / "slurm" / "stop.sh"
SNAKEMAKE_TIMEOUT_S = 1200


def _why_not() -> str | None:
    """Why a SLURM cluster cannot be started here, or None."""
    if os.environ.get("CLIPO_SLURM_TEST") != "1":
        return "CLIPO_SLURM_TEST=1 not set (CI sets it; the test installs SLURM packages and starts daemons)"
    if os.geteuid() != 0:
        return "needs root to install SLURM and start munged/slurmctld/slurmd"
    if not (shutil.which("slurmctld") or shutil.which("apt-get")):
        return "neither SLURM installed nor apt-get to install it (Debian/Ubuntu only)"
    if Path("/etc/slurm/slurm.conf").exists() and not Path("/etc/slurm/slurm.conf").is_symlink():
        return "/etc/slurm/slurm.conf belongs to an existing SLURM installation; not touching it"
    for port in (6817, 6818):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"port {port} is in use (a SLURM daemon is already running)"
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    reason = _why_not()
    if reason:
        print(f"SLURM test skipped: {reason}")
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("slurm-ci")
    env = {**os.environ, "BASE": str(base), "ACCOUNTING": "none", "FAKE_GPU": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            reason = f"SLURM could not start: {(proc.stdout + proc.stderr)[-2000:]}"
            print(reason)
            pytest.skip(reason)
        print(proc.stdout.strip())
        print(f"SLURM cluster up in {time.perf_counter() - t0:.0f} s")
        yield base
    finally:
        subprocess.run(["bash", str(STOP)], env=env, timeout=120)


def slurm_snakemake(cwd: Path, config: Path, *targets: str) -> subprocess.CompletedProcess:
    """The workflow through the cluster profile; squeue polling (no accounting DB), short first poll.
    `timeout -k`: a hung Snakemake ignores SIGTERM, so SIGKILL follows after 30 s."""
    cmd = ["timeout", "-k", "30", str(SNAKEMAKE_TIMEOUT_S), sys.executable, "-m", "snakemake",
           "--snakefile", str(REPO / "Snakefile"), *targets, "--profile", str(REPO / "profiles" / "slurm"),
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
           "--configfile", str(config)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _slurm_ids(log: Path) -> str:
    m = re.match(r"slurm_job_id=(\S*) host=", log.read_text())
    assert m, f"{log}: no job header"
    return m.group(1)


def test_reduced_workflow_runs_in_slurm_jobs_like_locally(slurm_cluster, tiny_local_run, tmp_path):
    t0 = time.perf_counter()
    proc = slurm_snakemake(tmp_path, TINY)
    wall = time.perf_counter() - t0
    print(f"tiny workflow through --profile profiles/slurm: {wall:.0f} s")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]

    # every job ran inside its own SLURM job, which SLURM reports as completed
    logs = sorted((tmp_path / "results" / "tiny" / "logs").rglob("*.log"))
    ids = {log.relative_to(tmp_path).as_posix(): _slurm_ids(log) for log in logs}
    assert len(ids) == 13 and all(i.isdigit() for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids), "two rules shared a SLURM job"
    squeue = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%T"], capture_output=True, text=True,
                            check=True)
    states = dict(line.split("|") for line in squeue.stdout.split())
    # each rule's job is the inner step of a SLURM job the plugin submitted; both share the id
    assert all(states.get(i) == "COMPLETED" for i in ids.values()), (ids, states)

    # the same outputs as the local run
    local, cluster = tiny_local_run, tmp_path
    for split in sorted((local / "data" / "mini").glob("*.parquet")):
        pd.testing.assert_frame_equal(pd.read_parquet(split),
                                      pd.read_parquet(cluster / "data/mini" / split.name))
    weights = ["results/tiny/base-model/model.safetensors"]
    for run in TINY_RUNS[1:]:
        weights.append(f"results/tiny/runs/{run}/final/model.safetensors")
        assert metrics(cluster / "results/tiny/runs" / run) == metrics(local / "results/tiny/runs" / run), run
    for w in weights:
        assert (cluster / w).read_bytes() == (local / w).read_bytes(), w
    compared = [f"results/tiny/eval/{run}/scores.csv" for run in TINY_RUNS]
    compared.append("results/tiny/tables/table1.csv")
    for f in compared:
        assert (cluster / f).read_text() == (local / f).read_text(), f


def test_a_failing_job_is_reported_as_failed(slurm_cluster, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["fetch_from"] = str(tmp_path / "no-such-folder")  # `clipo data fetch --from` fails at once
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = slurm_snakemake(tmp_path, path, "data/train/gsm8k.parquet")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-5000:]
    assert "Error in rule fetch_track_I" in out
    assert re.search(r"SLURM-job '\d+' failed, SLURM status is: 'FAILED'", out), out[-5000:]
    log = tmp_path / "results" / "tiny" / "logs" / "data" / "fetch_track_I.log"
    assert _slurm_ids(log).isdigit()
    assert "no-such-folder" in log.read_text()
