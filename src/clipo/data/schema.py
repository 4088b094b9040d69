"""The verl dataset schema every training and evaluation file must follow.

verl's ``RLHFDataset`` and our mini trainer and evaluator read the same parquet columns:
``data_source`` (str, selects the reward function), ``prompt`` (chat messages ``[{role, content}]``),
``ability`` (str), ``reward_model`` (``{ground_truth, style}``) and ``extra_info`` (dict, e.g. ``index``).
A file that breaks it fails here, with file, row and column named, rather than deep inside training.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from clipo.errors import SchemaError

VERL_COLUMNS: tuple[str, ...] = ("data_source", "prompt", "ability", "reward_model", "extra_info")
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _ground_truth_problem(truth) -> str | None:
    """NaN (or its text, "nan") is a missing answer, not one: it would reward \\boxed{nan}."""
    items = list(truth) if isinstance(truth, (list, tuple, np.ndarray)) else [truth]
    if not items:
        return "reward_model.ground_truth is an empty list"
    for item in items:
        if isinstance(item, numbers.Real) and not math.isfinite(item):
            return f"reward_model.ground_truth holds {item!r}, not an answer"
        if isinstance(item, str) and item.strip().lower() == "nan":
            return f"reward_model.ground_truth holds {item!r} (a missing value written as text), not an answer"
    return None


def _row_problem(column: str, value) -> str | None:
    """What is wrong with one cell, or None when it is valid."""
    if column in ("data_source", "ability"):
        if not isinstance(value, str) or not value:
            return f"expected a non-empty string, got {_describe(value)}"
    elif column == "prompt":
        if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
            return f"expected a non-empty list of {{role, content}} messages, got {_describe(value)}"
        for j, message in enumerate(value):
            if not isinstance(message, Mapping):
                return f"message {j}: expected a {{role, content}} dict, got {_describe(message)}"
            if message.get("role") not in ROLES:
                roles = ", ".join(sorted(ROLES))
                return f"message {j}: role must be one of {roles}, got {message.get('role')!r}"
            if not isinstance(message.get("content"), str):
                return f"message {j}: content must be a string, got {_describe(message.get('content'))}"
    elif column == "reward_model":
        if not isinstance(value, Mapping):
            return f"expected a {{ground_truth, style}} dict, got {_describe(value)}"
        if value.get("ground_truth") is None:
            return "reward_model.ground_truth is missing"
        if problem := _ground_truth_problem(value["ground_truth"]):
            return problem
        if not isinstance(value.get("style"), str):
            return f"reward_model.style must be a string, got {_describe(value.get('style'))}"
    elif column == "extra_info":
        if not isinstance(value, Mapping):
            return f"expected a dict, got {_describe(value)}"
    return None


def validate_dataset(data: pd.DataFrame | str | os.PathLike, where: str | None = None) -> pd.DataFrame:
    """Check a verl dataset (a DataFrame or a parquet path); returns the DataFrame or raises SchemaError."""
    if not isinstance(data, pd.DataFrame):
        return load_dataset(data)
    df, where = data, where or "dataset"
    missing = [c for c in VERL_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(f"{where}: missing column(s) {', '.join(missing)}; "
                          f"expected {', '.join(VERL_COLUMNS)}")
    if len(df) == 0:
        raise SchemaError(f"{where}: no rows")
    for column in VERL_COLUMNS:
        for row, value in enumerate(df[column].tolist()):
            problem = _row_problem(column, value)
            if problem:
                raise SchemaError(f"{where}: row {row}, column {column!r}: {problem}")
    return df


def load_dataset(path: str | os.PathLike) -> pd.DataFrame:
    """Read a verl parquet file and validate it; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset file")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a corrupt or non-parquet file
        raise SchemaError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from e
    return validate_dataset(df, str(path))
