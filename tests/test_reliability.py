"""Interruptions and a hostile filesystem (issue 12, items 8-10): killed writes leave nothing behind, a
run folder is trained by one process at a time, and OS errors are one line naming the path."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clipo.records import atomic_write


def test_a_killed_atomic_write_leaves_no_temporary_after_the_rewrite(tmp_path):
    target = tmp_path / "figures" / "fig4_tsne.pdf"
    code = ("import sys, time; from clipo.records import atomic_write; "
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


# ------------------------------------------------------------------------------------------------
# One line naming the file instead of a traceback (item 8)
# ------------------------------------------------------------------------------------------------
def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no file name


def _disk_full(monkeypatch):
    """statvfs of a full disk: nothing left for unprivileged writers."""
    real = os.statvfs

    class Full:
        def __init__(self, path):
            s = real(path)
            self.f_frsize, self.f_bavail = s.f_frsize, 0

    monkeypatch.setattr(os, "statvfs", Full)


def test_fetch_on_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    from clipo.cli import main
    from clipo.data import fetch

    entry = fetch.track_files("I", ["gsm8k"])[0]
    (tmp_path / "release" / entry.path).parent.mkdir(parents=True)
    (tmp_path / "release" / entry.path).write_bytes(b"x")
    monkeypatch.setattr(fetch.shutil, "copyfile", _no_space)
    dest = tmp_path / "data"
    assert main(["data", "fetch", "--track", "I", "--dest", str(dest), "--from", str(tmp_path / "release"),
                 "--only", "gsm8k"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"clipo data: error: {dest / entry.path}: No space left on device; free space")
    assert err.count("\n") == 1 and not list(dest.rglob("*.tmp"))


def test_fetch_dest_that_is_a_file_is_one_error(tmp_path, capsys):
    from clipo.cli import main

    dest = tmp_path / "data"
    dest.write_text("")
    assert main(["data", "fetch", "--track", "I", "--dest", str(dest), "--only", "gsm8k"]) == 2
    assert f"--dest {dest}: is a file" in capsys.readouterr().err


def test_torch_save_on_a_full_disk_becomes_enospc_naming_the_checkpoint(tmp_path, monkeypatch):
    """torch.save reports ENOSPC as RuntimeError('... file write failed'); sft and train checkpoints."""
    from clipo.cli import os_error_message

    def torch_save(tmp):
        tmp.write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing "
                           "file data/3: file write failed")

    _disk_full(monkeypatch)
    target = tmp_path / "base-model.sft-checkpoint" / "state.pt"
    with pytest.raises(OSError) as info:
        atomic_write(target, torch_save)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert os_error_message(info.value).startswith(f"{target}: No space left on device; free space")
    assert list(tmp_path.iterdir()) == []  # no empty *.sft-checkpoint/ left


def test_read_only_output_folder_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    """(As root chmod cannot make a folder read-only, so mkstemp is made to fail as it would.)"""
    import tempfile

    from clipo.cli import main

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, ".table1.md.x1y2z3w4.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "tables"
    out.mkdir()
    assert main(["tables", "--source", "paper", "--out", str(out), "--only", "table1"]) == 1
    err = capsys.readouterr().err
    assert err == f"clipo tables: error: {out}: Read-only file system; that file system is read-only: " \
                  "choose an output folder on a writable one\n"


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable scores CSV"),
    (b"source,track,model,method,clipo,tau,group_size,seed,benchmark,score,n_problems,n_samples\n",
     "header but no rows"),
    (b'a,"b\n', "not a readable scores CSV"),
    (b"source,track,model,method,clipo,tau,group_size,seed,benchmark,score,n_problems,n_samples\n"
     b"tiny,mini,m,grpo,none,,four,0,Test,1.0,8,1\n", "column group_size"),
])
def test_malformed_scores_csv_names_the_file(tmp_path, capsys, content, message):
    from clipo.cli import main

    scores = tmp_path / "run-set" / "eval" / "run" / "scores.csv"
    scores.parent.mkdir(parents=True)
    scores.write_bytes(content)
    assert main(["tables", "--source", str(tmp_path / "run-set"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{scores}: " in err and message in err and err.count("\n") == 1, err


def test_truncated_checkpoint_is_one_error_naming_it(tmp_path):
    from clipo.errors import SchemaError
    from clipo.mini import checkpoint

    path = checkpoint.save(tmp_path, 3, {"step": 3, "weights": list(range(1000))})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SchemaError, match=rf"^{path}: unreadable checkpoint .*; delete it to resume"):
        checkpoint.load(path)


def test_model_save_on_a_full_disk_names_the_model_folder(tmp_path, monkeypatch):
    """safetensors reports ENOSPC as SafetensorError; the sft and train final models are saved this way."""
    from clipo import hf

    class Model:
        def save_pretrained(self, folder):
            (Path(folder) / "model.safetensors").write_bytes(b"partial")
            raise RuntimeError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                               'message: "No space left on device" })')

    out = tmp_path / "base-model"
    with pytest.raises(OSError) as info:
        hf.save(Model(), None, out)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(out)
    assert list(tmp_path.iterdir()) == []
