"""Progress of long loops, readable on a terminal and in a log file.

On a terminal, tqdm's bar. Snakemake sends each command's stderr to a log file, where tqdm's carriage
returns would make the whole run one unreadable "line"; there the same calls print a plain line every
``every_s`` seconds or ``every_fraction`` of the total, whichever comes first (but not more often than
every ``min_gap_s``, so a loop of a few seconds writes just its first and last line):

    rl: 120/300 step (40%) | 2.31 step/s | elapsed 00:52 | ETA 01:18 | reward=0.532, s_per_step=0.43

so ``tail -f`` on the log shows where a run is. Both kinds support what the call sites use: iteration,
``update(n)``, ``set_postfix(**values)`` and ``close()``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

EVERY_S = 30.0
"""Seconds between two plain lines at most."""
EVERY_FRACTION = 0.1
"""Share of the total between two plain lines at most."""
MIN_GAP_S = 1.0
"""Seconds between two plain lines at least (the last line excepted)."""


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None, initial: int = 0,
             unit: str = "it", disable: bool = False, stream: TextIO | None = None,
             every_s: float = EVERY_S, every_fraction: float = EVERY_FRACTION, min_gap_s: float = MIN_GAP_S):
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else a ``PlainProgress``."""
    stream = stream or sys.stderr
    if disable or stream.isatty():
        from tqdm import tqdm

        return tqdm(iterable, desc=desc, total=total, initial=initial, unit=unit, file=stream,
                    disable=disable, dynamic_ncols=True)
    return PlainProgress(iterable, desc=desc, total=total, initial=initial, unit=unit, stream=stream,
                         every_s=every_s, every_fraction=every_fraction, min_gap_s=min_gap_s)


class PlainProgress:
    """Progress as whole lines: one at the start, then periodic ones, and one at the end."""

    def __init__(self, iterable: Iterable | None, *, desc: str, total: int | None, initial: int, unit: str,
                 stream: TextIO, every_s: float, every_fraction: float, min_gap_s: float):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = initial + len(iterable)
        self.iterable, self.desc, self.total, self.unit, self.stream = iterable, desc, total, unit, stream
        self.every_s, self.min_gap_s = every_s, min_gap_s
        self.every_n = max(1, round(total * every_fraction)) if total else None
        self.n = self.initial = initial
        self.postfix: dict[str, object] = {}
        self.started = self.last_time = time.monotonic()
        self.last_n = initial
        self.closed = False
        self._write()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item  # the loop body runs here, so a postfix it sets is in the line counting this item
            self.update(1)
        self.close()

    def set_postfix(self, **values) -> None:
        self.postfix = values

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        since_last = now - self.last_time
        due_by_count = self.every_n is not None and self.n - self.last_n >= self.every_n
        if since_last >= self.every_s or (due_by_count and since_last >= self.min_gap_s) or self.n == self.total:
            self._write(now)

    def close(self) -> None:
        if not self.closed and self.n != self.last_n:
            self._write()
        self.closed = True

    def _write(self, now: float | None = None) -> None:
        from tqdm import tqdm

        now = time.monotonic() if now is None else now
        elapsed = now - self.started
        done = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        parts = [f"{self.desc}: {done}" + (f" ({100 * self.n / self.total:.0f}%)" if self.total else "")]
        rate = (self.n - self.initial) / elapsed if elapsed > 0 and self.n > self.initial else None
        if rate:
            parts.append(f"{rate:.3g} {self.unit}/s")
        parts.append(f"elapsed {tqdm.format_interval(elapsed)}")
        if rate and self.total and self.n < self.total:
            parts.append(f"ETA {tqdm.format_interval((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(", ".join(f"{k}={v}" for k, v in self.postfix.items()))
        print(" | ".join(parts), file=self.stream, flush=True)
        self.last_time, self.last_n = now, self.n
