"""The run-folder files: one writer and one reader each (clipo.records)."""

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from clipo import records
from clipo.errors import SchemaError


def test_metrics_round_trip_with_non_finite_values_as_null(tmp_path):
    path = tmp_path / records.METRICS_FILE
    records.write_metrics(path, [{"step": 1, "loss": math.nan, "x": np.float32(0.5)}, {"step": 2, "loss": -math.inf}])
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert records.read_metrics(path) == [{"step": 1, "loss": None, "x": 0.5}, {"step": 2, "loss": None}]


def test_read_metrics_skips_a_torn_last_line_only(tmp_path):
    path = tmp_path / records.METRICS_FILE
    path.write_text('{"step": 1}\n{"step": 2')
    assert records.read_metrics(path) == [{"step": 1}]
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(SchemaError, match=r"metrics.jsonl:2"):
        records.read_metrics(path)


def test_embeddings_have_one_schema_whatever_the_input(tmp_path):
    import torch

    path = tmp_path / records.EMBEDDINGS_FILE
    rows = records.embedding_rows(1, "start", "head", torch.ones(2, 3, dtype=torch.float64), [0, 0],
                                  torch.tensor([True, False]))
    rows += records.embedding_rows(5, "end", "hidden", np.zeros((1, 3)), [1], [1.0])
    records.write_embeddings(path, rows)
    schema = pq.read_schema(path)
    assert [f.name for f in schema] == list(records.EMBEDDING_COLUMNS)
    assert schema.field("embedding").type.value_type == "float"
    df = records.read_embeddings(path)
    assert list(df["correct"]) == [True, False, True] and list(df["group_id"]) == [0, 0, 1]
    records.write_embeddings(path, df.to_dict("records"))  # what a resumed verl run does
    assert pq.read_schema(path).equals(schema)


def test_read_embeddings_names_missing_columns(tmp_path):
    import pandas as pd

    path = tmp_path / records.EMBEDDINGS_FILE
    pd.DataFrame({"step": [1]}).to_parquet(path)
    with pytest.raises(SchemaError, match="missing column.*phase"):
        records.read_embeddings(path)


def test_json_records_round_trip_and_bad_files_name_the_file(tmp_path):
    path = records.write_json(tmp_path / records.SUMMARY_FILE, {"steps": 2, "path": tmp_path})
    assert records.read_json(path) == {"steps": 2, "path": str(tmp_path)}
    assert path.read_text() == json.dumps({"steps": 2, "path": str(tmp_path)}, indent=2)
    path.write_text("[1, 2]")
    with pytest.raises(SchemaError, match="summary.json: expected a JSON object"):
        records.read_json(path)
    path.write_text("{")
    with pytest.raises(SchemaError, match="summary.json: not valid JSON"):
        records.read_json(path)


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        records.atomic_write(tmp_path / "x.txt", fail)
    assert list(tmp_path.iterdir()) == []
