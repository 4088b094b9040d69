"""Fixtures shared by test files."""

from __future__ import annotations

import time

import pytest
from workflow_helpers import TINY, snakemake


@pytest.fixture(scope="session")
def tiny_local_run(tmp_path_factory):
    """The reduced mini workflow (.test/tiny) run locally, once per session: test_workflow checks it,
    test_slurm compares the SLURM run's outputs with it."""
    workdir = tmp_path_factory.mktemp("tiny-local")
    t0 = time.perf_counter()
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(TINY))
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    print(f"tiny workflow, local, --cores 2: {time.perf_counter() - t0:.0f} s")
    return workdir
