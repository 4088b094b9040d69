"""`clipo report` assembles what exists, lists what is missing, and compares shared cells with the paper."""

import math

import numpy as np
import pandas as pd

from clipo.cli import main as clipo_main
from clipo.data.registry import benchmarks
from clipo.scores import SCORE_COLUMNS, write_scores

QWEN7B = "qwen2.5-7b-instruct"
SIZES = {"Math": 500, "Math_S": 279, "Math_H": 279, "AMC": 83, "AIME": 30, "AIME25": 30}
GRPO = {"Math": 76.46, "Math_S": 64.83, "Math_H": 37.86, "AMC": 46.84, "AIME": 17.92, "AIME25": 9.58}
CLIPO = {"Math": 77.49, "Math_S": 67.21, "Math_H": 38.97, "AMC": 49.17, "AIME": 18.13, "AIME25": 10.63}


def rows(source, clipo, tau, values, track="II", model=QWEN7B, group_size=16, seed=0, sizes=SIZES, k=16):
    return [
        {
            "source": source,
            "track": track,
            "model": model,
            "method": "grpo",
            "clipo": clipo,
            "tau": tau,
            "group_size": group_size,
            "seed": seed,
            "benchmark": b,
            "score": v,
            "n_problems": sizes[b],
            "n_samples": k,
        }
        for b, v in values.items()
    ]


def write_paper(path):
    df = pd.DataFrame(
        rows("paper", "none", math.nan, GRPO) + rows("paper", "infonce", 0.02, CLIPO),
        columns=list(SCORE_COLUMNS),
    )
    write_scores(df, path)
    return path


def test_report_with_partial_inputs(tmp_path):
    paper = write_paper(tmp_path / "paper.csv")
    run_set = tmp_path / "empty"
    run_set.mkdir()
    out = run_set / "report.md"
    assert clipo_main(["report", "--results", str(run_set), "--out", str(out), "--paper", str(paper)]) == 0
    text = out.read_text()
    assert "**Missing inputs**" in text
    for what in (
        "no scores.csv under",
        "tables: nothing under",
        "Figure 3: no",
        "Figure 4: no",
        "Figure 5: no",
        "no bootstrap CIs",
    ):
        assert what in text
    # the paper's SEs are there, with the write-up computed from them: Table 2/14 GRPO+CLIPO vs GRPO
    assert (
        "The paper prints 6 per-benchmark Δ and 3 Δ of averages (M/G/C-Avg., Avg.) for 1 comparisons" in text
    )
    assert "**0 of 6** per-benchmark Δ and **0 of 3** average Δ exceed two standard errors" in text
    assert (
        "+1.51 ± 2.11 on M-Avg. (II qwen2.5-7b-instruct grpo+infonce τ=0.02 G=16 s0 vs grpo, Tables 2, 14)"
        in text
    )
    assert "| II qwen2.5-7b-instruct grpo+infonce τ=0.02 G=16 s0 vs grpo | 2,14 | Math | +1.03 |" in text
    assert "_Needs both the run set's and the paper's scores._" in text


def test_report_side_by_side_when_cells_overlap(tmp_path):
    paper = write_paper(tmp_path / "paper.csv")
    rs = tmp_path / "gpu"
    for seed, shift in ((0, 0.5), (1, 1.5)):  # two seeds of the base run: reproduced = mean = paper + 1.0
        write_scores(
            pd.DataFrame(rows("gpu", "none", math.nan, {b: v + shift for b, v in GRPO.items()}, seed=seed)),
            rs / "eval" / f"grpo{seed}" / "scores.csv",
        )
    (rs / "tables").mkdir(parents=True)
    (rs / "tables" / "table2.md").write_text(
        "**Table 2** | our table\n\n| Methods | Math |\n|---|---:|\n| GRPO | 1 |\n"
    )
    (rs / "tables" / "table10.md").write_text("**Table 10** | later\n")
    (rs / "figures").mkdir()
    (rs / "figures" / "fig5_pair_cos.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = rs / "report.md"
    assert clipo_main(["report", "--results", str(rs), "--out", str(out), "--paper", str(paper)]) == 0
    text = out.read_text()
    assert text.index("**Table 2** | our table") < text.index("**Table 10**")  # natural order
    assert "![Figure 5](figures/fig5_pair_cos.png)" in text and "Figure 4: no" in text
    section = text[text.index("## Reproduced vs paper") :]
    assert "9 cell(s)" in section and "mean |reproduced − paper| = 1.00" in section
    assert "| II | qwen2.5-7b-instruct | grpo | none |  | 16 | Math | 76.46 | 77.46 | 2 | +1.00 |" in section
    assert "| Avg. | 42.25 | 43.25 | 2 | +1.00 |" in section  # averages compared too (Table 2: 42.25)


def test_report_mini_run_set_says_no_overlap(tmp_path):
    paper = write_paper(tmp_path / "paper.csv")
    rs = tmp_path / "mini"
    rng = np.random.default_rng(0)
    names = benchmarks("mini")
    sizes = dict.fromkeys(names, 50)
    for clipo, tau in (("none", None), ("infonce", 0.05)):
        run_id = f"mini_mini-base_grpo_{clipo}_tau{'-' if tau is None else tau}_g8_s0_mini"
        correct = {b: rng.random(50) < 0.5 for b in names}
        (rs / "eval" / run_id).mkdir(parents=True)
        pd.concat(
            [
                pd.DataFrame(
                    {
                        "run_id": run_id,
                        "benchmark": b,
                        "problem_id": np.arange(50),
                        "sample_id": 0,
                        "correct": c,
                    }
                )
                for b, c in correct.items()
            ]
        ).to_parquet(rs / "eval" / run_id / "samples.parquet")
        write_scores(
            pd.DataFrame(
                rows(
                    "mini",
                    clipo,
                    math.nan if tau is None else tau,
                    {b: 100 * c.mean() for b, c in correct.items()},
                    track="mini",
                    model="mini-base",
                    group_size=8,
                    sizes=sizes,
                    k=1,
                )
            ),
            rs / "eval" / run_id / "scores.csv",
        )
    out = rs / "report.md"
    assert clipo_main(["report", "--results", str(rs), "--out", str(out), "--paper", str(paper)]) == 0
    text = out.read_text()
    assert (
        "No overlap: the run set shares no cell with the paper — its track(s) mini are not the paper's (II)"
        in text
    )
    assert "1 comparison(s) have per-sample records for both runs" in text
    assert "| mini mini-base grpo+infonce τ=0.05 G=8 s0 vs grpo | Avg. | 250 |" in text
    assert "### This run set (mini): binomial standard errors" in text


def test_bootstrap_paragraph_states_expected_chance_hits_and_pooled_seeds():
    import pandas as pd

    from clipo.analysis.report import bootstrap_paragraph

    rows = [{"pair": p, "seeds": seeds, "benchmark": b, "is_average": b == "Avg.", "delta": 1.0,
             "ci_low": -1.0, "ci_high": 3.0, "significant": False}
            for p, seeds in (("a s0", "0"), ("a s0,1,2", "0,1,2"))
            for b in ("Test", "Test-T1", "SYM", "P1", "P2", "MC", "Avg.")]
    text = bootstrap_paragraph(pd.DataFrame(rows))
    assert "0 of 12** per-benchmark" in text and "≈0.6 of the 12 per-benchmark" in text
    assert "Seeds pooled" in text and "Test-T1 +1.00 [-1.00, +3.00] (a s0,1,2)" in text
