"""`clipo report` assembles what exists, lists what is missing, and compares shared cells with the paper."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from clipo.analysis.report import build_report
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
    assert "+1.51 ± 2.11 on M-Avg. (GRPO+InfoNCE s0, Tables 2, 14)" in text
    assert "_Needs both the run set's and the paper's scores._" in text
    # the paper-SE analysis has its own section, and its headline is in the summary
    section = text[text.index("## The paper's Δ against their standard errors"):]
    assert "The paper prints 6 per-benchmark Δ" in section
    # only the Δ beyond 2 SE by either error are listed there; the full table is its own file
    assert "| GRPO+InfoNCE s0 | 2,14 | Avg. | +1.35 | 2.68 |  | 0.67 | ✓ |" in section
    assert "| Math | +1.03 |" not in section
    summary = text[text.index("## Summary"):text.index("## Tables")]
    assert ("The paper's own printed Δ: 0 of 6 per-benchmark Δ and 0 of 3 average Δ exceed 2 binomial "
            "standard errors (≈0 of the 9 would by chance alone)") in summary
    assert "_No scores of the run set read, so nothing is known about its runs._" in text


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
    page = (rs / "report.html").read_text()  # self-contained: the viewer opens it from a data URI
    assert '<img alt="Figure 5" src="data:image/png;base64,iVBORw0KGgo=">' in page
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
        # training curves: GRPO validates at steps 0, 2, 4; the CLIPO run's curve is not summarised
        metrics = [{"step": 0, "val/reward": 0.25}] + [
            {"step": k, "reward/outcome": 0.1 * (k + 1)} | ({"val/reward": 0.25 + 0.025 * k} if k % 2 == 0 else {})
            for k in range(1, 5)]
        (rs / "runs" / run_id).mkdir(parents=True)
        (rs / "runs" / run_id / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    out = rs / "report.md"
    assert clipo_main(["report", "--results", str(rs), "--out", str(out), "--paper", str(paper)]) == 0
    text = out.read_text()
    assert ("- GRPO (s0): validation reward (`val/reward`) 0.25 at step 0 → 0.35 at step 4; training reward 0.25 "
            "over steps 1-2 → 0.45 over steps 3-4.") in text
    assert "GRPO + CLIPO" not in text[text.index("## Summary"):text.index("## Tables")]
    assert (
        "No overlap: the run set shares no cell with the paper — its track(s) mini are not the paper's (II)"
        in text
    )
    assert "1 comparison(s) have per-sample records for both runs" in text
    assert "| GRPO+InfoNCE s0 | Avg. | 250 |" in text
    assert "### This run set (mini): binomial standard errors" in text

    # the header: the run set and its caveats before anything else
    assert text.index("## The run set") < text.index("## Summary") < text.index("## Tables")
    head = text[text.index("## The run set"):text.index("## Summary")]
    assert "**Not the paper's experiment.**" in head
    assert "- **Runs** (2): GRPO (s0); GRPO+InfoNCE (s0)" in head
    assert "Test 50 × 1, Test-T1 50 × 1, SYM 50 × 1" in head
    assert "no `runs/<run_id>/run.json` found" in head

    # every Δ with its interval, in the summary and in the tables' layout
    from clipo.analysis.stats import significance_tables

    avg = significance_tables(rs, paper)["bootstrap"].set_index("benchmark").loc["Avg."]
    interval = f"{avg['delta']:+.2f} [{avg['ci_low']:+.2f}, {avg['ci_high']:+.2f}]"
    summary = text[text.index("## Summary"):text.index("## Tables")]
    assert ("- 2 runs on track mini (50 problems per benchmark): synthetic arithmetic on CPU, not the paper's "
            "experiment.") in summary
    assert f"Avg. Δ (CLIPO minus its base method, 95% CI): GRPO+InfoNCE s0 {interval}." in summary
    assert "of 6 per-benchmark Δ (≈0.3 expected by chance) and" in summary
    grid = text[text.index("### Every Δ with its 95% interval"):text.index("## Figures")]
    assert "| Comparison | Test | Test-T1 | SYM | P1 | P2 | MC | M-Avg. | G-Avg. | Avg. |" in grid
    assert grid.count(interval) == 1

    # the HTML twin and the summary block beside report.md
    assert "<h2>The run set</h2>" in (rs / "report.html").read_text()
    assert (rs / "summary.md").read_text() == summary.removeprefix("## Summary\n\n").rstrip("\n") + "\n"


def test_bootstrap_paragraph_states_expected_chance_hits_and_pooled_seeds():
    import pandas as pd

    from clipo.analysis.report import bootstrap_paragraph

    rows = [{"pair": "full name", "track": "mini", "model": "mini-base", "method": "grpo", "clipo": "infonce",
             "tau": 0.05, "group_size": 8, "seeds": seeds, "reference": "none", "benchmark": b,
             "is_average": b == "Avg.", "delta": 1.0, "ci_low": -1.0, "ci_high": 3.0, "significant": False}
            for seeds in ("0", "0,1,2")
            for b in ("Test", "Test-T1", "SYM", "P1", "P2", "MC", "Avg.")]
    text = bootstrap_paragraph(pd.DataFrame(rows))
    assert "0 of 12** per-benchmark" in text and "≈0.6 of the 12 per-benchmark" in text
    assert "Seeds pooled" in text and "Test-T1 +1.00 [-1.00, +3.00] (GRPO+InfoNCE seeds 0,1,2)" in text


def _boot_rows(label_cells, deltas):
    """Bootstrap-table rows: one comparison per (clipo, tau, seeds, reference), Δ and CI per benchmark."""
    return pd.DataFrame([
        {"pair": "full", "track": "mini", "model": "mini-base", "method": "grpo", "clipo": clipo, "tau": tau,
         "group_size": 8, "seeds": seeds, "reference": ref, "benchmark": b, "is_average": b == "Avg.",
         "n_problems": 100, "delta": d, "ci_low": lo, "ci_high": hi, "significant": lo > 0 or hi < 0}
        for (clipo, tau, seeds, ref) in label_cells for b, (d, lo, hi) in deltas.items()])


def test_summary_names_significant_deltas_below_zero_with_short_labels():
    from clipo.analysis.report import delta_points

    cells = [("infonce", 0.05, "0,1,2", "none"), ("infonce", 0.2, "0", "none"),
             ("infonce-fixed", 0.05, "0", "infonce")]
    points = delta_points(_boot_rows(cells, {"P1": (-2.1, -3.5, -0.8), "Avg.": (0.4, -0.2, 1.0)}))
    assert points[0] == ("Avg. Δ (CLIPO minus its base method, 95% CI): GRPO+InfoNCE τ=0.05 seeds 0,1,2 "
                         "+0.40 [-0.20, +1.00]; GRPO+InfoNCE τ=0.2 s0 +0.40 [-0.20, +1.00]; "
                         "GRPO+InfoNCE-fixed τ=0.05 s0 vs GRPO+InfoNCE +0.40 [-0.20, +1.00].")
    assert points[1] == ("Intervals excluding 0: 3 of 3 per-benchmark Δ (≈0.1 expected by chance) and 0 of 3 "
                         "average Δ (≈0.1 by chance).")
    assert points[2].startswith("Significantly below 0: GRPO+InfoNCE τ=0.05 seeds 0,1,2 on P1 -2.10 [-3.50, -0.80];")
    assert not any(p.startswith("Significantly above 0") for p in points)


def test_readme_results_block_is_rewritten_from_the_summary(tmp_path):
    from clipo.analysis.report import README_BEGIN, README_END

    rs = tmp_path / "tiny"
    (rs / "eval").mkdir(parents=True)
    write_scores(pd.DataFrame(rows("tiny", "none", math.nan, GRPO)), rs / "eval" / "grpo" / "scores.csv")
    write_scores(pd.DataFrame(rows("tiny", "infonce", 0.02, CLIPO)), rs / "eval" / "clipo" / "scores.csv")
    assert clipo_main(["report", "--results", str(rs), "--out", str(rs / "report.md"), "--paper", "none"]) == 0
    summary = (rs / "summary.md").read_text()
    assert "- Avg. Pass@1 (mean over seeds): GRPO 42.25; GRPO+InfoNCE 43.60." in summary

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nBefore.\n\n{README_BEGIN}\nold numbers\n{README_END}\n\nAfter.\n")
    assert clipo_main(["readme-results", "--results", str(rs), "--readme", str(readme)]) == 0
    text = readme.read_text()
    block = text[text.index(README_BEGIN) + len(README_BEGIN):text.index(README_END)]
    assert "old numbers" not in text and text.startswith("# Title\n\nBefore.\n\n") and text.endswith("\n\nAfter.\n")
    assert f"What the numbers of `{rs}` say" in block and summary.strip() in block
    assert clipo_main(["readme-results", "--results", str(rs), "--readme", str(readme)]) == 0
    assert readme.read_text() == text  # idempotent

    readme.write_text("no markers\n")
    assert clipo_main(["readme-results", "--results", str(rs), "--readme", str(readme)]) == 2


def test_the_readme_has_one_results_block():
    from pathlib import Path

    from clipo.analysis.report import README_BEGIN, README_END

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert text.count(README_BEGIN) == 1 and text.count(README_END) == 1
    assert text.index(README_BEGIN) < text.index(README_END)


def test_score_points_compare_each_method_with_its_own_base_model():
    from clipo.analysis.report import score_points

    base = {b: v - 1.0 for b, v in GRPO.items()} | {"AMC": GRPO["AMC"] - 5.0}
    frames = []
    for model, shift in ((QWEN7B, 0.0), ("llama3.1-8b-instruct", -10.0)):
        for method, values in (("base", base), ("grpo", GRPO)):
            cells = pd.DataFrame(rows("gpu", "none", math.nan, {b: v + shift for b, v in values.items()},
                                      model=model))
            frames.append(cells.assign(method=method))
    points = score_points(pd.concat(frames, ignore_index=True))
    assert points[0].startswith("Avg. Pass@1 (mean over seeds): llama3.1-8b-instruct Base Model ")
    assert ("llama3.1-8b-instruct GRPO vs the base model: largest change on AMC, 31.84 → 36.84 (+5.00); "
            "Avg. 30.58 → 32.25.") in points
    assert f"{QWEN7B} GRPO vs the base model: largest change on AMC, 41.84 → 46.84 (+5.00);" in points[2]


def _verl_run_json(run_id, train_file, total_training_steps=None):
    """run.json as clipo.verl.main writes it: verl's whole resolved config (the keys the report needs)."""
    return {
        "backend": "verl", "run_id": run_id, "command": ["python", "-m", "clipo.verl.main", "..."],
        "config": {
            "data": {"train_files": [str(train_file)], "train_batch_size": 128, "max_prompt_length": 512},
            "actor_rollout_ref": {"rollout": {"n": 16, "name": "sglang"}, "actor": {"ppo_mini_batch_size": 128}},
            "trainer": {"total_epochs": 9, "total_training_steps": total_training_steps, "critic_warmup": 58},
            "clipo": {"enable": "infonce" in run_id, "out_dir": f"results/x/runs/{run_id}"},
        },
    }


def _verl_run_set(tmp_path, summary_steps):
    rs = tmp_path / "gpu"
    train_file = tmp_path / "math_train.parquet"
    pd.DataFrame({"prompt": ["p"] * 7500}).to_parquet(train_file)
    for clipo, tau in (("none", math.nan), ("infonce", 0.02)):
        run_id = f"II_{QWEN7B}_grpo_{clipo}_tau{'-' if clipo == 'none' else tau}_g16_s0_verl"
        write_scores(pd.DataFrame(rows("II", clipo, tau, CLIPO if clipo != "none" else GRPO)),
                     rs / "eval" / run_id / "scores.csv")
        (rs / "runs" / run_id).mkdir(parents=True)
        (rs / "runs" / run_id / "run.json").write_text(json.dumps(_verl_run_json(run_id, train_file)))
        if summary_steps:
            (rs / "runs" / run_id / "summary.json").write_text(json.dumps({"steps": summary_steps}))
    return rs


def test_report_of_a_verl_run_set_states_steps_prompts_and_rollouts(tmp_path):
    rs = _verl_run_set(tmp_path, summary_steps=522)
    text = build_report(rs, rs / "report.md", paper=None).markdown
    training = next(line for line in text.splitlines() if line.startswith("- **Training**"))
    assert training.startswith("- **Training**: 522 steps per run, 128 prompts × 16 rollouts per step; ")
    assert "training problems: 7,500 (`" in training and "?" not in training
    assert "- 2 runs on track II (522 training steps, 30 / 83 / 279 / 500 problems per benchmark)" in text


def test_report_of_an_unfinished_verl_run_set_states_its_epochs(tmp_path):
    rs = _verl_run_set(tmp_path, summary_steps=None)  # verl counts epochs; summary.json comes at the end
    text = build_report(rs, rs / "report.md", paper=None).markdown
    assert "- **Training**: 9 epochs per run, 128 prompts × 16 rollouts per step; " in text
    assert "(9 epochs of training, " in text


def test_run_json_of_either_backend_reads_as_one_view(tmp_path):
    from clipo import records
    from clipo.errors import SchemaError

    verl = tmp_path / "verl" / "run.json"
    records.write_json(verl, _verl_run_json("II_x_grpo_none_tau-_g16_s0_verl", "math.parquet", total_training_steps=40))
    r = records.read_run(verl)
    assert (r.backend, r.steps, r.epochs, r.prompts_per_step, r.rollouts_per_prompt, r.train_files) == (
        "verl", 40, 9, 128, 16, ("math.parquet",))
    mini = tmp_path / "mini" / "run.json"
    records.write_json(mini, {"config": {"steps": 10, "train_batch_size": 16, "group_size": 8, "train_file": "t.parquet"},
                              "derived": {"policy_parameters": 1_100_000}})
    r = records.read_run(mini)
    assert (r.backend, r.steps, r.epochs, r.prompts_per_step, r.rollouts_per_prompt, r.policy_parameters) == (
        "mini", 10, None, 16, 8, 1_100_000)
    bad = _verl_run_json("x", "math.parquet")
    del bad["config"]["actor_rollout_ref"]["rollout"]["n"]
    records.write_json(verl, bad)
    with pytest.raises(SchemaError, match=r"verl/run.json: no config.actor_rollout_ref.rollout.n"):
        records.read_run(verl)


def test_the_report_description_page_states_the_tracks_steps_where_the_config_leaves_them():
    """workflow/report/workflow.rst sees only the config; common.smk puts vocab.default_steps_text there."""
    from pathlib import Path

    import jinja2
    import yaml

    from clipo.analysis import vocab

    repo = Path(__file__).resolve().parents[1]
    assert 'config["_default_steps"] = default_steps_text(' in (repo / "workflow/rules/common.smk").read_text()
    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["train"]["steps"], cfg["_default_steps"] = None, vocab.default_steps_text(["mini", "I", "mini"])
    page = jinja2.Environment().from_string((repo / "workflow/report/workflow.rst").read_text())
    text = page.render(snakemake=type("Snakemake", (), {"config": cfg}))
    assert "training steps per run: 84 (6 epochs) (track I); 10 (track mini); train batch size" in text
    cfg["train"]["steps"] = 3
    assert "training steps per run: 3; train batch size" in page.render(snakemake=type("S", (), {"config": cfg}))
