"""Interruptions and a hostile filesystem (issue 12, items 8-10): killed writes leave nothing behind, a
run folder is trained by one process at a time, and OS errors are one line naming the path."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipo.analysis.schema import atomic_write


def test_a_killed_atomic_write_leaves_no_temporary_after_the_rewrite(tmp_path):
    target = tmp_path / "figures" / "fig4_tsne.pdf"
    code = ("import sys, time; from clipo.analysis.schema import atomic_write; "
            "atomic_write(sys.argv[1], lambda tmp: (print('writing', flush=True), time.sleep(60)))")
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert [p.name for p in target.parent.glob(".fig4_tsne.pdf.*.tmp")]  # what a SIGKILL leaves

    atomic_write(target, lambda tmp: tmp.write_bytes(b"%PDF"))  # the recovery writes the target again
    assert sorted(p.name for p in target.parent.iterdir()) == ["fig4_tsne.pdf"]


def test_stale_temporaries_of_other_targets_are_kept(tmp_path):
    other = tmp_path / ".fig4_tsne.pdf.bak.abcd1234.tmp"  # a temporary of 'fig4_tsne.pdf.bak'
    other.write_text("")
    atomic_write(tmp_path / "fig4_tsne.pdf", lambda tmp: tmp.write_text("x"))
    assert other.exists()


def test_a_failed_write_removes_the_folders_it_created(tmp_path):
    def no_space(tmp):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    ckpt = tmp_path / "results" / "base-model.sft-checkpoint" / "state.pt"
    with pytest.raises(OSError, match="No space left"):
        atomic_write(ckpt, no_space)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "keep").mkdir()
    with pytest.raises(OSError):
        atomic_write(tmp_path / "keep" / "x.csv", no_space)
    assert (tmp_path / "keep").is_dir()  # it existed before


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------------
# One `clipo train` per run folder (item 9)
# ------------------------------------------------------------------------------------------------
MINI_TRAIN = ["train", "--backend", "mini", "--track", "mini", "--method", "grpo", "--model-path", "no-model"]


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another process holding the run folder's lock, as a running `clipo train` does."""
    code = ("import sys, time; from clipo.lock import run_folder_lock\n"
            "with run_folder_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


@pytest.mark.parametrize("backend", ["mini", "verl"])
def test_a_second_train_into_the_same_folder_fails_clearly(tmp_path, capsys, backend):
    from clipo.cli import main

    out = tmp_path / "run"
    holder = _hold_lock(out)
    try:
        argv = (MINI_TRAIN if backend == "mini" else
                ["train", "--backend", "verl", "--track", "I", "--method", "grpo", "--data-dir", str(tmp_path)])
        assert main([*argv, "--out", str(out), "--clipo", "infonce", "--tau", "0.2"]) == 2
        err = capsys.readouterr().err
        assert f"{out}: already being trained by host " in err and f"pid {holder.pid}" in err, err
        assert sorted(p.name for p in out.iterdir()) == [".clipo.lock"]  # nothing else written
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path, capsys):
    from clipo.cli import main

    out = tmp_path / "run"
    holder = _hold_lock(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert main([*MINI_TRAIN, "--out", str(out)]) == 2  # gets past the lock, then finds no base model
    assert "no-model does not exist" in capsys.readouterr().err
