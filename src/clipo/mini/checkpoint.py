"""Resumable checkpoints of the mini RL trainer: one file per step, written atomically.

A checkpoint holds everything the next step depends on — policy and head weights, both optimisers,
every random stream (torch, python, numpy, the prompt sampler's generator, CLIPO's own generator) and
the metric lines so far — so a run killed at any moment and restarted continues bit for bit as if it
had never stopped (CPU kernels are deterministic for a fixed thread count).

A checkpoint holds tensors and plain Python values only and is read with ``torch.load(weights_only=True)``:
a run folder is an input like any other, and a crafted file must not run code when a run resumes.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path

import numpy as np
import torch

from clipo.errors import SchemaError
from clipo.records import atomic_write

_NAME = re.compile(r"^step_(\d{6})\.pt$")


def capture_rng() -> dict:
    """The global random streams (the policy's sampling draws from torch's), as tensors and plain values."""
    kind, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached_gaussian),
    }


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, key, pos, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))


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
    """A checkpoint written by ``save``. A damaged one (truncated by a full disk or a copy) or one holding
    anything but tensors and plain values (a pickle that would run code) is one error naming the file;
    nothing in it is executed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused a global: not a checkpoint of ours
        raise SchemaError(f"{path}: not a clipo checkpoint (it holds Python objects other than tensors and "
                          f"plain values; refused unread: {str(e).splitlines()[0][:200]}); delete it") from None
    except (RuntimeError, EOFError) as e:
        raise SchemaError(f"{path}: unreadable checkpoint ({str(e).splitlines()[0]}); delete it to resume "
                          "from an earlier checkpoint, or from the start if it is the only one") from None


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
