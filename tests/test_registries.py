"""Names kept in two places agree: the config schema's enums are the Python registries' names; the
method and CLIPO names are left to the registries (tests/test_registry_extension.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from clipo.analysis.paper_tables import PAPER_TABLES
from clipo.analysis.registry import FIGURES, TABLE_TOPICS, TABLES, table_label
from clipo.methods import CLIPO_VARIANTS, METHODS, TRACKS
from clipo.runs import BACKENDS

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
AXES = SCHEMA["properties"]["grid"]["items"]["properties"]


def test_grid_enums_are_the_registries():
    assert set(AXES["track"]["items"]["enum"]) == set(TRACKS)
    assert AXES["backend"]["items"]["enum"] == list(BACKENDS)
    for axis in ("method", "clipo"):  # no second list to keep in step: the grid expansion checks them
        assert "enum" not in AXES[axis]["items"]
    assert list(CLIPO_VARIANTS) == ["none", "infonce", "supcon", "softnn", "infonce-fixed"]
    assert list(METHODS) == ["grpo", "gspo", "dapo", "gmpo"]


def test_table_and_figure_enums_are_the_registries():
    assert SCHEMA["properties"]["tables"]["items"]["enum"] == list(TABLES) == list(PAPER_TABLES)
    assert SCHEMA["properties"]["figures"]["items"]["enum"] == list(FIGURES)


def test_every_table_has_a_report_label():
    assert list(TABLE_TOPICS) == list(TABLES)
    assert table_label("table1") == "Table 1 — main results"
