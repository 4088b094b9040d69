"""Figures 3-5 from small synthetic inputs: files are valid PNG/PDF and the plotted data equal the inputs."""

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipo.analysis import fig3, fig4, fig5
from clipo.cli import main as clipo_main
from clipo.data.registry import benchmark_groups, benchmarks
from clipo.errors import MissingInput, SchemaError
from clipo.runs import RunSpec
from clipo.scores import SCORE_COLUMNS, write_scores

TRACK_I = benchmarks("I")


def assert_images(stem):
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.size[0] > 300 and im.size[1] > 200
    assert not list(stem.parent.glob(".*.tmp"))  # atomic writes left no temporaries


def score_rows(source, track, model, clipo, tau, seed, values, group_size=16, method="grpo"):
    return [
        {
            "source": source,
            "track": track,
            "model": model,
            "method": method,
            "clipo": clipo,
            "tau": tau,
            "group_size": group_size,
            "seed": seed,
            "benchmark": b,
            "score": v,
            "n_problems": 100,
            "n_samples": 1,
        }
        for b, v in values.items()
    ]


def table13_like() -> pd.DataFrame:
    """Track I GRPO and three losses (τ = 0.05, seed 0) plus a τ-sweep run at seed 1 without a base."""
    rng = np.random.default_rng(0)
    grpo = dict(zip(TRACK_I, rng.uniform(30, 90, len(TRACK_I))))
    rows = score_rows("paper", "I", "qwen2.5-3b-instruct", "none", math.nan, 0, grpo)
    for loss in ("infonce", "supcon", "softnn"):
        rows += score_rows(
            "paper",
            "I",
            "qwen2.5-3b-instruct",
            loss,
            0.05,
            0,
            {b: v + rng.normal(0.5, 1) for b, v in grpo.items()},
        )
    rows += score_rows("paper", "I", "qwen2.5-3b-instruct", "infonce", 0.05, 1, {b: 0.0 for b in TRACK_I})
    rows += score_rows("paper", "I", "qwen2.5-3b-instruct", "infonce", 0.2, 0, {b: 0.0 for b in TRACK_I})
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def expected_gain(df, loss, average, tau=0.05, seed=0):
    members = benchmark_groups("I")[average]
    sel = df[(df["seed"] == seed) & (df["benchmark"].isin(members))]
    var = sel[(sel["clipo"] == loss) & np.isclose(sel["tau"], tau)]["score"].mean()
    return var - sel[sel["clipo"] == "none"]["score"].mean()


def test_fig3_plots_the_gains_of_the_inputs(tmp_path):
    df = table13_like()
    data = fig3.fig3(df, tmp_path)
    assert_images(tmp_path / "fig3_loss_gains")
    assert set(data["loss"]) == {"infonce", "supcon", "softnn"}
    assert list(data[data["loss"] == "infonce"]["average"]) == ["M-Avg.", "G-Avg.", "Avg."]
    for r in data.itertuples():
        assert r.gain == pytest.approx(expected_gain(df, r.loss, r.average))
        assert r.tau == 0.05 and r.n_seeds == 1  # the seed-1 sweep run has no base and is not mixed in


def test_fig3_paper_numbers(tmp_path):
    """Table 13's printed Δ rows: InfoNCE +1.41/+0.83/+1.12 etc. (from the printed benchmark scores)."""
    t13 = {
        "none": [87.79, 84.04, 73.12, 50.80, 74.94, 30.48, 27.71, 68.19],
        "infonce": [88.02, 84.62, 74.60, 54.16, 76.90, 31.52, 27.58, 68.64],
        "supcon": [87.79, 85.04, 74.00, 51.12, 77.07, 30.23, 27.04, 69.25],
        "softnn": [87.11, 84.70, 74.06, 53.92, 75.27, 29.99, 27.31, 68.59],
    }
    rows = []
    for loss, values in t13.items():
        rows += score_rows(
            "paper",
            "I",
            "qwen2.5-3b-instruct",
            loss,
            math.nan if loss == "none" else 0.05,
            0,
            dict(zip(TRACK_I, values)),
        )
    data = fig3.fig3(pd.DataFrame(rows), tmp_path).set_index(["loss", "average"])["gain"]
    printed = {
        ("infonce", "M-Avg."): 1.41,
        ("infonce", "G-Avg."): 0.83,
        ("infonce", "Avg."): 1.12,
        ("supcon", "M-Avg."): 0.55,
        ("supcon", "G-Avg."): 0.57,
        ("supcon", "Avg."): 0.56,
        ("softnn", "M-Avg."): 1.01,
        ("softnn", "G-Avg."): -0.04,
        ("softnn", "Avg."): 0.48,
    }
    for key, value in printed.items():
        assert data[key] == pytest.approx(value, abs=0.011)


def test_fig3_from_the_papers_transcription(tmp_path):
    """`--source paper`: Track I is the paper's Figure 3; Track II gains match Table 14's Δ rows."""
    for track in ("I", "II"):
        out = tmp_path / track
        args = [
            "figures",
            "--results",
            str(tmp_path),
            "--out",
            str(out),
            "--only",
            "fig3",
            "--source",
            "paper",
        ]
        assert clipo_main([*args, "--track", track]) == 0
        assert_images(out / "fig3_loss_gains")
    from clipo.analysis.results import load_scores

    for track, printed in (
        ("I", {"infonce": 1.12, "supcon": 0.56, "softnn": 0.48}),
        ("II", {"infonce": 1.35, "supcon": 0.43, "softnn": 1.35}),
    ):
        gains = fig3.loss_gains(load_scores("paper"), track).set_index(["loss", "average"])["gain"]
        for loss, value in printed.items():
            assert gains[(loss, "Avg.")] == pytest.approx(value, abs=0.011)


def test_fig3_error_bars_and_missing_base(tmp_path):
    df = table13_like()
    errors = pd.DataFrame(
        [
            {
                "loss": "infonce",
                "average": "Avg.",
                "model": "qwen2.5-3b-instruct",
                "group_size": 16,
                "tau": 0.05,
                "ci_low": -1.0,
                "ci_high": 3.0,
            }
        ]
    )
    data = fig3.fig3(df, tmp_path, errors=errors)
    row = data[(data["loss"] == "infonce") & (data["average"] == "Avg.")].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == (-1.0, 3.0)
    assert data[data["loss"] == "supcon"]["ci_low"].isna().all()
    with pytest.raises(MissingInput, match="no base run"):
        fig3.fig3(df[df["clipo"] != "none"], tmp_path)


def embeddings(n_per_phase: int, dim: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for phase, step in (("start", 0), ("end", 30)):
        for i in range(n_per_phase):
            rows.append(
                {
                    "step": step,
                    "phase": phase,
                    "group_id": i // 4,
                    "correct": bool(i % 3),
                    "embedding": rng.normal(size=dim).astype(np.float32).tolist(),
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n", [5, 40])
def test_fig4_tsne_tiny_and_small(tmp_path, n):
    emb = embeddings(n)
    data = fig4.fig4(emb, tmp_path)
    assert_images(tmp_path / "fig4_tsne")
    for phase in ("start", "end"):
        src = emb[emb["phase"] == phase]
        assert list(data[phase]["correct"]) == list(src["correct"])
        assert list(data[phase]["group_id"]) == list(src["group_id"])
        assert np.isfinite(data[phase][["x", "y"]].to_numpy()).all()
    assert data["end"]["step"].iloc[0] == 30


def test_fig4_deterministic_and_needs_two_points(tmp_path):
    emb = embeddings(12)
    a = fig4.fig4(emb, tmp_path / "a")
    b = fig4.fig4(emb, tmp_path / "b")
    pd.testing.assert_frame_equal(a["end"], b["end"])
    assert fig4.tsne_perplexity(5) == pytest.approx(4 / 3)
    assert fig4.tsne_perplexity(10_000) == 30
    with pytest.raises(MissingInput, match="'end' has 1"):
        fig4.fig4(emb[(emb["phase"] == "start") | (emb.index == emb.index[-1])], tmp_path)


def test_fig4_prefers_head_embeddings_over_hidden_states(tmp_path):
    head = embeddings(6).assign(space="head")
    hidden = embeddings(9, seed=1).assign(space="hidden")
    data = fig4.fig4(pd.concat([hidden, head], ignore_index=True), tmp_path)
    assert len(data["start"]) == 6 and len(data["end"]) == 6
    assert len(fig4.fig4(hidden, tmp_path)["end"]) == 9


def test_fig5_raw_equals_input_and_smoothing_is_an_ema(tmp_path):
    curves = {}
    for tau in (0.2, 0.05):
        steps = np.arange(20)
        cos = np.sin(steps * tau * 3) * 0.2 + 0.5
        m = pd.DataFrame({"step": steps, "clipo/cos_pos": cos, "reward/outcome": 0.5})
        m.loc[3, "clipo/cos_pos"] = np.nan  # a step without any positive pair
        curves[tau] = m
    data = fig5.fig5(curves, tmp_path, alpha=0.5)
    assert_images(tmp_path / "fig5_pos_cos")
    assert list(data) == [0.05, 0.2]
    for tau, d in data.items():
        src = curves[tau].dropna(subset=["clipo/cos_pos"])
        assert list(d["step"]) == list(src["step"])
        np.testing.assert_allclose(d["raw"], src["clipo/cos_pos"])
        # bias-corrected EMA by hand: s_t = Σ (1-a)^i x_{t-i} / Σ (1-a)^i
        x = d["raw"].to_numpy()
        w = 0.5 ** np.arange(len(x))
        hand = [np.dot(w[: t + 1][::-1], x[: t + 1]) / w[: t + 1].sum() for t in range(len(x))]
        np.testing.assert_allclose(d["smooth"], hand)
    with pytest.raises(MissingInput):
        fig5.fig5({0.1: pd.DataFrame({"step": [0, 1], "loss/policy": [1.0, 2.0]})}, tmp_path)


def test_read_metrics_skips_torn_last_line_only(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 0, "clipo/cos_pos": 0.5}\n{"step": 1, "clipo/cos_pos": 0.6}\n{"step": 2, "cl')
    assert list(fig5.read_metrics(p)["step"]) == [0, 1]
    p.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(SchemaError, match="metrics.jsonl:2"):
        fig5.read_metrics(p)


def make_run_set(root):
    """A mini run set: scores for GRPO and the three losses, embeddings for one run, metrics for 3 τ."""
    rng = np.random.default_rng(1)
    names = benchmarks("mini")
    base = RunSpec("mini", "mini-base", "grpo", "none", None, 8, 0, "mini")
    for loss in ("none", "infonce", "supcon", "softnn"):
        spec = base if loss == "none" else RunSpec("mini", "mini-base", "grpo", loss, 0.05, 8, 0, "mini")
        d = root / "eval" / spec.run_id
        d.mkdir(parents=True)
        correct = {b: rng.random((60, 1)) < (0.5 if loss == "none" else 0.6) for b in names}
        samples = pd.concat(
            [
                pd.DataFrame(
                    {
                        "run_id": spec.run_id,
                        "benchmark": b,
                        "problem_id": np.arange(60),
                        "sample_id": 0,
                        "correct": c[:, 0],
                    }
                )
                for b, c in correct.items()
            ]
        )
        samples.to_parquet(d / "samples.parquet")
        write_scores(
            pd.DataFrame(
                score_rows(
                    "mini",
                    "mini",
                    "mini-base",
                    loss,
                    spec.tau,
                    0,
                    {b: 100 * c.mean() for b, c in correct.items()},
                    8,
                )
            ),
            d / "scores.csv",
        )
    for tau in (0.2, 0.05, 0.1):
        spec = RunSpec("mini", "mini-base", "grpo", "infonce", tau, 8, 0, "mini")
        d = root / "runs" / spec.run_id
        d.mkdir(parents=True)
        lines = [
            json.dumps({"step": s, "clipo/cos_pos": float(rng.uniform()), "reward/outcome": 0.5})
            for s in range(25)
        ]
        (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        if tau == 0.05:
            embeddings(16).to_parquet(d / "embeddings.parquet")


def test_clipo_figures_all_in_seconds(tmp_path, capsys):
    make_run_set(tmp_path / "mini")
    t = time.perf_counter()
    rc = clipo_main(
        ["figures", "--results", str(tmp_path / "mini"), "--out", str(tmp_path / "figs"), "--error-bars"]
    )
    assert rc == 0 and time.perf_counter() - t < 30
    for name in ("fig3_loss_gains", "fig4_tsne", "fig5_pos_cos"):
        assert_images(tmp_path / "figs" / name)


def test_clipo_figures_missing_inputs(tmp_path, capsys):
    make_run_set(tmp_path / "mini")
    for f in (tmp_path / "mini" / "runs").glob("*/embeddings.parquet"):
        f.unlink()
    out = tmp_path / "figs"
    assert clipo_main(["figures", "--results", str(tmp_path / "mini"), "--out", str(out)]) == 0
    assert "fig4: no embeddings.parquet under" in capsys.readouterr().out
    assert not (out / "fig4_tsne.png").exists() and (out / "fig5_pos_cos.png").exists()
    assert (
        clipo_main(["figures", "--results", str(tmp_path / "mini"), "--out", str(out), "--only", "fig4"]) == 2
    )
    assert "embeddings.parquet" in capsys.readouterr().err
    assert (
        clipo_main(["figures", "--results", str(tmp_path / "nothing"), "--out", str(out), "--only", "fig3"])
        == 2
    )


def test_fig5_picks_the_tau_family_of_a_run(tmp_path):
    make_run_set(tmp_path)
    family = fig5.tau_family(tmp_path / "runs")
    assert list(family) == [0.05, 0.1, 0.2]
    lone = RunSpec("mini", "mini-base", "grpo", "supcon", 0.05, 8, 0, "mini")
    (tmp_path / "runs" / lone.run_id).mkdir()
    (tmp_path / "runs" / lone.run_id / "metrics.jsonl").write_text('{"step": 0, "clipo/cos_pos": 0.1}\n')
    assert list(fig5.tau_family(tmp_path / "runs", lone.run_id)) == [0.05]


def test_fig4_prefers_a_trained_head_over_the_fixed_head_ablation(tmp_path):
    from clipo.analysis.fig4 import find_embedding_run

    for run in ("mini_m_grpo_infonce-fixed_tau0.05_g8_s0_mini", "mini_m_grpo_none_tau-_g8_s0_mini",
                "mini_m_grpo_supcon_tau0.05_g8_s0_mini"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "embeddings.parquet").write_bytes(b"")
    assert find_embedding_run(tmp_path).name == "mini_m_grpo_supcon_tau0.05_g8_s0_mini"
    (tmp_path / "mini_m_grpo_infonce_tau0.2_g8_s0_mini").mkdir()
    (tmp_path / "mini_m_grpo_infonce_tau0.2_g8_s0_mini" / "embeddings.parquet").write_bytes(b"")
    assert find_embedding_run(tmp_path).name == "mini_m_grpo_infonce_tau0.2_g8_s0_mini"
