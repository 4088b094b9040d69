"""The files of a run folder: one writer and one reader each, shared by both trainers and the analysis.

==========================  ===============================================================================
``metrics.jsonl``           one JSON object per RL step (keys documented in ``clipo.mini.train``)
``embeddings.parquet``      one row per rollout of the first and the last step (Figure 4); EMBEDDING_SCHEMA
``run.json``                the resolved configuration of the run (``read_run``: one view for both trainers)
``summary.json``            written last: its presence means the run is complete
==========================  ===============================================================================

NaN and ±inf become JSON null here (``json_row``), nowhere else. Every file is written to a temporary
name and renamed (``atomic_write``), so a reader never sees half a file. Bottom layer: imports nothing
of the package but ``clipo.errors``.
"""

from __future__ import annotations

import errno
import glob
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from clipo.errors import SchemaError

METRICS_FILE = "metrics.jsonl"
EMBEDDINGS_FILE = "embeddings.parquet"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"

EMBEDDING_COLUMNS = ("step", "phase", "group_id", "correct", "embedding", "space")
"""Columns of embeddings.parquet; ``space`` is 'head' (CLIPO on) or 'hidden' (pooled hidden states)."""
EMBEDDING_REQUIRED = EMBEDDING_COLUMNS[:5]
"""What a reader needs (``space`` is informative only)."""


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``, so readers never see a half-written file.

    Leaves nothing behind: temporaries of ``path`` that a killed writer left (``.<name>.<8 chars>.tmp``,
    mkstemp's pattern) are removed first, which assumes one writer per target at a time (one Snakemake
    job per output, one process per locked run folder); folders created for ``path`` are removed again
    when the write fails (an empty checkpoint folder after ENOSPC would otherwise stay). A failed write
    raises OSError naming ``path``: writers report a full disk without a file name (``write()``) or not
    as OSError at all (torch.save's "file write failed"), so the free space is looked at while the
    partial temporary still fills the disk.
    """
    path = Path(path)
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    for old in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if stale.fullmatch(old.name):
            old.unlink(missing_ok=True)
    tmp = None
    try:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as e:  # a read-only or foreign folder: name the folder, not the temporary
            raise OSError(e.errno, e.strerror, str(path.parent)) from None
        os.close(fd)
        try:
            write(Path(tmp))
        except Exception as e:
            stat = os.statvfs(path.parent)
            if stat.f_bavail * stat.f_frsize < 1 << 20:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
            if isinstance(e, OSError) and e.filename is None:
                raise OSError(e.errno, e.strerror, str(path)) from e
            raise
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:  # not empty (another writer), or already gone
                break
        raise
    return path


def json_value(v):
    """A metric value as JSON can hold it: numpy/torch scalars unwrapped, NaN and ±inf → None."""
    if not isinstance(v, (bool, int, float, str)) and hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v


def json_row(row: dict) -> dict:
    """One metrics row with every value made valid JSON (see ``json_value``)."""
    return {k: json_value(v) for k, v in row.items()}


# ---------------------------------------------------------------------------------------- metrics.jsonl
def write_metrics(path: str | os.PathLike, rows: list[dict]) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text("".join(json.dumps(json_row(r)) + "\n" for r in rows)))


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The rows of metrics.jsonl; a torn last line (run still writing) is skipped, any other bad line fails."""
    path = Path(path)
    lines = path.read_text().splitlines()
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):
                break
            raise SchemaError(f"{path}:{i}: not a JSON object ({e.msg})") from None
        if not isinstance(row, dict):
            raise SchemaError(f"{path}:{i}: not a JSON object (found a {type(row).__name__}: {line[:40]})")
        step = row.get("step")
        if "step" in row and (not isinstance(step, int) or isinstance(step, bool)):
            raise SchemaError(f"{path}:{i}: step must be an integer, found {step!r}")
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------- embeddings.parquet
def _vector(e):
    """One embedding as a float32 array (from a torch tensor, an array or a list)."""
    import numpy as np

    if hasattr(e, "detach"):
        e = e.detach().float().numpy()
    return np.asarray(e, np.float32)


def embedding_rows(step: int, phase: str, space: str, emb, group_ids, correct) -> list[dict]:
    """Rows of one dump: ``emb`` [N, d] (tensor or array), one group id and correctness flag per row."""
    return [
        {"step": step, "phase": phase, "group_id": int(g), "correct": bool(c), "embedding": _vector(e),
         "space": space}
        for g, c, e in zip(group_ids, correct, emb, strict=True)
    ]


def write_embeddings(path: str | os.PathLike, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("step", pa.int64()),
            ("phase", pa.string()),
            ("group_id", pa.int64()),
            ("correct", pa.bool_()),
            ("embedding", pa.list_(pa.float32())),
            ("space", pa.string()),
        ]
    )
    columns = {name: [r[name] for r in rows] for name in EMBEDDING_COLUMNS}
    columns["embedding"] = [_vector(e) for e in columns["embedding"]]
    table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def read_embeddings(path: str | os.PathLike):
    """embeddings.parquet as a pandas frame; a file without the needed columns fails naming them."""
    import pandas as pd

    df = pd.read_parquet(path)
    missing = [c for c in EMBEDDING_REQUIRED if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(EMBEDDING_REQUIRED)}"
        )
    return df


# ------------------------------------------------------------------------------ run.json, summary.json
def write_json(path: str | os.PathLike, record: dict) -> Path:
    """run.json or summary.json: indented JSON; values JSON cannot hold are written as strings."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=2, default=str)))


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SchemaError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(record, dict):
        raise SchemaError(f"{path}: expected a JSON object, found {type(record).__name__}")
    return record


def run_files(runs_dir: str | os.PathLike, name: str, runs: list[str] | None = None) -> list[Path]:
    """``<runs_dir>/*/<name>``, or only those of the run ids ``runs`` (the workflow's grid) that exist."""
    runs_dir = Path(runs_dir)
    if runs is None:
        return sorted(runs_dir.glob(f"*/{name}"))
    return [p for p in (runs_dir / run / name for run in runs) if p.is_file()]


@dataclass(frozen=True)
class RunRecord:
    """What a run's run.json says about its training, the same for both trainers: the mini trainer
    writes its resolved ``Config`` under ``config``; the verl launcher writes verl's whole config there
    (``trainer.total_epochs``, ``data.train_batch_size``, ``actor_rollout_ref.rollout.n``, ...)."""

    path: Path
    backend: str
    """'mini' or 'verl'."""
    steps: int | None
    """RL steps of the run; None for a verl run that counts epochs and has no summary.json yet."""
    epochs: int | None
    """Passes over the training prompts (verl); None for the mini trainer, which counts steps."""
    prompts_per_step: int
    rollouts_per_prompt: int
    train_files: tuple[str, ...]
    policy_parameters: int | None
    """Size of the policy where the trainer records it (mini)."""

    @property
    def length(self) -> str:
        """'174 steps', or '6 epochs' where the steps are not known."""
        return f"{self.steps:,} steps" if self.steps is not None else f"{self.epochs:,} epochs"


def _field(record: dict, path: Path, *keys: str):
    node = record
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise SchemaError(f"{path}: no {'.'.join(keys[:i + 1])} (a run.json of the {record.get('backend', 'mini')} "
                              "trainer has it)")
        node = node[key]
    return node


def read_run(path: str | os.PathLike) -> RunRecord:
    """run.json as a RunRecord; a file lacking what the view needs fails naming the file and the key."""
    path = Path(path)
    record = read_json(path)
    backend = record.get("backend", "mini")
    if backend == "verl":
        steps = _field(record, path, "config", "trainer", "total_training_steps")
        summary = path.with_name(SUMMARY_FILE)
        if steps is None and summary.is_file():  # verl counted epochs; the launcher wrote the steps
            steps = read_json(summary).get("steps")
        files = _field(record, path, "config", "data", "train_files")
        return RunRecord(path, backend, steps, _field(record, path, "config", "trainer", "total_epochs"),
                         _field(record, path, "config", "data", "train_batch_size"),
                         _field(record, path, "config", "actor_rollout_ref", "rollout", "n"),
                         tuple([files] if isinstance(files, str) else files), None)
    if backend != "mini":
        raise SchemaError(f"{path}: backend {backend!r}; valid: mini, verl")
    return RunRecord(path, backend, _field(record, path, "config", "steps"), None,
                     _field(record, path, "config", "train_batch_size"), _field(record, path, "config", "group_size"),
                     (_field(record, path, "config", "train_file"),),
                     (record.get("derived") or {}).get("policy_parameters"))
