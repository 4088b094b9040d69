"""scores.csv rows must describe the run their folder names (issue 22, #14)."""

from __future__ import annotations

import pandas as pd
import pytest

from clipo.errors import SchemaError
from clipo.scores import SCORE_COLUMNS, read_scores, write_scores

GRPO = "mini_mini-base_grpo_none_tau-_g8_s0_mini"
INFONCE = "mini_mini-base_grpo_infonce_tau0.05_g8_s1_mini"


def _row(**changes) -> dict:
    row = {"source": "mini", "track": "mini", "model": "mini-base", "method": "grpo", "clipo": "none",
           "tau": None, "group_size": 8, "seed": 0, "benchmark": "Test", "score": 50.0, "n_problems": 10,
           "n_samples": 1}
    return {**row, **changes}


def _write(tmp_path, run_id, rows):
    path = tmp_path / "eval" / run_id / "scores.csv"
    path.parent.mkdir(parents=True)
    write_scores(pd.DataFrame(rows, columns=list(SCORE_COLUMNS)), path)
    return path


def test_rows_of_another_method_in_a_run_folder_are_refused(tmp_path):
    path = _write(tmp_path, GRPO, [_row(), _row(benchmark="SYM", method="dapo")])
    with pytest.raises(SchemaError, match=rf"{path}: row 3 has method='dapo', but its folder is run {GRPO}"):
        read_scores(path)


@pytest.mark.parametrize("changes, field", [({"tau": 0.2}, "tau"), ({"seed": 0}, "seed"),
                                            ({"clipo": "supcon"}, "clipo"), ({"group_size": 16}, "group_size")])
def test_any_run_field_that_disagrees_with_the_folder_is_named(tmp_path, changes, field):
    ok = _row(clipo="infonce", tau=0.05, seed=1)
    path = _write(tmp_path, INFONCE, [_row(**{**ok, **changes})])
    with pytest.raises(SchemaError, match=rf"row 2 has {field}="):
        read_scores(path)


def test_matching_rows_and_folders_that_are_not_run_ids_are_read(tmp_path):
    assert len(read_scores(_write(tmp_path, INFONCE, [_row(clipo="infonce", tau=0.05, seed=1)]))) == 1
    assert len(read_scores(_write(tmp_path, "anything", [_row(method="dapo")]))) == 1


def test_table_one_does_not_get_a_row_from_a_mislabelled_file(tmp_path):
    from clipo.analysis.results import load_scores

    _write(tmp_path, GRPO, [_row(method="dapo")])
    with pytest.raises(SchemaError, match="belongs to another run"):
        load_scores(tmp_path)
