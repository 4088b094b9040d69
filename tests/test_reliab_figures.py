"""`clipo figures` and `clipo doctor --configfile`: corrupt inputs give one line naming the file (issue 22, #10)."""

from __future__ import annotations

import numpy as np
import pytest

from clipo import records
from clipo.cli import main as clipo_main

RUN = "mini_mini-base_grpo_infonce_tau0.05_g8_s0_mini"


def _run_folder(results, rows=None, embedding=None):
    folder = results / "runs" / RUN
    folder.mkdir(parents=True)
    rows = rows or [{"step": s, "reward/outcome": 0.1 * s, "clipo/cos_pos": 0.5, "clipo/cos_neg": 0.1,
                     "clipo/cos_cross": 0.0} for s in range(1, 4)]
    records.write_metrics(folder / records.METRICS_FILE, rows)
    rng = np.random.default_rng(0)
    dump = []
    for step, phase in ((1, "start"), (3, "end")):
        emb = rng.normal(size=(16, 4)) if embedding is None else np.full((16, 4), embedding)
        dump += records.embedding_rows(step, phase, "head", emb, [i // 4 for i in range(16)], [i % 2 == 0 for i in range(16)])
    records.write_embeddings(folder / records.EMBEDDINGS_FILE, dump)
    return folder


def _figure_error(results, tmp_path, capsys, only) -> str:
    assert clipo_main(["figures", "--results", str(results), "--out", str(tmp_path / "figs"), "--only", only]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_a_truncated_embeddings_file(tmp_path, capsys):
    folder = _run_folder(tmp_path / "r")
    path = folder / records.EMBEDDINGS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert f"{path}: not a readable parquet file" in _figure_error(tmp_path / "r", tmp_path, capsys, "fig4")


def test_nan_embeddings(tmp_path, capsys):
    folder = _run_folder(tmp_path / "r", embedding=np.nan)
    err = _figure_error(tmp_path / "r", tmp_path, capsys, "fig4")
    assert f"{folder / records.EMBEDDINGS_FILE}: 32 of 32 embeddings hold NaN" in err


@pytest.mark.parametrize("only", ["fig5", "reward"])
@pytest.mark.parametrize("line, needle", [("[1,2,3]", ":1: not a JSON object (found a list"),
                                          ('{"step": "two", "reward/outcome": 0.5}', ":1: step must be an integer")])
def test_a_metrics_line_that_is_not_a_step_row(tmp_path, capsys, only, line, needle):
    folder = _run_folder(tmp_path / "r")
    path = folder / records.METRICS_FILE
    path.write_text(line + "\n" + path.read_text())
    assert f"{path}{needle}" in _figure_error(tmp_path / "r", tmp_path, capsys, only)


@pytest.mark.parametrize("content, needle", [
    (b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "not a text file"),
    (b"\x00\x01\x02 binary but UTF-8", "not valid YAML"),
    (b"grid: [{track: [I]\nmodels: {", "not valid YAML at line 2"),
])
def test_doctor_configfile_that_is_binary_or_malformed(tmp_path, capsys, monkeypatch, content, needle):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "paper.yaml"
    path.write_bytes(content)
    assert clipo_main(["doctor", "--configfile", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {needle}" in err and "Traceback" not in err, err
