import pandas as pd
import pytest

from clipo.data.schema import load_dataset, validate_dataset
from clipo.errors import SchemaError


def verl_frame(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "data_source": ["openai/gsm8k"] * n,
        "prompt": [[{"role": "user", "content": f"What is {i} + 1?"}] for i in range(n)],
        "ability": ["math"] * n,
        "reward_model": [{"ground_truth": str(i + 1), "style": "rule"} for i in range(n)],
        "extra_info": [{"index": i, "split": "test"} for i in range(n)],
    })


def test_valid_file_round_trips_through_parquet(tmp_path):
    path = tmp_path / "ok.parquet"
    verl_frame().to_parquet(path, index=False)
    df = load_dataset(path)
    assert len(df) == 3
    assert df["prompt"][1][0]["content"] == "What is 1 + 1?"
    assert df["reward_model"][2]["ground_truth"] == "3"
    assert len(validate_dataset(path)) == 3


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "bad.parquet"
    verl_frame().drop(columns=["ability"]).to_parquet(path, index=False)
    with pytest.raises(SchemaError, match=r"bad\.parquet: missing column\(s\) ability"):
        load_dataset(path)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("prompt", "What is 1 + 1?", r"row 1, column 'prompt': expected a non-empty list"),
    ("prompt", [], r"row 1, column 'prompt': expected a non-empty list"),
    ("prompt", [{"role": "robot", "content": "hi"}], r"row 1, column 'prompt': message 0: role must be"),
    ("prompt", [{"role": "user", "content": 3}], r"row 1, column 'prompt': message 0: content must be"),
    ("reward_model", {"style": "rule"}, r"row 1, column 'reward_model': reward_model.ground_truth is missing"),
    ("reward_model", {"ground_truth": "2", "style": None}, r"row 1, column 'reward_model': reward_model.style"),
    ("reward_model", "2", r"row 1, column 'reward_model': expected a \{ground_truth, style\} dict"),
    ("extra_info", None, r"row 1, column 'extra_info': expected a dict"),
    ("data_source", "", r"row 1, column 'data_source': expected a non-empty string"),
    ("ability", 7, r"row 1, column 'ability': expected a non-empty string"),
])
def test_bad_cell_names_where_row_and_column(column, value, message):
    df = verl_frame()
    df[column] = df[column].astype(object)
    df.at[1, column] = value
    with pytest.raises(SchemaError, match=r"^fixture\.parquet: " + message):
        validate_dataset(df, "fixture.parquet")


def test_empty_dataset_is_rejected():
    with pytest.raises(SchemaError, match="no rows"):
        validate_dataset(verl_frame().iloc[:0], "empty")


def test_unreadable_and_missing_files_name_the_file(tmp_path):
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(SchemaError, match=r"junk\.parquet: not a readable parquet file"):
        load_dataset(junk)
    with pytest.raises(FileNotFoundError, match=r"nothing\.parquet"):
        load_dataset(tmp_path / "nothing.parquet")
