"""Resumable checkpoints of the mini RL trainer: one file per step, written atomically.

A checkpoint holds everything the next step depends on — policy and head weights, both optimisers,
every random stream (torch, python, numpy, the prompt sampler's generator, CLIPO's own generator) and
the metric lines so far — so a run killed at any moment and restarted continues bit for bit as if it
had never stopped (CPU kernels are deterministic for a fixed thread count).
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path

import numpy as np
import torch

from clipo.records import atomic_write

_NAME = re.compile(r"^step_(\d{6})\.pt$")


def capture_rng() -> dict:
    """The global random streams (the policy's sampling draws from torch's)."""
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save(folder: Path, step: int, state: dict, keep: int = 1) -> Path:
    """Write ``state`` to ``folder/step_NNNNNN.pt`` (temp file + rename); keep only the newest ``keep``."""
    path = atomic_write(Path(folder) / f"step_{step:06d}.pt", lambda tmp: torch.save(state, tmp))
    for old in sorted(_checkpoints(folder))[:-keep]:
        old[1].unlink(missing_ok=True)
    return path


def latest(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (temp files of an interrupted write are ignored)."""
    found = sorted(_checkpoints(folder))
    return found[-1][1] if found else None


def load(path: Path) -> dict:
    """A checkpoint written by ``save``; a damaged one (truncated by a full disk or a copy) is one error
    naming the file, not torch's zip-reader traceback."""
    from clipo.errors import SchemaError

    try:
        # Our own file (python/numpy RNG states are not plain tensors), hence weights_only=False.
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise SchemaError(f"{path}: unreadable checkpoint ({str(e).splitlines()[0]}); delete it to resume "
                          "from an earlier checkpoint, or from the start if it is the only one") from None


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
