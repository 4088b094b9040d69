"""Fetch the authors' released parquet files into ``<dest>/train`` and ``<dest>/test``, verified.

pooch does the download (with a progress bar) and the SHA-256 check. On top we check the row count
from the registry and the verl schema, and every file reaches its final name only through a rename
after all checks passed: a failed fetch leaves nothing behind. A file already present with the right
checksum is kept without touching the network. ``source`` imports the same files from a local folder
(air-gapped clusters), accepting both our layout and the release's ``data/`` layout.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pooch
import pyarrow.parquet as pq

from clipo.data.registry import RELEASED, DatasetFile
from clipo.data.schema import load_dataset
from clipo.errors import ConfigError, SchemaError, UserError
from clipo.records import atomic_write

log = logging.getLogger(__name__)


class ChecksumError(UserError):
    """A file's SHA-256 differs from the registry's."""


@dataclass(frozen=True)
class Fetched:
    key: str
    path: Path
    action: str
    """'present' (kept, no network), 'downloaded' or 'imported'."""


def track_files(track: str, only: list[str] | None = None) -> list[DatasetFile]:
    """The released files of a track (training and evaluation), optionally restricted to some keys."""
    files = [d for d in RELEASED if d.track == track]
    if not files:
        tracks = sorted({d.track for d in RELEASED})
        raise ConfigError(f"no released files for track {track!r}; valid: {', '.join(tracks)}")
    if only:
        valid = {d.key for d in files}
        unknown = [k for k in only if k not in valid]
        if unknown:
            raise ConfigError(f"unknown dataset(s) {', '.join(unknown)} for track {track}; "
                              f"valid: {', '.join(sorted(valid))}")
        files = [d for d in files if d.key in only]
    return files


def _downloader(progress: bool):
    """The pooch downloader (a seam for tests, which serve fixtures without a network).

    Its bar only on a terminal: in a log file tqdm's carriage returns make one unreadable line, and each
    file gets its own line when it is done anyway."""
    return pooch.HTTPDownloader(progressbar=progress and sys.stderr.isatty())


def verify(entry: DatasetFile, path: Path, origin: str) -> None:
    """Raise unless ``path`` has the registry's checksum and row count and follows the verl schema."""
    actual = pooch.file_hash(str(path), alg="sha256")
    if actual != entry.sha256:
        raise ChecksumError(f"{entry.path} (from {origin}): sha256 mismatch, expected {entry.sha256}, "
                            f"got {actual}; nothing was written")
    rows = pq.ParquetFile(path).metadata.num_rows
    if rows != entry.rows:
        raise SchemaError(f"{entry.path} (from {origin}): expected {entry.rows} rows, found {rows}")
    load_dataset(path)


def _download_into(entry: DatasetFile, tmp: Path, progress: bool) -> None:
    # pooch streams to a temporary name of its own and deletes it when its hash check fails.
    import requests

    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=tmp.parent) as stage:
        try:
            got = pooch.retrieve(entry.url, known_hash=f"sha256:{entry.sha256}", fname=Path(entry.path).name,
                                 path=stage, downloader=_downloader(progress))
        except ValueError as e:  # pooch's checksum mismatch names expected and actual hash
            if "hash" not in str(e):
                raise
            raise ChecksumError(f"{entry.path} (from {entry.url}): {e}") from None
        except requests.RequestException as e:
            raise UserError(f"{entry.path}: download from {entry.url} failed ({e}); "
                            "fetch elsewhere and use --from DIR") from None
        shutil.move(got, tmp)
    verify(entry, tmp, entry.url)


def local_source(entry: DatasetFile, source: Path) -> Path:
    """Where ``entry`` lies in a local copy: our layout or the release's (``data/train``, ``data/test``)."""
    candidates = [source / entry.path, source / "data" / entry.path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{entry.key}: none of {', '.join(map(str, candidates))} exists")


def _copy_into(entry: DatasetFile, src: Path, tmp: Path) -> None:
    shutil.copyfile(src, tmp)
    verify(entry, tmp, str(src))


def fetch_file(entry: DatasetFile, dest: str | os.PathLike, source: str | os.PathLike | None = None,
               progress: bool = True) -> Fetched:
    """Make ``<dest>/<entry.path>`` the verified released file; no network when it already is."""
    target = Path(dest) / entry.path
    if target.is_file():
        if pooch.file_hash(str(target), alg="sha256") == entry.sha256:
            return Fetched(entry.key, target, "present")
        # A stale or corrupt copy must not stay in place, whatever happens next.
        log.warning("%s: checksum differs from the registry; replacing it", target)
        target.unlink()
    if source is not None:
        src = local_source(entry, Path(source))
        atomic_write(target, lambda tmp: _copy_into(entry, src, tmp))
        return Fetched(entry.key, target, "imported")
    atomic_write(target, lambda tmp: _download_into(entry, tmp, progress))
    return Fetched(entry.key, target, "downloaded")


def fetch(track: str, dest: str | os.PathLike, source: str | os.PathLike | None = None,
          only: list[str] | None = None, progress: bool = True) -> list[Fetched]:
    """Fetch every released file of a track (or the ``only`` keys) into ``dest``."""
    if Path(dest).exists() and not Path(dest).is_dir():
        raise UserError(f"--dest {dest}: is a file; give the data folder (files go to DEST/train, DEST/test)")
    return [fetch_file(entry, dest, source, progress) for entry in track_files(track, only)]
