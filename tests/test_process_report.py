"""The report's answer to "does CLIPO reduce lucky answers on the mini track?", the base model's lucky
share, and their way into the README block."""

from __future__ import annotations

import pandas as pd

from clipo.analysis import process
from clipo.analysis.report import build_report, lucky_answer_points, rewrite_readme, readme_block
from clipo.evaluate import aggregate, with_process_metrics
from clipo.runs import RunSpec
from clipo.scores import LUCKY_SHARE, write_scores
from test_process_stats import write_run_set


def write_scores_from_samples(root, samples: dict[str, pd.DataFrame]) -> None:
    for run_id, df in samples.items():
        spec = RunSpec.parse(run_id)
        table = with_process_metrics(aggregate(df, spec, "mini"), df)
        write_scores(table, root / "eval" / run_id / "scores.csv")


def _summary(text: str) -> str:
    return text[text.index("## Summary"):text.index("## Tables")]


def test_summary_answers_from_the_interval_and_states_the_base_models_lucky_share(tmp_path):
    rs = tmp_path / "mini"
    samples = write_run_set(rs, lucky_clipo=0.1)
    write_scores_from_samples(rs, samples)
    rep = build_report(rs, rs / "report.md", paper=None, n_boot=1000)
    summary = _summary(rep.markdown)
    base = samples["mini_mini-base_base_none_tau-_g8_s0_mini"]

    def lucky(bench):
        d = base[base.benchmark == bench]
        return 100 * (d.process == "lucky").sum() / d.correct.sum()

    assert (f"- Base Model: {lucky('Test-T1'):.2f}% of its correct sampled Test answers (Test-T1, 3 per problem) "
            f"and {lucky('Test'):.2f}% of its correct greedy Test answers are lucky") in summary
    assert "- Lucky share of correct answers (%), Test / Test-T1 (mean over seeds): Base Model " in summary
    assert "- Sound Pass@1 (%), Test / Test-T1 (mean over seeds): " in summary
    assert "- Does CLIPO reduce lucky answers on the mini track? **Yes**: the interval of Δ lucky share lies below 0 " \
           "(GRPO+InfoNCE seeds 0,1,2 minus GRPO; lucky share of correct answers, Avg. Δ -" in summary
    # the numbers quoted are the significance table's
    table = process.process_table(process.load_process_samples(rs)[0], n_boot=1000)
    avg = table[(table.metric == LUCKY_SHARE) & (table.benchmark == "Avg.") & (table.seeds == "0,1,2")].iloc[0]
    assert f"Avg. Δ {process.interval(avg)} points" in summary
    # the report's section with every process Δ, and the README block quoting the same sentence
    assert "### Sound and lucky answers: CLIPO minus its base method" in rep.markdown
    readme = rewrite_readme("x\n<!-- results:begin -->\nold\n<!-- results:end -->\n", readme_block(rep.summary, rs))
    assert "Does CLIPO reduce lucky answers on the mini track? **Yes**" in readme


def test_the_answer_is_not_resolved_or_no_as_the_interval_says():
    rows = [{"pair": "p", "track": "mini", "model": "mini-base", "method": "grpo", "clipo": "infonce", "tau": 0.05,
             "group_size": 8, "seeds": "0,1,2", "reference": "none", "metric": metric, "benchmark": "Avg.",
             "is_average": True, "n_problems": 5000, "value": 10.0, "value_reference": 9.0, "delta": 1.0,
             "ci_low": -1.0, "ci_high": 2.0, "significant": False}
            for metric in (LUCKY_SHARE, "sound_pass@1")]
    for low, word in ((-1.0, "**Not resolved**: the interval of Δ lucky share includes 0"),
                      (0.5, "**No**, it raises them: the interval of Δ lucky share lies above 0")):
        table = pd.DataFrame([r | {"ci_low": low, "ci_high": low + 3.0, "significant": low > 0} for r in rows])
        (point,) = lucky_answer_points(table)
        assert word in point and f"Avg. Δ +1.00 [{low:+.2f}, {low + 3:+.2f}] points" in point
    # single-seed comparisons are not the headline when a pooled one exists
    table = pd.DataFrame(rows + [r | {"seeds": "0", "clipo": "supcon"} for r in rows])
    assert len(lucky_answer_points(table)) == 1


def test_runs_without_process_rows_add_no_process_lines(tmp_path):
    rs = tmp_path / "mini"
    samples = write_run_set(rs, lucky_clipo=0.1)
    for run_id, df in samples.items():
        write_scores(aggregate(df, RunSpec.parse(run_id), "mini"), rs / "eval" / run_id / "scores.csv")
        df.drop(columns="process").to_parquet(rs / "eval" / run_id / "samples.parquet")
    summary = _summary(build_report(rs, rs / "report.md", paper=None, n_boot=200).markdown)
    assert "lucky" not in summary.lower() and "Sound Pass@1" not in summary
