"""The tidy results format every evaluator writes and every table and figure reads.

``scores.csv``: one row per (run, benchmark) score. ``samples.parquet``: one row per generated sample,
so statistics (bootstrap CIs of Δ) can be computed. Scores are Pass@1 in percent.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import tempfile
from pathlib import Path

import pandas as pd

SCORE_COLUMNS: tuple[str, ...] = (
    "source",  # 'paper' or the run-set name (e.g. 'mini')
    "track",  # I, II, mini
    "model",
    "method",  # base, grpo, gspo, dapo, gmpo
    "clipo",  # none, infonce, supcon, softnn, infonce-fixed
    "tau",  # float, NaN when CLIPO is off
    "group_size",
    "seed",
    "benchmark",  # short name as in the paper's tables (clipo.data.registry)
    "score",  # Pass@1 in %
    "n_problems",
    "n_samples",  # samples per problem
)

SAMPLE_COLUMNS: tuple[str, ...] = (
    "run_id", "benchmark", "problem_id", "sample_id", "response", "extracted_answer", "correct",
)


class SchemaError(ValueError):
    """A results file does not match the tidy format; the message names file and column."""


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


def validate_scores(df: pd.DataFrame, where: str = "scores") -> pd.DataFrame:
    missing = [c for c in SCORE_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(SCORE_COLUMNS)}")
    df = df[list(SCORE_COLUMNS)].copy()
    df["tau"] = pd.to_numeric(df["tau"], errors="coerce")
    for col, kind in (("group_size", int), ("seed", int), ("n_problems", int), ("n_samples", int),
                      ("score", float)):
        try:
            df[col] = pd.to_numeric(df[col], errors="raise").astype(kind)
        except (ValueError, TypeError) as e:
            raise SchemaError(f"{where}: column {col}: {e}") from None
    return df


def write_scores(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    df = validate_scores(df, str(path))
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such results file")
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SchemaError(f"{path}: not a readable scores CSV ({e}); run `clipo evaluate` again") from None
    if df.empty:
        raise SchemaError(f"{path}: header but no rows; run `clipo evaluate` again")
    return validate_scores(df, str(path))


def write_samples(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    missing = [c for c in SAMPLE_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: missing sample column(s) {', '.join(missing)}")
    return atomic_write(path, lambda tmp: df[list(SAMPLE_COLUMNS)].to_parquet(tmp, index=False))
