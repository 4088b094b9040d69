"""Every figure from small synthetic inputs: files are valid PNG/PDF, the plotted data equal the inputs,
and the drawn axes carry the series, titles and marks the figure promises."""

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clipo.analysis import curves, fig3, fig4, fig5, forest, paperfig3, reward, stats, style
from clipo.analysis.registry import FIGURES
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


@pytest.fixture
def drawn(monkeypatch):
    """stem → the matplotlib Figure each figure function saved, to inspect what is on the page."""
    figures = {}
    real_save = style.save

    def save(fig, stem):
        figures[Path(stem).name] = fig
        return real_save(fig, stem)

    monkeypatch.setattr(style, "save", save)
    return figures


def texts(fig) -> list[str]:
    """Every title, suptitle, axis label, legend entry and annotation of a figure."""
    out = [fig.get_suptitle()] if fig.get_suptitle() else []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_title("left"), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_yticklabels()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return [t for t in out if t]


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



def test_fig3_labels_only_without_intervals_and_missing_base(tmp_path, drawn):
    df = table13_like()
    errors = pd.DataFrame([{"loss": "infonce", "average": "Avg.", "model": "qwen2.5-3b-instruct",
                            "group_size": 16, "tau": 0.05, "ci_low": -1.0, "ci_high": 3.0}])
    data = fig3.fig3(df, tmp_path, errors=errors)
    row = data[(data["loss"] == "infonce") & (data["average"] == "Avg.")].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == (-1.0, 3.0)
    assert data[data["loss"] == "supcon"]["ci_low"].isna().all()
    (ax,) = drawn["fig3_loss_gains"].axes
    assert "95% bootstrap intervals" in ax.get_title("left") and not ax.texts  # whiskers, no bare numbers

    data = fig3.fig3(df, tmp_path)
    (ax,) = drawn["fig3_loss_gains"].axes
    assert "no intervals (no per-sample records)" in ax.get_title("left")
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{g:+.1f}".replace("-", "−") for g in data["gain"])
    with pytest.raises(MissingInput, match="no base run"):
        fig3.fig3(df[df["clipo"] != "none"], tmp_path)


SEEDS = (0, 1, 2)


def mini_spec(clipo="none", tau=None, seed=0):
    return RunSpec("mini", "mini-base", "grpo", clipo, tau, 8, seed, "mini")


def run_set_specs():
    """The default grid's shape: GRPO and InfoNCE τ=0.05 with 3 seeds, one seed of the other variants."""
    specs = [mini_spec(seed=s) for s in SEEDS] + [mini_spec("infonce", 0.05, s) for s in SEEDS]
    return specs + [mini_spec("infonce", 0.2), mini_spec("supcon", 0.05), mini_spec("softnn", 0.05),
                    mini_spec("infonce-fixed", 0.05)]


def write_eval(root, spec, rng, p_correct, n=60):
    names = benchmarks("mini")
    d = root / "eval" / spec.run_id
    d.mkdir(parents=True)
    correct = {b: rng.random(n) < p_correct for b in names}
    pd.concat([pd.DataFrame({"run_id": spec.run_id, "benchmark": b, "problem_id": np.arange(n), "sample_id": 0,
                             "correct": c}) for b, c in correct.items()]).to_parquet(d / "samples.parquet")
    rows = score_rows("mini", "mini", "mini-base", spec.clipo, spec.tau, spec.seed,
                      {b: 100 * c.mean() for b, c in correct.items()}, 8, method=spec.method)
    write_scores(pd.DataFrame(rows), d / "scores.csv")


def metric_lines(rng, steps=25, clipo=True):
    lines = []
    for s in range(1, steps + 1):
        m = {"step": s, "reward/outcome": float(rng.uniform(0.2, 0.8)),
             "process/sound_share": float(rng.uniform(0, 0.5)), "process/lucky_share": float(rng.uniform(0, 0.5))}
        if clipo:
            m |= {"clipo/cos_pos": float(rng.uniform(0.5, 1)), "clipo/cos_neg": float(rng.uniform(0.5, 1)),
                  "clipo/cos_cross": None if s == 3 else float(rng.uniform(0.3, 0.9))}
        lines.append(m)
    return lines


def probe_embeddings(n_prompts=6, per_prompt=4, dim=8, seed=0, end_prompts=None) -> pd.DataFrame:
    """A fixed probe set: the same prompts (group ids) at start and end; at the end each prompt's
    rollouts sit near their own centre, at the start they are noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, dim)) * 5
    rows = []
    for phase, step, prompts in (("start", 0, range(n_prompts)), ("end", 25, end_prompts or range(n_prompts))):
        for g in prompts:
            for i in range(per_prompt):
                e = rng.normal(size=dim) + (centres[g] if phase == "end" else 0)
                rows.append({"step": step, "phase": phase, "group_id": g, "correct": bool((g + i) % 2),
                             "embedding": e.astype(np.float32).tolist(), "space": "head"})
    return pd.DataFrame(rows)


def make_run_set(root, clipo=True):
    """A mini run set shaped like the default grid: scores and samples of every run, metrics of every
    trained run, embeddings of InfoNCE τ=0.05 seed 0. ``clipo=False``: only the GRPO runs."""
    rng = np.random.default_rng(1)
    specs = [s for s in run_set_specs() if clipo or s.clipo == "none"]
    write_eval(root, RunSpec("mini", "mini-base", "base", "none", None, 8, 0, "mini"), rng, 0.3)
    for spec in specs:
        write_eval(root, spec, rng, 0.5 if spec.clipo == "none" else 0.6)
        d = root / "runs" / spec.run_id
        d.mkdir(parents=True)
        lines = metric_lines(rng, clipo=spec.clipo != "none")
        (d / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
        if spec == mini_spec("infonce", 0.05):
            probe_embeddings().to_parquet(d / "embeddings.parquet")
    return specs


def test_fig3_of_a_run_set_has_bootstrap_intervals_by_default(tmp_path, drawn):
    make_run_set(tmp_path)
    data = fig3.draw(tmp_path, tmp_path / "figs")
    assert_images(tmp_path / "figs" / "fig3_loss_gains")
    assert data["ci_low"].notna().all() and (data["ci_low"] <= data["gain"]).all()
    assert (data["gain"] <= data["ci_high"]).all()
    pooled = stats.bootstrap_table(stats.load_samples(tmp_path), pool_seeds=True)
    expected = pooled[(pooled["clipo"] == "infonce") & (pooled["tau"] == 0.05) & (pooled["benchmark"] == "Avg.")]
    got = data[(data["loss"] == "infonce") & (data["average"] == "Avg.")].iloc[0]
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((expected["ci_low"].iloc[0], expected["ci_high"].iloc[0]))
    assert got["n_seeds"] == 3 and got["gain"] == pytest.approx(expected["delta"].iloc[0])
    (ax,) = drawn["fig3_loss_gains"].axes
    assert "95% bootstrap intervals" in ax.get_title("left") and not ax.texts
    assert "InfoNCE (3 seeds)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(ax.containers) == 2 * 3  # bars and their whiskers, per loss

    data = fig3.draw(tmp_path, tmp_path / "figs", intervals=False)
    assert "ci_low" not in data and "no intervals (not asked for)" in drawn["fig3_loss_gains"].axes[0].get_title("left")


def test_fig4_fixed_probe_set_groups_marked_titled_in_words(tmp_path, drawn):
    make_run_set(tmp_path)
    data = fig4.draw(tmp_path, tmp_path / "figs")
    assert_images(tmp_path / "figs" / "fig4_tsne")
    fig = drawn["fig4_tsne"]
    words = texts(fig)
    assert any("GRPO + CLIPO InfoNCE (τ = 0.05), seed 0" in t for t in words)
    assert not any(mini_spec("infonce", 0.05).run_id in t for t in words)  # no raw run id
    assert fig.get_suptitle().endswith("\nThe same probe prompts in both panels")
    start, end = fig.axes
    assert start.get_title().startswith("Start of training (step 0)")
    assert end.get_title().startswith("End of training (step 25)")
    assert "24 rollouts of 6 prompts" in end.get_title()
    summary = data["summary"].set_index("phase")
    assert summary.loc["end", "silhouette"] > 0.5 > summary.loc["start", "silhouette"]  # clusters at the end only
    for ax, phase in ((start, "start"), (end, "end")):
        d = data[phase]
        filled, hollow = ax.collections[0], ax.collections[2]  # correct, incorrect (the others: legend proxies)
        assert len(filled.get_offsets()) == d["correct"].sum() and len(hollow.get_offsets()) == (~d["correct"]).sum()
        assert (hollow.get_facecolors()[:, :3] == 1).all() and not (filled.get_facecolors()[:, :3] == 1).all()
        # one colour per prompt, the same prompt the same colour in both panels
        colours = {g: tuple(c) for g, c in zip(d[d["correct"]]["group_id"], filled.get_facecolors())}
        assert len(set(colours.values())) == len(colours)
        if phase == "start":
            start_colours = colours
    assert colours == start_colours
    legend = [t.get_text() for t in end.get_legend().get_texts()]
    assert legend == [f"correct ({data['end']['correct'].sum()})", f"incorrect ({(~data['end']['correct']).sum()})"]
    assert end.get_legend().get_title().get_text() == "colour = prompt"


def test_fig4_different_prompts_said_and_whole_groups_kept(tmp_path, drawn):
    fig4.fig4(probe_embeddings(end_prompts=range(6, 12)), tmp_path)
    assert drawn["fig4_tsne"].get_suptitle().endswith("\nDifferent prompts at start and end")
    emb = probe_embeddings(n_prompts=10, per_prompt=4)
    start = fig4.phase_rows(emb, "start")
    kept = fig4.keep_groups(start, [3, 1, 7, 0], limit=10)
    assert sorted(set(kept["group_id"])) == [1, 3] and len(kept) == 8  # whole groups, in the given order
    assert fig4.group_silhouette(np.eye(3), np.array([0, 1, 2])) is None  # one rollout per prompt


def embeddings(n_per_phase: int, dim: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for phase, step in (("start", 0), ("end", 30)):
        for i in range(n_per_phase):
            rows.append({"step": step, "phase": phase, "group_id": i // 4, "correct": bool(i % 3),
                         "embedding": rng.normal(size=dim).astype(np.float32).tolist()})
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


def test_fig4_prefers_head_embeddings_over_hidden_states(tmp_path, drawn):
    head = embeddings(6).assign(space="head")
    hidden = embeddings(9, seed=1).assign(space="hidden")
    data = fig4.fig4(pd.concat([hidden, head], ignore_index=True), tmp_path)
    assert len(data["start"]) == 6 and len(data["end"]) == 6
    assert drawn["fig4_tsne"].get_suptitle().startswith("Contrastive-head embeddings")
    assert len(fig4.fig4(hidden, tmp_path)["end"]) == 9
    assert drawn["fig4_tsne"].get_suptitle().startswith("Pooled hidden states (no contrastive head)")


def test_smoothing_is_a_bias_corrected_ema():
    x = pd.Series(np.sin(np.arange(20) * 0.3))
    w = 0.5 ** np.arange(len(x))
    hand = [np.dot(w[: t + 1][::-1], x[: t + 1]) / w[: t + 1].sum() for t in range(len(x))]
    np.testing.assert_allclose(curves.smooth(x, alpha=0.5), hand)


def test_read_metrics_skips_torn_last_line_only(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 0, "clipo/cos_pos": 0.5}\n{"step": 1, "clipo/cos_pos": 0.6}\n{"step": 2, "cl')
    assert list(curves.read_metrics(p)["step"]) == [0, 1]
    p.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(SchemaError, match="metrics.jsonl:2"):
        curves.read_metrics(p)


def test_fig5_positive_negative_cross_per_setting_with_seed_bands(tmp_path, drawn):
    make_run_set(tmp_path)
    data = fig5.draw(tmp_path, tmp_path / "figs")
    assert_images(tmp_path / "figs" / "fig5_pair_cos")
    fig = drawn["fig5_pair_cos"]
    assert [ax.get_title() for ax in fig.axes] == ["Positive pairs (correct–correct)",
                                                   "Negative pairs (incorrect–incorrect)",
                                                   "Cross pairs (correct–incorrect)"]
    assert fig.get_suptitle().endswith("\nGRPO + CLIPO; mini track, mini-base, G = 8")
    settings = list(dict.fromkeys(data["setting"]))
    assert settings == ["InfoNCE (τ = 0.05), 3 seeds (0, 1, 2)", "InfoNCE (τ = 0.2), seed 0",
                        "SupCon (τ = 0.05), seed 0", "SoftNN (τ = 0.05), seed 0",
                        "InfoNCE, fixed head (τ = 0.05), seed 0"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == settings
    for ax in fig.axes:  # faint raw + smooth per setting; one band, for the only setting with seeds
        assert len(ax.lines) == 2 * len(settings) and len(ax.collections) == 1
    # the 3-seed curve by hand: mean of the seeds' EMAs, band = their min and max
    ema = {}
    for s in SEEDS:
        m = curves.read_metrics(tmp_path / "runs" / mini_spec("infonce", 0.05, s).run_id / "metrics.jsonl")
        ema[s] = curves.smooth(m.set_index("step")["clipo/cos_neg"].astype(float))
    wide = pd.DataFrame(ema)
    d = data[(data["pair"] == "negative") & (data["setting"] == settings[0])].set_index("step")
    np.testing.assert_allclose(d["smooth"], wide.mean(axis=1))
    np.testing.assert_allclose(d["low"], wide.min(axis=1))
    np.testing.assert_allclose(d["high"], wide.max(axis=1))
    cross = data[(data["pair"] == "cross") & (data["setting"] == settings[1])]
    assert 3 not in set(cross["step"])  # a null value is a gap, not a zero


def test_seed_curve_carries_a_seeds_ema_over_its_gaps():
    a = pd.DataFrame({"step": [1, 2, 3], "k": [0.0, None, 1.0]})
    b = pd.DataFrame({"step": [1, 2, 3], "k": [1.0, 1.0, 1.0]})
    c = curves.seed_curve({0: a, 1: b}, "k", alpha=0.5).set_index("step")
    assert list(c["n_seeds"]) == [2, 2, 2] and c.loc[2, "low"] == 0.0  # seed 0's EMA stays at 0 at step 2
    assert c.loc[2, "raw"] == 1.0 and curves.seed_curve({0: a}, "missing") is None


def test_fig5_picks_the_family_of_a_run_and_needs_clipo(tmp_path):
    make_run_set(tmp_path)
    lone = RunSpec("mini", "mini-base", "gspo", "supcon", 0.05, 8, 0, "mini")
    (tmp_path / "runs" / lone.run_id).mkdir()
    (tmp_path / "runs" / lone.run_id / "metrics.jsonl").write_text('{"step": 1, "clipo/cos_pos": 0.1}\n')
    assert len(fig5.clipo_family(tmp_path / "runs")) == 5
    assert list(fig5.clipo_family(tmp_path / "runs", lone.run_id)) == [lone]
    with pytest.raises(MissingInput, match="no CLIPO run with metrics.jsonl"):
        fig5.clipo_family(tmp_path / "runs", runs=[mini_spec().run_id])
    with pytest.raises(MissingInput, match="hold no value"):
        fig5.fig5({mini_spec("infonce", 0.05): {0: pd.DataFrame({"step": [1], "loss/policy": [1.0]})}}, tmp_path)


def test_reward_curve_per_method_and_variant_seeds_as_bands(tmp_path, drawn):
    specs = make_run_set(tmp_path)
    data = reward.draw(tmp_path, tmp_path / "figs")
    assert_images(tmp_path / "figs" / "reward_curves")
    fig = drawn["reward_curves"]
    (ax,) = fig.axes
    assert ax.get_xlabel() == "Training step" and ax.get_ylabel().startswith("Outcome reward")
    settings = list(dict.fromkeys(data["setting"]))
    assert settings[:2] == ["GRPO, 3 seeds (0, 1, 2)", "GRPO + CLIPO InfoNCE (τ = 0.05), 3 seeds (0, 1, 2)"]
    assert len(settings) == len({replace_seed(s) for s in specs}) == 6
    assert [t.get_text() for t in fig.legends[0].get_texts()] == settings
    assert len(ax.lines) == 2 * 6 and len(ax.collections) == 2  # two settings have seeds
    assert ax.lines[1].get_color() == style.BASELINE  # GRPO's smoothed line in black
    raw = np.mean([[m["reward/outcome"] for m in curves.records.read_metrics(
        tmp_path / "runs" / mini_spec(seed=s).run_id / "metrics.jsonl")] for s in SEEDS], axis=0)
    np.testing.assert_allclose(data[data["setting"] == settings[0]]["raw"], raw)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), raw)


def test_reward_figure_draws_the_validation_reward_unsmoothed_in_its_own_panel(tmp_path, drawn):
    make_run_set(tmp_path)
    rng = np.random.default_rng(2)
    val = {}  # seed → step → val/reward of the GRPO runs; the CLIPO runs log none
    for s in SEEDS:
        path = tmp_path / "runs" / mini_spec(seed=s).run_id / "metrics.jsonl"
        rows = curves.records.read_metrics(path)
        val[s] = {step: float(rng.uniform(0.2, 0.4)) for step in (0, 5, 10, 15, 20, 25)}
        rows = [{"step": 0, "val/reward": val[s][0]}] + [r | ({"val/reward": val[s][r["step"]]}
                                                            if r["step"] in val[s] else {}) for r in rows]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = reward.draw(tmp_path, tmp_path / "figs")
    train_ax, val_ax = drawn["reward_curves"].axes
    assert [train_ax.get_title(), val_ax.get_title()] == ["Training reward, mini track",
                                                          "Validation reward, mini track"]
    curve = data[data["metric"] == reward.VAL_KEY].set_index("step")
    assert set(curve["setting"]) == {"GRPO, 3 seeds (0, 1, 2)"}
    wide = pd.DataFrame(val)
    np.testing.assert_allclose(curve["raw"], wide.mean(axis=1))
    np.testing.assert_allclose(curve["smooth"], curve["raw"])  # not smoothed
    np.testing.assert_allclose(curve["low"], wide.min(axis=1))
    np.testing.assert_allclose(curve["high"], wide.max(axis=1))
    assert len(val_ax.lines) == 2 and val_ax.lines[1].get_color() == train_ax.lines[1].get_color() == style.BASELINE
    training = data[(data["metric"] == reward.KEY) & (data["setting"] == "GRPO, 3 seeds (0, 1, 2)")]
    assert list(training["step"]) == list(range(1, 26))  # the step-0 validation row has no training reward


def replace_seed(spec):
    from dataclasses import replace

    return replace(spec, seed=0)


def test_reward_needs_metrics(tmp_path):
    with pytest.raises(MissingInput, match="no metrics.jsonl under"):
        reward.draw(tmp_path, tmp_path)
    with pytest.raises(MissingInput, match="'reward/outcome'"):
        reward.reward_curves({mini_spec(): {0: pd.DataFrame({"step": [1], "loss/kl": [0.1]})}}, tmp_path)


def test_forest_every_delta_with_its_interval_pooled_rows_marked(tmp_path, drawn):
    make_run_set(tmp_path)
    data = forest.draw(tmp_path, tmp_path / "figs")
    assert_images(tmp_path / "figs" / "forest_deltas")
    samples = stats.load_samples(tmp_path)
    single = stats.bootstrap_table(samples)
    assert len(data) == len(single) + len(single[single["clipo"] == "infonce"].query("tau == 0.05")) // 3
    for r in single.itertuples():  # the significance table's numbers, not a second computation
        got = data[(data["pair"] == r.pair) & (data["benchmark"] == r.benchmark) & ~data["pooled"]]
        assert len(got) == 1 and (got["delta"].iloc[0], got["ci_low"].iloc[0]) == (r.delta, r.ci_low)
    fig = drawn["forest_deltas"]
    panels = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert panels == [*benchmarks("mini"), "M-Avg.", "G-Avg.", "Avg."]
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows[:4] == ["InfoNCE (τ = 0.05), seed 0", "InfoNCE (τ = 0.05), seed 1", "InfoNCE (τ = 0.05), seed 2",
                        "InfoNCE (τ = 0.05), 3 seeds (0, 1, 2) pooled"]
    assert rows[4:] == ["InfoNCE (τ = 0.2), seed 0", "SupCon (τ = 0.05), seed 0", "SoftNN (τ = 0.05), seed 0",
                        "InfoNCE, fixed head (τ = 0.05) − learned head, seed 0"]  # the paper's order of losses
    assert [t.get_fontweight() for t in fig.axes[0].get_yticklabels()][3] == "bold"
    avg = next(ax for ax in fig.axes if ax.get_title() == "Avg.")
    zero = [ln for ln in avg.lines if list(ln.get_xdata()) == [0, 0]]
    assert len(zero) == 1  # the vertical line at 0
    markers = [ln.get_marker() for ln in avg.lines if ln.get_marker() not in ("None", None)]
    assert markers.count("D") == 1 and markers.count("o") == len(rows) - 1
    pooled = data[data["pooled"] & (data["benchmark"] == "Avg.")].iloc[0]
    interval = next(ln for ln in avg.lines if ln.get_ydata()[0] == 3 and len(ln.get_xdata()) == 2
                    and list(ln.get_xdata()) != [0, 0])
    assert list(interval.get_xdata()) == [pooled["ci_low"], pooled["ci_high"]]


def test_forest_without_clipo_runs_names_what_is_missing(tmp_path):
    make_run_set(tmp_path, clipo=False)
    with pytest.raises(MissingInput, match="no CLIPO run under .* has per-sample records together with its base"):
        forest.draw(tmp_path, tmp_path)
    with pytest.raises(MissingInput, match="no per-sample records under"):
        forest.draw(tmp_path / "empty", tmp_path)


def test_paperfig3_is_the_papers_figure_with_binomial_whiskers(tmp_path, drawn):
    data = paperfig3.draw(tmp_path / "any-run-set", tmp_path)
    assert_images(tmp_path / "paperfig3_loss_gains")
    gains = data.set_index(["loss", "average"])
    for loss, printed in (("infonce", 1.12), ("supcon", 0.56), ("softnn", 0.48)):  # Figure 3 / Table 13, Avg.
        assert gains.loc[(loss, "Avg."), "gain"] == pytest.approx(printed, abs=0.011)
    from clipo.analysis.results import load_scores

    se = stats.se_table(load_scores("paper")).query("track == 'I' and clipo == 'infonce' and benchmark == 'Avg.'"
                                                    " and method == 'grpo' and reference == 'none'")
    row = gains.loc[("infonce", "Avg.")]
    assert row["ci_high"] - row["gain"] == pytest.approx(2 * se["se_delta"].iloc[0])
    (ax,) = drawn["paperfig3_loss_gains"].axes
    assert ax.get_title("left") == "Paper, track I: ±2 binomial SE"
    assert sorted(t.get_text() for t in ax.texts) == sorted(f"{g:+.2f}".replace("-", "−") for g in data["gain"])


def test_clipo_figures_draws_every_figure_of_the_registry(tmp_path, capsys):
    make_run_set(tmp_path / "mini")
    t = time.perf_counter()
    rc = clipo_main(["figures", "--results", str(tmp_path / "mini"), "--out", str(tmp_path / "figs")])
    assert rc == 0 and time.perf_counter() - t < 60
    assert len(FIGURES) >= 5
    for fig in FIGURES.values():
        assert_images(tmp_path / "figs" / fig.stem)
        assert fig.stem.split("_")[0] == fig.id  # the workflow reads the id back from the stem
    out = capsys.readouterr().out
    assert all(f"{fid}: " in out for fid in FIGURES)


def test_clipo_figures_without_clipo_runs_says_what_is_missing(tmp_path, capsys):
    make_run_set(tmp_path / "mini", clipo=False)
    out = tmp_path / "figs"
    assert clipo_main(["figures", "--results", str(tmp_path / "mini"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped fig3: need grpo without CLIPO and with at least one of infonce" in printed
    assert "skipped fig4: no embeddings.parquet under" in printed
    assert "skipped fig5: no CLIPO run with metrics.jsonl" in printed
    assert "skipped forest: no CLIPO run" in printed
    assert sorted(p.name for p in out.glob("*.png")) == ["lucky_share.png", "paperfig3_loss_gains.png",
                                                          "reward_curves.png"]
    assert clipo_main(["figures", "--results", str(tmp_path / "mini"), "--out", str(out), "--only", "fig4"]) == 2
    assert "embeddings.parquet" in capsys.readouterr().err
    assert clipo_main(["figures", "--results", str(tmp_path / "nothing"), "--out", str(out), "--only", "fig3"]) == 2


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


def test_grid_check_names_what_each_new_figure_needs():
    from clipo.analysis.coverage import check_grid
    from clipo.errors import ConfigError

    base = RunSpec("mini", "mini-base", "base", "none", None, 8, 0, "mini")
    fixed_only = [mini_spec(), mini_spec("infonce-fixed", 0.05)]
    check_grid(fixed_only + [mini_spec("infonce", 0.05)], [], ["reward", "forest", "paperfig3"])
    with pytest.raises(ConfigError, match="reward needs a trained run"):
        check_grid([base], [], ["reward"])
    with pytest.raises(ConfigError, match="forest needs a CLIPO run and its base run"):
        check_grid([base, mini_spec("infonce", 0.05, seed=1), mini_spec(seed=0)], [], ["forest"])
    with pytest.raises(ConfigError, match="forest needs"):
        check_grid([mini_spec("infonce-fixed", 0.05), mini_spec("infonce", 0.2)], [], ["forest"])
    check_grid([base], [], ["paperfig3"])  # drawn from the transcription, whatever the grid


def test_clipo_figures_fig3_intervals_default_opt_out_and_absent_records(tmp_path, capsys, drawn):
    make_run_set(tmp_path / "mini")
    args = ["figures", "--results", str(tmp_path / "mini"), "--out", str(tmp_path / "figs"), "--only", "fig3"]
    assert clipo_main(args) == 0
    assert "95% bootstrap intervals" in drawn["fig3_loss_gains"].axes[0].get_title("left")
    assert clipo_main([*args, "--no-intervals"]) == 0
    assert "no intervals (not asked for)" in drawn["fig3_loss_gains"].axes[0].get_title("left")
    for f in (tmp_path / "mini" / "eval").glob("*/samples.parquet"):
        f.unlink()
    capsys.readouterr()
    assert clipo_main(args) == 0
    assert "fig3: no per-sample records under" in capsys.readouterr().out
    assert "no intervals (no per-sample records)" in drawn["fig3_loss_gains"].axes[0].get_title("left")
