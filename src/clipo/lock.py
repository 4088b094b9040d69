"""One writer per run folder: ``clipo train`` holds an exclusive lock on ``<run folder>/.clipo.lock``.

Two trainings into the same folder (say with different τ) would otherwise both succeed and leave one
configuration's run.json beside the other's checkpoints. The lock is ``flock`` on an open file, so the
kernel releases it when the process ends in any way, SIGKILL included: there is no stale lock to
remove by hand. The file itself stays (removing it would let a third process lock a new file while
the second still holds the old one); it holds the holder's host and pid for the error message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".clipo.lock"


class RunFolderLocked(RuntimeError):
    """Another process is writing the run folder."""


@contextmanager
def run_folder_lock(folder: str | os.PathLike, activity: str = "trained") -> Iterator[int]:
    """Hold the run folder's lock for the block; raise RunFolderLocked at once if another process has it.

    Yields the lock's file descriptor: a child started with ``pass_fds=(fd,)`` shares the lock, which is
    then released only when both have ended.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunFolderLocked(
                f"{folder}: already being {activity} by {holder} (lock {path}); wait for it to finish, or "
                "stop it, or give this run another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)  # releases the lock
