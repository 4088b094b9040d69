"""The tidy results format every evaluator writes and every table and figure reads.

``scores.csv``: one row per (run, benchmark) score. ``samples.parquet``: one row per generated sample,
so statistics (bootstrap CIs of Δ) can be computed. Scores are Pass@1 in percent.

Where answers can be step-checked (the mini track, clipo.data.stepcheck), ``scores.csv`` also holds
the process metrics of each benchmark as rows of their own, told apart by an optional trailing
``metric`` column (``METRICS``); a file without it holds Pass@1 only, as every file did before.
``read_scores`` returns the Pass@1 rows unless asked for another metric, so a reader of Pass@1 sees
the same table either way. ``samples.parquet`` has the label of each sample in ``process``
(sound / lucky / wrong, null where not checkable).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from clipo.errors import SchemaError
from clipo.records import atomic_write

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

METRIC = "metric"
PASS_AT_1 = "pass@1"
SOUND_PASS_AT_1 = "sound_pass@1"
"""% of all samples that are correct and soundly worked."""
LUCKY_SHARE = "lucky_share"
"""% of the correct samples that are not soundly worked (NaN when none is correct)."""
METRICS: tuple[str, ...] = (PASS_AT_1, SOUND_PASS_AT_1, LUCKY_SHARE)
PROCESS_METRICS: tuple[str, ...] = (SOUND_PASS_AT_1, LUCKY_SHARE)
METRIC_LABELS: dict[str, str] = {PASS_AT_1: "Pass@1", SOUND_PASS_AT_1: "Sound Pass@1",
                                 LUCKY_SHARE: "Lucky share of correct answers"}
"""How tables, figures and the report name each metric."""

SAMPLE_COLUMNS: tuple[str, ...] = (
    "run_id", "benchmark", "problem_id", "sample_id", "response", "extracted_answer", "correct",
    "process",  # sound / lucky / wrong (clipo.data.stepcheck), null where the problem has no chain
)


def metric_rows(df: pd.DataFrame, metric: str, where: str = "scores") -> pd.DataFrame:
    """The rows of one metric; a table without a ``metric`` column holds Pass@1 only."""
    if metric not in METRICS:
        raise SchemaError(f"{where}: unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if METRIC not in df.columns:
        return df if metric == PASS_AT_1 else df.iloc[0:0]
    unknown = sorted(set(df[METRIC].astype(str)) - set(METRICS))
    if unknown:
        raise SchemaError(f"{where}: column {METRIC}: unknown value(s) {', '.join(unknown)}; "
                          f"expected {', '.join(METRICS)}")
    return df[df[METRIC] == metric]


def validate_scores(df: pd.DataFrame, where: str = "scores", metric: str = PASS_AT_1) -> pd.DataFrame:
    """The rows of ``metric`` (default Pass@1) with exactly SCORE_COLUMNS, typed."""
    df = metric_rows(df, metric, where)
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
    """Write a scores table; with a ``metric`` column every metric's rows are validated and kept."""
    if METRIC in df.columns:
        df = pd.concat([validate_scores(df, str(path), m).assign(**{METRIC: m}) for m in METRICS],
                       ignore_index=True)
    else:
        df = validate_scores(df, str(path))
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def read_scores(path: str | os.PathLike, metric: str = PASS_AT_1) -> pd.DataFrame:
    """The rows of ``metric`` in a scores file (Pass@1 by default; no rows when the file lacks the metric)."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such results file")
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SchemaError(f"{path}: not a readable scores CSV ({e}); run `clipo evaluate` again") from None
    if df.empty:
        raise SchemaError(f"{path}: header but no rows; run `clipo evaluate` again")
    df = validate_scores(df, str(path), metric)
    check_run_folder(df, path)
    return df


def check_run_folder(df: pd.DataFrame, path: Path) -> None:
    """Rows of ``eval/<run_id>/scores.csv`` must describe that run: a table takes the method and τ from the
    rows, so a copied or mislabelled file would otherwise make up a run. Other folders are not checked."""
    from clipo.errors import ConfigError
    from clipo.runs import RunSpec, format_tau

    try:
        spec = RunSpec.parse(path.parent.name)
    except ConfigError:
        return
    expected = {"track": spec.track, "model": spec.model, "method": spec.method, "clipo": spec.clipo,
                "tau": format_tau(spec.tau), "group_size": spec.group_size, "seed": spec.seed}
    for i, row in zip(df.index, df.to_dict("records")):  # the index is the file's row
        tau = row["tau"]
        found = dict(row, track=str(row["track"]), tau=format_tau(None if pd.isna(tau) else tau))
        wrong = [f"{k}={found[k]!r}" for k, v in expected.items() if found[k] != v]
        if wrong:
            raise SchemaError(f"{path}: row {i + 2} has {', '.join(wrong)}, but its folder is run "
                              f"{spec.run_id}; the file belongs to another run (run `clipo evaluate` for this one again)")


def write_samples(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    missing = [c for c in SAMPLE_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: missing sample column(s) {', '.join(missing)}")
    return atomic_write(path, lambda tmp: df[list(SAMPLE_COLUMNS)].to_parquet(tmp, index=False))
