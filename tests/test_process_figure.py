"""The lucky figure: lucky share of correct answers per training step from metrics.jsonl, seeds as bands,
the validation prompts in a panel of their own, and a clear word where runs do not log it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clipo.analysis import curves, lucky
from clipo.analysis.coverage import check_grid
from clipo.analysis.registry import FIGURES
from clipo.cli import main as clipo_main
from clipo.errors import ConfigError, MissingInput
from clipo.runs import RunSpec
from test_figures import assert_images, drawn, texts  # noqa: F401  (drawn is a fixture)

SEEDS = (0, 1, 2)


def spec(clipo="none", tau=None, seed=0):
    return RunSpec("mini", "mini-base", "grpo", clipo, tau, 8, seed, "mini")


def write_metrics(root, run: RunSpec, lines: list[dict]) -> None:
    d = root / "runs" / run.run_id
    d.mkdir(parents=True)
    (d / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))


def process_lines(rng, steps: int = 8, lucky_level: float = 0.4) -> list[dict]:
    """Validation at steps 0, 2, 4, ...; step 3 had no correct rollout (a null lucky share)."""
    lines = [{"step": 0, "val/reward": 0.3, "val/lucky_share": lucky_level}]
    for s in range(1, steps + 1):
        m = {"step": s, "reward/outcome": 0.3, "process/sound_share": 0.2,
             "process/lucky_share": None if s == 3 else float(rng.uniform(lucky_level - 0.1, lucky_level + 0.1))}
        if s % 2 == 0:
            m |= {"val/reward": 0.3, "val/lucky_share": float(rng.uniform(lucky_level - 0.1, lucky_level + 0.1))}
        lines.append(m)
    return lines


def write_run_set(root, old_run: bool = True) -> dict[RunSpec, list[dict]]:
    rng = np.random.default_rng(0)
    written = {}
    for s in SEEDS:
        written[spec(seed=s)] = process_lines(rng, lucky_level=0.4)
        written[spec("infonce", 0.05, s)] = process_lines(rng, lucky_level=0.2)
    if old_run:  # trained before the step checker: no process keys
        written[spec("supcon", 0.05)] = [{"step": s, "reward/outcome": 0.3} for s in range(1, 9)]
    for run, lines in written.items():
        write_metrics(root, run, lines)
    return written


def test_lucky_share_per_setting_with_seed_bands_and_a_validation_panel(tmp_path, drawn):
    written = write_run_set(tmp_path)
    data = lucky.draw(tmp_path, tmp_path / "figs")
    assert_images(tmp_path / "figs" / FIGURES["lucky"].stem)
    fig = drawn[FIGURES["lucky"].stem]
    train_ax, val_ax = (ax for ax in fig.axes if ax.get_visible())
    assert train_ax.get_title() == "Training: lucky share, mini track"
    assert val_ax.get_title() == "Validation: lucky share, mini track"
    grpo = "GRPO, 3 seeds (0, 1, 2)"
    training = data[(data["metric"] == lucky.KEY) & (data["setting"] == grpo)].set_index("step")
    # raw = seed mean in %; step 3 is null in every seed, so it is skipped, not read as 0
    per_seed = pd.DataFrame({s: {m["step"]: m["process/lucky_share"] for m in written[spec(seed=s)]
                                 if m["step"] > 0 and m["process/lucky_share"] is not None} for s in SEEDS})
    np.testing.assert_allclose(training["raw"], 100 * per_seed.mean(axis=1))
    assert 3 not in training.index
    # the band: min-max of the seeds' smoothed curves
    smoothed = pd.DataFrame({s: curves.smooth(per_seed[s]) for s in SEEDS})
    np.testing.assert_allclose(training["low"], 100 * smoothed.min(axis=1))
    np.testing.assert_allclose(training["high"], 100 * smoothed.max(axis=1))
    assert len(train_ax.collections) == 2 and len(val_ax.collections) == 2  # both settings have seed bands
    val = data[(data["metric"] == lucky.VAL_KEY) & (data["setting"] == grpo)]
    assert list(val["step"]) == [0, 2, 4, 6, 8]
    np.testing.assert_allclose(val["smooth"], val["raw"])  # validation is not smoothed
    # CLIPO runs were built with fewer lucky answers: the figure shows it
    infonce = "GRPO + CLIPO InfoNCE (τ = 0.05), 3 seeds (0, 1, 2)"
    clipo = data[(data["metric"] == lucky.KEY) & (data["setting"] == infonce)]
    assert clipo["raw"].mean() < training["raw"].mean()
    # the run trained before the step checker is named on the figure, not drawn
    note = " ".join(fig.get_suptitle().split())  # wrapped to the figure's width
    assert "GRPO + CLIPO SupCon (τ = 0.05), seed 0" in note and "trained before the step checker" in note
    assert not any("SupCon" in t for t in texts(fig) if t != fig.get_suptitle())


def test_without_the_key_the_figure_says_why_instead_of_failing_obscurely(tmp_path, capsys):
    write_metrics(tmp_path, spec(), [{"step": s, "reward/outcome": 0.3} for s in range(1, 5)])
    with pytest.raises(MissingInput, match=r"no trained run's metrics.jsonl holds 'process/lucky_share' "
                                           r"\(runs trained before the step checker"):
        lucky.draw(tmp_path, tmp_path / "figs")
    assert clipo_main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "figs")]) == 0
    assert "skipped lucky: no trained run's metrics.jsonl holds 'process/lucky_share'" in capsys.readouterr().out
    assert clipo_main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "figs"), "--only", "lucky"]) == 2
    assert "process/lucky_share" in capsys.readouterr().err
    with pytest.raises(MissingInput, match="no metrics.jsonl under"):
        lucky.draw(tmp_path / "empty", tmp_path / "figs")


def test_the_cli_draws_it_and_prints_the_runs_that_lack_the_key(tmp_path, capsys):
    write_run_set(tmp_path)
    assert clipo_main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "figs"), "--only", "lucky"]) == 0
    out = capsys.readouterr().out
    assert "lucky: no process/lucky_share in the metrics of GRPO + CLIPO SupCon (τ = 0.05), seed 0" in out
    assert f"lucky: {tmp_path / 'figs' / 'lucky_share'}.{{png,pdf}}" in out


def test_grid_check_asks_for_a_mini_trained_run():
    base = RunSpec("mini", "mini-base", "base", "none", None, 8, 0, "mini")
    check_grid([base, spec()], [], ["lucky"])
    with pytest.raises(ConfigError, match="lucky needs a run trained by the mini trainer"):
        check_grid([base], [], ["lucky"])
    with pytest.raises(ConfigError, match="lucky needs a run trained by the mini trainer"):
        check_grid([RunSpec("I", "qwen2.5-3b-instruct", "grpo", "none", None, 16, 0, "verl")], [], ["lucky"])
