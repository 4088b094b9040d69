"""Process metrics in the mini tables: a sound-Pass@1 and a lucky-share section below the Pass@1 rows,
seed means as elsewhere; Pass@1 rows and tables without process rows unchanged."""

from __future__ import annotations

import csv
import math

import pandas as pd

from clipo.cli import main as clipo_main
from clipo.data.registry import benchmarks
from clipo.runs import RunSpec
from clipo.scores import LUCKY_SHARE, PASS_AT_1, SOUND_PASS_AT_1, write_scores

BENCH = benchmarks("mini")
RUNS = [("base", "none", None), ("grpo", "none", None), ("grpo", "infonce", 0.05)]


def _rows(run: RunSpec, metric: str, values: dict[str, float]) -> list[dict]:
    return [{"source": "mini", "track": "mini", "model": run.model, "method": run.method, "clipo": run.clipo,
             "tau": run.tau, "group_size": run.group_size, "seed": run.seed, "benchmark": b, "score": v,
             "n_problems": 100, "n_samples": 3 if b == "Test-T1" else 1, "metric": metric}
            for b, v in values.items()]


def _lucky(method: str, seed: int) -> float:
    """Lucky share of a run: base 30, GRPO 20 + seed, CLIPO 10 + seed."""
    return {"base": 30.0, "none": 20.0 + seed, "infonce": 10.0 + seed}[method]


def write_run_set(root, with_process: bool = True) -> None:
    for method, variant, tau in RUNS:
        for seed in ((0,) if method == "base" else (0, 1, 2)):
            run = RunSpec("mini", "mini-base", method, variant, tau, 8, seed, "mini")
            pass1 = {b: 40.0 + seed for b in BENCH}
            rows = _rows(run, PASS_AT_1, pass1)
            if with_process:
                lucky = _lucky(method if method == "base" else variant, seed)
                sound = {b: v * (1 - lucky / 100) for b, v in pass1.items()}
                shares = {b: lucky for b in BENCH}
                if method == "grpo" and variant == "none" and seed == 2:
                    shares["MC"] = math.nan  # no correct MC answer: the share is undefined
                rows += _rows(run, SOUND_PASS_AT_1, sound) + _rows(run, LUCKY_SHARE, shares)
            frame = pd.DataFrame(rows)
            if not with_process:
                frame = frame.drop(columns="metric")
            write_scores(frame, root / "eval" / run.run_id / "scores.csv")


def _table(out, tid="table1") -> list[list[str]]:
    return list(csv.reader((out / f"{tid}.csv").open(encoding="utf-8")))


def test_mini_table1_has_sound_and_lucky_sections_with_seed_means(tmp_path):
    write_run_set(tmp_path / "mini")
    assert clipo_main(["tables", "--source", str(tmp_path / "mini"), "--out", str(tmp_path / "t")]) == 0
    rows = _table(tmp_path / "t")
    header = rows[0]
    col = {name: header.index(name) for name in ("Test", "Test-T1", "MC", "Avg.", "Test sd")}
    labels = [r[0] for r in rows[1:]]
    assert labels == ["Base Model", "GRPO", "GRPO+CLIPO", "Δ",
                      "Sound Pass@1 (% of all answers)", "Base Model", "GRPO", "GRPO+CLIPO", "Δ",
                      "Lucky share of correct answers (%)", "Base Model", "GRPO", "GRPO+CLIPO", "Δ"]
    by = {(section, r[0]): r for section, r in zip([0] * 4 + [1] * 5 + [2] * 5, rows[1:])}
    # Pass@1 rows as before: the mean of 40, 41, 42 over the seeds
    assert by[(0, "GRPO")][col["Test"]] == "41.00" and by[(0, "Δ")][col["Test"]] == "0.00"
    # lucky share: GRPO seeds 20, 21, 22 → 21; CLIPO 10, 11, 12 → 11; Δ = -10; the base model 30
    assert by[(2, "Base Model")][col["Test-T1"]] == "30.00"
    assert by[(2, "GRPO")][col["Test"]] == "21.00" and by[(2, "GRPO+CLIPO")][col["Test"]] == "11.00"
    assert by[(2, "Δ")][col["Test"]] == "-10.00"
    assert by[(2, "GRPO")][col["Test sd"]] == "1.00"  # the spread over seeds, as for Pass@1
    # MC of GRPO: seed 2 has no correct answer, so the mean is over seeds 0 and 1 (20, 21) ...
    assert by[(2, "GRPO")][col["MC"]] == "20.50"
    # ... and Avg. is the mean of the benchmark means (Test-T1 is in no average): 11 - (4 · 21 + 20.5) / 5
    assert by[(2, "Δ")][col["Avg."]] == "-9.90"
    # sound Pass@1 of GRPO seed s: (40 + s) · (1 - (20 + s)/100), averaged over the seeds
    expected = sum((40 + s) * (1 - (20 + s) / 100) for s in range(3)) / 3
    assert by[(1, "GRPO")][col["Test"]] == f"{expected:.2f}"
    md = (tmp_path / "t" / "table1.md").read_text(encoding="utf-8")
    assert "| *Lucky share of correct answers (%)* |" in md and "lucky share = % of the correct answers" in md
    # best/second-best marks rank Pass@1 only: no process cell is bold
    lucky_part = md.split("*Lucky share of correct answers (%)*")[1].split("Note:")[0]
    assert "**" not in lucky_part and "<u>" not in lucky_part


def test_pass_at_1_rows_are_unchanged_by_process_rows(tmp_path):
    write_run_set(tmp_path / "with")
    write_run_set(tmp_path / "without", with_process=False)
    for name in ("with", "without"):
        assert clipo_main(["tables", "--source", str(tmp_path / name), "--out", str(tmp_path / f"t-{name}")]) == 0
    with_rows, without_rows = _table(tmp_path / "t-with"), _table(tmp_path / "t-without")
    assert with_rows[:len(without_rows)] == without_rows
    assert len(with_rows) == len(without_rows) + 10
    assert "Sound Pass@1" not in (tmp_path / "t-without" / "table1.md").read_text(encoding="utf-8")
