"""Loading tidy scores: the paper's transcription or every ``scores.csv`` of a run set, validated.

Validation goes beyond the column check of ``clipo.scores``: every value must name a known
track, method, CLIPO variant and benchmark of its track, τ must be given exactly when CLIPO is on,
scores must be percentages, and no (source, run, benchmark) may appear twice — a table must never
silently pick one of two conflicting numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from clipo.data.registry import benchmarks
from clipo.errors import SchemaError
from clipo.methods import CLIPO_VARIANTS, METHODS, TRACKS
from clipo.scores import PASS_AT_1, read_scores

PAPER = "paper"
PAPER_SCORES = Path("results") / "paper" / "scores.csv"
"""The transcription of the paper's numbers, relative to the repository root."""

RUN_KEY = ("track", "model", "method", "clipo", "tau", "group_size", "seed")
SCORE_KEY = ("source", *RUN_KEY, "benchmark")


def paper_scores_path() -> Path:
    """``results/paper/scores.csv`` of the working directory, else of the checkout this package runs from."""
    candidates = [Path.cwd() / PAPER_SCORES] + [p / PAPER_SCORES for p in Path(__file__).resolve().parents]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{PAPER_SCORES} not found in the working directory or above the installed "
                            "package; run from the repository root or pass the folder as --source")


def score_files(source: str | os.PathLike, runs: list[str] | None = None) -> list[Path]:
    """The scores files a source names: 'paper', one CSV file, or every scores.csv under a folder.

    With ``runs`` (run ids, as the workflow passes its grid), exactly ``eval/<run_id>/scores.csv`` of
    those runs: a run removed from the config must not linger in its analysis because its files do.
    """
    if str(source) == PAPER:
        return [paper_scores_path()]
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"results source {str(path)!r}: no such file or folder (or use 'paper')")
    if runs is not None:
        files = [path / "eval" / run / "scores.csv" for run in runs]
        absent = [str(f) for f in files if not f.is_file()]
        if absent:
            raise FileNotFoundError(f"no scores for run(s) given with --runs: {', '.join(absent)} "
                                    "(run `clipo evaluate` for them, or leave them out of --runs)")
        return files
    files = sorted(path.rglob("scores.csv"))
    if not files:
        raise FileNotFoundError(f"{path}: no scores.csv under this folder")
    return files


def parse_runs(text: str | None) -> list[str] | None:
    """``--runs`` of the analysis commands: comma-separated run ids (None: every run in the folder)."""
    if text is None:
        return None
    from clipo.runs import RunSpec

    runs = [t.strip() for t in text.split(",") if t.strip()]
    if not runs:
        raise SchemaError("--runs: empty list of run ids")
    for run in runs:
        RunSpec.parse(run)  # ConfigError naming the id
    return runs


def _check_values(df: pd.DataFrame, where: str) -> None:
    def fail(mask: pd.Series, what: str) -> None:
        if mask.any():
            i = int(mask.to_numpy().nonzero()[0][0])
            found = df.iloc[i][[*RUN_KEY, "benchmark"]].to_dict()
            raise SchemaError(f"{where}: row {i + 2}: {what} (found {found})")

    fail(~df["track"].astype(str).isin(list(TRACKS)), f"track must be one of {', '.join(TRACKS)}")
    fail(~df["method"].isin(["base", *METHODS]), f"method must be base or one of {', '.join(METHODS)}")
    fail(~df["clipo"].isin(CLIPO_VARIANTS), f"clipo must be one of {', '.join(CLIPO_VARIANTS)}")
    fail((df["clipo"] == "none") != df["tau"].isna(), "tau must be given exactly when clipo is not 'none'")
    fail(~df["score"].between(0, 100), "score must be a Pass@1 percentage in [0, 100]")
    fail((df["n_problems"] < 1) | (df["n_samples"] < 1), "n_problems and n_samples must be >= 1")
    for track in df["track"].unique():
        valid = benchmarks(str(track))
        fail((df["track"] == track) & ~df["benchmark"].isin(valid),
             f"benchmark is not one of track {track}'s: {', '.join(valid)}")


def load_scores(source: str | os.PathLike, runs: list[str] | None = None, metric: str = PASS_AT_1) -> pd.DataFrame:
    """All scores of a source ('paper', a scores file, or a run-set folder; ``runs``: only those run ids'
    scores, see ``score_files``) as one validated table.

    Extra columns of the files (the transcription's ``tables``) are dropped; ``tau`` is NaN when
    CLIPO is off. Raises SchemaError naming the file and row at fault, FileNotFoundError when empty.
    ``metric``: another metric's rows (clipo.scores.METRICS; none where the files predate it); an
    undefined value (the lucky share of a benchmark without a correct answer) is left out.
    """
    frames = []
    for path in score_files(source, runs):
        df = read_scores(path, metric)
        if metric != PASS_AT_1:
            df = df.dropna(subset=["score"]).reset_index(drop=True)
        df["track"] = df["track"].astype(str)
        _check_values(df, str(path))
        df["file"] = str(path)
        frames.append(df)
    scores = pd.concat(frames, ignore_index=True)
    dup = scores.duplicated(list(SCORE_KEY), keep=False)
    if dup.any():
        first = scores[dup].iloc[0]
        files = sorted(scores[dup]["file"].unique())
        raise SchemaError(f"score of {first[list(SCORE_KEY)].to_dict()} appears more than once "
                          f"(in {', '.join(files)})")
    return scores.drop(columns="file")
