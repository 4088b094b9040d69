"""Is a Δ real? Paired bootstrap over problems and the binomial SE of the paper's numbers."""

import math
import time

import numpy as np
import pandas as pd
import pytest

from clipo.analysis import stats
from clipo.data.registry import benchmark_groups, benchmarks
from clipo.runs import RunSpec
from clipo.scores import SCORE_COLUMNS, write_scores

BASE = RunSpec("mini", "mini-base", "grpo", "none", None, 8, 0, "mini")
CLIPO = RunSpec("mini", "mini-base", "grpo", "infonce", 0.05, 8, 0, "mini")


def samples_for(run: RunSpec, correct: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-sample records: correct[bench] is [n_problems, k] booleans."""
    frames = []
    for bench, c in correct.items():
        n, k = c.shape
        frames.append(
            pd.DataFrame(
                {
                    "run_id": run.run_id,
                    "benchmark": bench,
                    "problem_id": np.repeat([f"{bench}-{i}" for i in range(n)], k),
                    "sample_id": np.tile(np.arange(k), n),
                    "correct": c.ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def bernoulli(rng, p, n, k=1):
    return rng.random((n, k)) < p


def test_bootstrap_means_matches_resampling_by_index():
    rng = np.random.default_rng(0)
    d = rng.integers(-1, 2, 400).astype(float)
    fast = stats.bootstrap_means(d, 20_000, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, len(d), size=(20_000, len(d)))
    slow = d[idx].mean(axis=1)
    assert abs(fast.mean() - d.mean()) < 2e-3
    assert fast.std() == pytest.approx(slow.std(), rel=0.03)
    assert fast.std() == pytest.approx(d.std() / math.sqrt(len(d)), rel=0.03)


def test_ci_covers_known_difference_and_excludes_zero():
    rng = np.random.default_rng(0)
    n = 3000
    base = {"Test": bernoulli(rng, 0.5, n)}
    var = {"Test": bernoulli(rng, 0.6, n)}
    table = stats.bootstrap_table(pd.concat([samples_for(BASE, base), samples_for(CLIPO, var)]), n_boot=4000)
    row = table[table["benchmark"] == "Test"].iloc[0]
    assert row["pair"].startswith("mini mini-base grpo+infonce τ=0.05 G=8 s0 vs grpo")
    assert row["ci_low"] < 10.0 < row["ci_high"]
    assert row["delta"] == pytest.approx(100 * (var["Test"].mean() - base["Test"].mean()))
    assert row["significant"] and row["ci_low"] > 0


def test_zero_difference_covers_zero_and_width_shrinks_with_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (200, 3200):
        shared = bernoulli(rng, 0.4, n, k=4)
        flips = rng.random((n, 4)) < 0.2  # the variant differs on some samples, with no net effect
        other = np.where(flips, bernoulli(rng, 0.4, n, k=4), shared)
        table = stats.bootstrap_table(
            pd.concat([samples_for(BASE, {"SYM": shared}), samples_for(CLIPO, {"SYM": other})]), n_boot=4000
        )
        row = table.iloc[0]
        assert row["ci_low"] < 0 < row["ci_high"] and not row["significant"]
        assert row["n_problems"] == n
        widths.append(row["ci_high"] - row["ci_low"])
    assert widths[1] < widths[0] / 3  # ~1/sqrt(16) = 1/4 expected


def test_averages_are_unweighted_means_resampled_jointly():
    rng = np.random.default_rng(2)
    names = benchmarks("mini")  # Test, Test-T1 (sampled, in no average), SYM, P1, P2 (M) and MC (G)
    groups = benchmark_groups("mini")
    base = {b: bernoulli(rng, 0.5, 300 + 100 * i) for i, b in enumerate(names)}
    var = {b: bernoulli(rng, 0.55, 300 + 100 * i) for i, b in enumerate(names)}
    table = stats.bootstrap_table(
        pd.concat([samples_for(BASE, base), samples_for(CLIPO, var)]), n_boot=2000
    ).set_index("benchmark")
    assert list(table.index) == [*names, "M-Avg.", "G-Avg.", "Avg."]
    assert groups["M-Avg."] == ["Test", "SYM", "P1", "P2"] and groups["Avg."] == [*groups["M-Avg."], "MC"]
    assert table.loc["Avg.", "delta"] == pytest.approx(table.loc[groups["Avg."], "delta"].mean())
    assert table.loc["M-Avg.", "delta"] == pytest.approx(table.loc[groups["M-Avg."], "delta"].mean())
    assert table.loc["G-Avg.", "delta"] == pytest.approx(table.loc["MC", "delta"])
    members = groups["Avg."]
    member_width = (table.loc[members, "ci_high"] - table.loc[members, "ci_low"]).mean()
    assert table.loc["Avg.", "ci_high"] - table.loc["Avg.", "ci_low"] < member_width
    assert table.loc["Avg.", "is_average"] and not table.loc["MC", "is_average"]


def test_pairs_only_same_problems_and_matching_runs():
    rng = np.random.default_rng(3)
    other_seed = RunSpec("mini", "mini-base", "grpo", "infonce", 0.05, 8, 1, "mini")  # no base at seed 1
    fixed = RunSpec("mini", "mini-base", "grpo", "infonce-fixed", 0.05, 8, 0, "mini")
    s = pd.concat(
        [
            samples_for(BASE, {"Test": bernoulli(rng, 0.5, 50)}),
            samples_for(CLIPO, {"Test": bernoulli(rng, 0.5, 40)}),  # answered only the first 40 problems
            samples_for(other_seed, {"Test": bernoulli(rng, 0.5, 50)}),
            samples_for(fixed, {"Test": bernoulli(rng, 0.5, 50)}),
        ]
    )
    table = stats.bootstrap_table(s, n_boot=500)
    assert set(table["pair"]) == {
        "mini mini-base grpo+infonce τ=0.05 G=8 s0 vs grpo",
        "mini mini-base grpo+infonce-fixed τ=0.05 G=8 s0 vs grpo+infonce",
    }
    assert (
        table.set_index("pair").loc["mini mini-base grpo+infonce τ=0.05 G=8 s0 vs grpo", "n_problems"] == 40
    )


def test_pooled_seeds_average_the_per_seed_differences():
    rng = np.random.default_rng(4)
    runs = []
    for seed in (0, 1):
        for spec in (BASE, CLIPO):
            s = RunSpec(
                spec.track, spec.model, spec.method, spec.clipo, spec.tau, spec.group_size, seed, "mini"
            )
            runs.append(samples_for(s, {"P1": bernoulli(rng, 0.5, 200)}))
    samples = pd.concat(runs)
    single = stats.bootstrap_table(samples, n_boot=500)
    pooled = stats.bootstrap_table(samples, n_boot=500, pool_seeds=True)
    assert len(single) == 2 and len(pooled) == 1
    assert pooled.iloc[0]["seeds"] == "0,1"
    assert pooled.iloc[0]["delta"] == pytest.approx(single["delta"].mean())


def test_bootstrap_is_fast_for_track_i_sizes():
    rng = np.random.default_rng(5)
    d = rng.integers(-1, 2, 5000).astype(float)
    t = time.perf_counter()
    stats.bootstrap_means(d, 10_000, rng)
    assert time.perf_counter() - t < 0.5


def test_binomial_se_bounds():
    # AIME: 30 problems x 16 samples at 20%: conservative sqrt(.16/30), optimistic sqrt(.16/480)
    cons, opt = stats.binomial_se(20.0, 30, 16)
    assert cons == pytest.approx(100 * math.sqrt(0.16 / 30))
    assert opt == pytest.approx(100 * math.sqrt(0.16 / 480))
    # GSM8K: 1319 x 1 at 88%: both bounds coincide
    assert stats.binomial_se(88.0, 1319, 1) == pytest.approx((100 * math.sqrt(0.88 * 0.12 / 1319),) * 2)


def paper_like() -> pd.DataFrame:
    """Track II GRPO vs GRPO+CLIPO on all six benchmarks, plus a τ-sweep run with no base at its seed."""
    sizes = {"Math": 500, "Math_S": 279, "Math_H": 279, "AMC": 83, "AIME": 30, "AIME25": 30}
    grpo = {"Math": 76.0, "Math_S": 65.0, "Math_H": 38.0, "AMC": 47.0, "AIME": 18.0, "AIME25": 10.0}
    clipo = {"Math": 77.0, "Math_S": 67.0, "Math_H": 39.0, "AMC": 49.0, "AIME": 18.0, "AIME25": 10.0}
    rows = []
    for variant, tau, seed, values in (
        ("none", math.nan, 0, grpo),
        ("infonce", 0.02, 0, clipo),
        ("infonce", 0.05, 1, clipo),
    ):
        for b, v in values.items():
            rows.append(
                {
                    "source": "paper",
                    "track": "II",
                    "model": "qwen2.5-7b-instruct",
                    "method": "grpo",
                    "clipo": variant,
                    "tau": tau,
                    "group_size": 16,
                    "seed": seed,
                    "benchmark": b,
                    "score": v,
                    "n_problems": sizes[b],
                    "n_samples": 16,
                }
            )
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def test_se_table_hand_computed():
    table = stats.se_table(paper_like()).set_index("benchmark")
    assert set(table["pair"]) == {"II qwen2.5-7b-instruct grpo+infonce τ=0.02 G=16 s0 vs grpo"}
    se = lambda p, n: 100 * math.sqrt(p * (1 - p) / n)  # noqa: E731
    math_se = math.hypot(se(0.77, 500), se(0.76, 500))
    assert table.loc["Math", "delta"] == pytest.approx(1.0)
    assert table.loc["Math", "se_delta"] == pytest.approx(math_se)
    assert table.loc["Math", "se_delta_optimistic"] == pytest.approx(math_se / 4)
    assert not table.loc["Math", "exceeds_2se"] and table.loc["Math", "exceeds_2se_optimistic"] == (
        1 > 2 * math_se / 4
    )
    # C-Avg.: mean of AMC, AIME, AIME25; its SE is the root-sum-square of the members' SEs / 3
    c_var = [se(0.49, 83), se(0.18, 30), se(0.10, 30)]
    c_base = [se(0.47, 83), se(0.18, 30), se(0.10, 30)]
    expected = math.hypot(math.sqrt(sum(x * x for x in c_var)) / 3, math.sqrt(sum(x * x for x in c_base)) / 3)
    assert table.loc["C-Avg.", "delta"] == pytest.approx(2 / 3)
    assert table.loc["C-Avg.", "se_delta"] == pytest.approx(expected)
    assert list(table.index[-3:]) == ["M-Avg.", "C-Avg.", "Avg."]
    assert set(table["printed_in"]) == {"2,14"}  # Table 2's and Table 14's GRPO+CLIPO Δ rows
    summary = stats.summarize_se(stats.se_table(paper_like()))
    assert summary["printed"]["benchmark"]["n"] == 6 and summary["printed"]["average"]["n"] == 3
    assert summary["all"]["benchmark"]["favourable"] == 4 and summary["all"]["benchmark"]["exceeds_2se"] == 0


def test_se_table_fixed_head_against_learned_head():
    df = paper_like()
    fixed = df[(df["clipo"] == "infonce") & (df["seed"] == 0)].assign(clipo="infonce-fixed", score=70.0)
    table = stats.se_table(pd.concat([df, fixed]))
    assert "II qwen2.5-7b-instruct grpo+infonce-fixed τ=0.02 G=16 s0 vs grpo+infonce" in set(table["pair"])


def test_conflicting_duplicate_scores_are_an_error():
    df = paper_like()
    clash = df.iloc[[0]].assign(score=1.0)
    with pytest.raises(stats.SchemaError, match="conflicting scores.*Math"):
        stats.se_table(pd.concat([df, clash]))


def test_significance_command_writes_tables(tmp_path):
    rng = np.random.default_rng(6)
    rs = tmp_path / "mini"
    for spec, p in ((BASE, 0.5), (CLIPO, 0.6)):
        s = samples_for(spec, {b: bernoulli(rng, p, 100) for b in benchmarks("mini")})
        (rs / "eval" / spec.run_id).mkdir(parents=True)
        s.to_parquet(rs / "eval" / spec.run_id / "samples.parquet")
        per = s.groupby("benchmark")["correct"].mean() * 100
        write_scores(
            pd.DataFrame(
                [
                    {
                        "source": "mini",
                        "track": "mini",
                        "model": spec.model,
                        "method": spec.method,
                        "clipo": spec.clipo,
                        "tau": spec.tau,
                        "group_size": 8,
                        "seed": 0,
                        "benchmark": b,
                        "score": v,
                        "n_problems": 100,
                        "n_samples": 1,
                    }
                    for b, v in per.items()
                ]
            ),
            rs / "eval" / spec.run_id / "scores.csv",
        )
    paper = tmp_path / "paper.csv"
    write_scores(paper_like(), paper)
    t = time.perf_counter()
    assert stats.run_significance_command(rs, rs / "significance", paper=paper) == 0
    assert time.perf_counter() - t < 10
    out = {p.name for p in (rs / "significance").iterdir()}
    assert out == {f"{name}.{ext}" for name in ("bootstrap", "process", "se_mini", "se_paper")
                   for ext in ("csv", "md", "html")}
    boot = pd.read_csv(rs / "significance" / "bootstrap.csv")
    assert len(boot) == len(benchmarks("mini")) + 3
    assert "| Comparison | Benchmark |" in (rs / "significance" / "bootstrap.md").read_text()
    assert "<th>Comparison</th>" in (rs / "significance" / "bootstrap.html").read_text()
    se_mini = pd.read_csv(rs / "significance" / "se_mini.csv")
    # the bootstrap and the SE table agree on every Δ
    assert np.allclose(
        boot.set_index("benchmark")["delta"], se_mini.set_index("benchmark")["delta"].loc[boot["benchmark"]]
    )


def test_significance_without_samples_writes_an_empty_bootstrap_table(tmp_path):
    write_scores(paper_like(), tmp_path / "paper" / "scores.csv")
    assert stats.run_significance_command(tmp_path / "paper", tmp_path / "sig", paper=None) == 0
    assert pd.read_csv(tmp_path / "sig" / "bootstrap.csv").empty
    assert "No comparison" in (tmp_path / "sig" / "bootstrap.md").read_text()
    assert len(pd.read_csv(tmp_path / "sig" / "se_paper.csv")) == 9


def test_pooled_seeds_interval_covers_seed_to_seed_variation():
    """Three seeds that agree give a narrow interval; three that disagree (same mean Δ) a wide one that
    reaches 0, although each seed's Δ alone would be resolved by its 2000 problems."""
    rng = np.random.default_rng(4)
    n = 2000

    def seed_diffs(gains):  # per-problem differences (0 or 1) whose mean is each seed's gain
        return np.stack([(rng.random(n) < g).astype(float) for g in gains])

    agree = stats.bootstrap_ci({"Test": seed_diffs([0.06, 0.06, 0.06])}, "mini", n_boot=4000)
    disagree = stats.bootstrap_ci({"Test": seed_diffs([0.18, 0.0, 0.0])}, "mini", n_boot=4000)
    width = {name: float(t["ci_high"].iloc[0] - t["ci_low"].iloc[0]) for name, t in
             (("agree", agree), ("disagree", disagree))}
    assert agree["delta"].iloc[0] == pytest.approx(6, abs=1) and disagree["delta"].iloc[0] == pytest.approx(6, abs=1)
    assert width["disagree"] > 3 * width["agree"]
    assert agree["significant"].iloc[0] and disagree["ci_low"].iloc[0] <= 0.5
