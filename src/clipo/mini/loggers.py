"""Where the mini trainer reports each step besides ``metrics.jsonl``: ``--logger console,tensorboard``.

The names follow verl's ``trainer.logger`` list. ``console`` is the progress display (a bar on a terminal,
plain lines in a log file, clipo.progress); ``tensorboard`` writes event files to ``<run>/tensorboard/``
(``tensorboard --logdir results/mini/runs``). ``metrics.jsonl`` is always written: the figures and
checkpoints read it, the loggers only show it.
"""

from __future__ import annotations

from pathlib import Path

from clipo.errors import ConfigError

LOGGERS = ("console", "tensorboard")
DEFAULT_LOGGERS = ("console",)
TENSORBOARD_DIR = "tensorboard"


def parse_loggers(text: str | None) -> tuple[str, ...]:
    """``"console,tensorboard"`` → ("console", "tensorboard"); None → the default; unknown names refused."""
    if text is None:
        return DEFAULT_LOGGERS
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if unknown := [n for n in names if n not in LOGGERS]:
        raise ConfigError(f"--logger {text!r}: unknown logger {unknown[0]!r}; valid: {', '.join(LOGGERS)}")
    return names


class MetricLoggers:
    """The chosen loggers that take metric rows (``console`` shows the progress bar instead)."""

    def __init__(self, names: tuple[str, ...], run_folder: str | Path, first_step: int):
        self.writer = None
        if "tensorboard" in names:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # torch's writer needs the tensorboard package (a verl dependency)
                raise ConfigError(f"--logger tensorboard needs the tensorboard package ({e}): "
                                  "pip install tensorboard, or leave tensorboard out of --logger") from None
            # purge_step: a resumed run drops the events a crash left after its last checkpoint
            self.writer = SummaryWriter(str(Path(run_folder) / TENSORBOARD_DIR),
                                        purge_step=first_step if first_step > 1 else None)

    def log(self, row: dict) -> None:
        """One metrics.jsonl row: every number (booleans as 0/1) as a scalar at the row's step."""
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, float(value), row["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
