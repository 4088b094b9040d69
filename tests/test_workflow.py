"""The Snakemake workflow: config validation, the DAGs of the shipped configs, lint, regeneration, resume.

Snakemake runs in a subprocess inside a temporary working directory (outputs never land in the
checkout). Fast tests use dry runs and `--touch`-made fixture states; tests marked slow run the
reduced workflow (.test/tiny) for real.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from workflow_helpers import (REPO, TINY, TINY_RUNS, complete_state, dry_run, fake_completed_run, jobs, metrics,
                              snakemake, write_config, write_evaluation)

from clipo.analysis.paper_tables import required_runs, runs_per_table
from clipo.runs import RunSpec

CONFIGS = [REPO / "configs" / "paper.yaml", REPO / "configs" / "mini-full.yaml", TINY]


def trained_run_ids(job_list) -> list[str]:
    return [Path(out).parent.name for rule, outs in job_list if rule.startswith("train_") for out in outs]


# ------------------------------------------------------------------------------------------------
# Config: one clear error naming the key
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"train.stepz": 3}, "config key train: Additional properties are not allowed ('stepz' was unexpected)"),
    ({"evaluate.limit": 0}, "config key evaluate.limit: 0 is less than the minimum of 1"),
    ({"grid": [{"track": ["mini"], "method": ["grpo"], "clipo": ["infonse"]}]},
     "config grid[0]: run clipo='infonse'; valid: none, infonce, supcon, softnn, infonce-fixed"),
    ({"grid": [{"track": ["mini"], "method": ["grpo"], "taus": [0.1]}]},
     "config key grid.0: Additional properties are not allowed ('taus' was unexpected)"),
    ({"run_set": "paper"}, "config key run_set:"),
    # JSON Schema counts 2.0 as an integer; the jobs would fail after data and SFT ran (issue 22, item 9)
    ({"train.steps": 2.0}, "config key train.steps: 2.0 is not of type 'integer', 'null'"),
    ({"synth.n_train": 16.0}, "config key synth.n_train: 16.0 is not of type 'integer', 'null'"),
    ({"grid": [{"track": ["mini"], "method": ["base"], "seed": [1.0]}]},
     "config key grid.0.seed.0: 1.0 is not of type 'integer'"),
    ({"resources.sft.threads": 2.0}, "config key resources.sft.threads: 2.0 is not of type 'integer'"),
    ({"data_dir": "data/{x}"}, "config key data_dir: 'data/{x}' does not match"),
    ({"grid": [{"track": ["I"], "method": ["grpo"]}]},
     "config models: no path for model 'qwen2.5-3b-instruct'"),
    ({"grid": [{"track": ["I"], "method": ["grpo"], "backend": ["mini"]}]},
     "config grid[0]: backend 'mini' cannot train track 'I'"),
    # a requested table or figure the grid cannot fill (issue 12, item 6)
    ({"tables": ["table1", "table3"]},
     "config grid lacks runs that config tables/figures need: table3 (mini track) needs a grpo run with "
     "clipo infonce-fixed"),
    ({"tables": ["table2"]},
     "table2 needs runs of the paper's tracks I/II; add e.g. II_qwen2.5-7b-instruct_grpo_none_tau-_g16_s0_verl"),
    ({"grid": [{"track": ["mini"], "method": ["grpo"]}]},
     "fig4 needs a trained CLIPO run (clipo other than none)"),
    ({"figures": ["fig3"], "grid": [{"track": ["mini"], "method": ["grpo"], "clipo": ["infonce-fixed"]}]},
     "fig3 needs a grpo run without CLIPO and one with infonce, supcon or softnn"),
])
def test_bad_config_is_one_error_naming_the_key(tmp_path, change, message):
    cfg = write_config(tmp_path / "bad.yaml", **change)
    proc = snakemake(tmp_path, "-n", "--configfile", str(cfg))
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "models":  # models is a free-form name → path map
            out |= _keys(v, f"{prefix}{k}.")
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_alternate_configs_set_every_key(path):
    """A --configfile is merged over config.yaml, so each alternate config must set every key itself."""
    default = yaml.safe_load((REPO / "config.yaml").read_text())
    missing = _keys(default) - _keys(yaml.safe_load(path.read_text()))
    assert not missing, f"{path.name} leaves {sorted(missing)} to config.yaml"


# ------------------------------------------------------------------------------------------------
# DAGs of the shipped configs
# ------------------------------------------------------------------------------------------------
def test_default_config_lists_the_mini_study(tmp_path):
    job_list = dry_run(tmp_path, "--configfile", str(REPO / "config.yaml"))
    counts = Counter(rule for rule, _ in job_list)
    assert counts == {"synth_data": 1, "sft": 1, "train_mini": 10, "eval_mini": 11, "figure": 7, "tables": 1,
                      "significance": 1, "build_report": 1, "all": 1}
    runs = {RunSpec.parse(r) for r in trained_run_ids(job_list)}
    seeds = Counter((r.clipo, r.tau) for r in runs)  # the headline comparison has 3 seeds, the rest one
    assert seeds == {("none", None): 3, ("infonce", 0.05): 3, ("infonce", 0.2): 1, ("supcon", 0.05): 1,
                     ("softnn", 0.05): 1, ("infonce-fixed", 0.05): 1}
    assert {(r.method, r.clipo, r.tau) for r in runs} == {
        ("grpo", "none", None), ("grpo", "infonce", 0.05), ("grpo", "infonce", 0.2),
        ("grpo", "supcon", 0.05), ("grpo", "softnn", 0.05), ("grpo", "infonce-fixed", 0.05)}
    outputs = {o for _, outs in job_list for o in outs}
    for f in ["results/mini/tables/table1.csv", "results/mini/tables/table3.md",
              "results/mini/tables/table13.tex", "results/mini/figures/fig3_loss_gains.png",
              "results/mini/figures/fig4_tsne.pdf",
              "results/mini/figures/fig5_pair_cos.png", "results/mini/figures/reward_curves.png",
              "results/mini/figures/lucky_share.png",
              "results/mini/figures/forest_deltas.pdf", "results/mini/figures/paperfig3_loss_gains.png",
              "results/mini/significance/bootstrap.csv",
              "results/mini/report.md"]:
        assert f in outputs


def test_paper_grid_is_exactly_the_runs_the_tables_need(tmp_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    job_list = dry_run(tmp_path, "--configfile", str(REPO / "configs" / "paper.yaml"))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"paper grid dry run: {wall:.1f} s wall, {cpu:.1f} s CPU")
    # CPU time, not wall time: the CI machine is shared; 5 s is the promise on an idle machine.
    assert cpu <= 5.0

    ids = trained_run_ids(job_list)
    assert len(ids) == len(set(ids)), "a training run is scheduled twice"
    assert all(rule == "train_verl" for rule, _ in job_list if rule.startswith("train_"))
    trained = {RunSpec.parse(i) for i in ids}
    assert trained == required_runs("verl")
    for table, needed in runs_per_table("verl").items():
        assert len(needed & trained) == len(needed), table
    # base models are evaluated, never trained
    evaluated = {Path(o).parent.name for rule, outs in job_list if rule == "eval_verl" for o in outs}
    bases = {RunSpec.parse(i) for i in evaluated} - trained
    assert {(b.track, b.model, b.method) for b in bases} == {("I", "qwen2.5-3b-instruct", "base"),
                                                             ("II", "qwen2.5-7b-instruct", "base")}


def test_mini_full_grid_dedupes_shared_runs(tmp_path):
    ids = trained_run_ids(dry_run(tmp_path, "--configfile", str(REPO / "configs" / "mini-full.yaml")))
    assert len(ids) == len(set(ids))
    runs = {RunSpec.parse(i) for i in ids}
    # 4 methods x ±CLIPO + 3 variants + τ sweep (3 new τ) + G sweep (2 new G), each x 3 seeds
    assert len(runs) == (8 + 3 + 3 + 2) * 3
    assert {r.method for r in runs} == {"grpo", "gspo", "dapo", "gmpo"}
    assert {r.seed for r in runs} == {0, 1, 2}


def test_lint_is_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint", "--configfile", str(REPO / "config.yaml"))
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr, proc.stdout


def test_paper_tables_render_from_the_transcription(tmp_path):
    shutil.copytree(REPO / "results" / "paper", tmp_path / "results" / "paper",
                    ignore=shutil.ignore_patterns("tables", "logs", "benchmarks"))
    t0 = time.perf_counter()
    proc = snakemake(tmp_path, "paper_tables", "--cores", "1", "--configfile", str(REPO / "config.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"paper_tables: {time.perf_counter() - t0:.1f} s")
    tables = tmp_path / "results" / "paper" / "tables"
    for n in (1, 2, 3, 5, 6, 7, *range(11, 20)):
        for ext in ("md", "tex", "csv", "html"):
            assert (tables / f"table{n}.{ext}").stat().st_size > 0
    assert "87.79" in (tables / "table1.csv").read_text()  # GRPO's GSM8K cell, transcribed


# ------------------------------------------------------------------------------------------------
# Regenerating one artefact reruns only what depends on it
# ------------------------------------------------------------------------------------------------
def test_regenerating_a_figure_or_a_run_reruns_only_its_downstream(tmp_path):
    config = REPO / "config.yaml"
    complete_state(tmp_path, config)
    fig4 = "results/mini/figures/fig4_tsne.png"
    (tmp_path / fig4).unlink()
    again = dry_run(tmp_path, fig4, "--configfile", str(config))
    assert [rule for rule, _ in again] == ["figure"]
    assert fig4 in again[0][1]

    run = "mini_mini-base_grpo_infonce_tau0.2_g8_s0_mini"
    summary = f"results/mini/runs/{run}/summary.json"
    forced = dry_run(tmp_path, "--configfile", str(config), "--forcerun", summary)
    counts = Counter(rule for rule, _ in forced)
    assert counts == {"train_mini": 1, "eval_mini": 1, "figure": 6, "tables": 1, "significance": 1,
                      "build_report": 1, "all": 1}
    assert {Path(o).parent.name for rule, outs in forced if rule.endswith("_mini") for o in outs} == {run}


def test_checkpoint_interval_reruns_nothing_but_a_result_setting_does(tmp_path):
    """`train.checkpoint_every` says how often a run is saved, not what it computes: changing it on a
    finished run set schedules nothing (issue 22, item 12), under Snakemake's default rerun triggers;
    `train.steps` in the same place reruns training and what follows (so the fixture records params)."""
    fake_completed_run(tmp_path, TINY)
    interval = write_config(tmp_path / "interval.yaml", **{"train.checkpoint_every": 7})
    assert dry_run(tmp_path, "--configfile", str(interval)) == []

    steps = write_config(tmp_path / "steps.yaml", **{"train.steps": 3})
    counts = Counter(rule for rule, _ in dry_run(tmp_path, "--configfile", str(steps)))
    assert counts["train_mini"] == 2 and counts["eval_mini"] == 2


def test_analysis_reads_the_runs_of_the_config_not_the_folder(tmp_path):
    """A run removed from the grid leaves its files behind; tables, significance and report must not show
    it (issue 12, item 1), and significance writes exactly the files its rule declares (item 12)."""
    job_list = complete_state(tmp_path, TINY)
    results = tmp_path / "results" / "tiny"
    for run in TINY_RUNS:
        write_evaluation(results, run)
    clipo_run = next(r for r in TINY_RUNS if "infonce" in r)
    without_clipo = write_config(tmp_path / "no-clipo.yaml", figures=[], grid=[
        {"track": ["mini"], "method": ["base"]},
        {"track": ["mini"], "method": ["grpo"], "clipo": ["none"], "group_size": [4]}])
    proc = snakemake(tmp_path, "results/tiny/report.md", "--cores", "1", "--configfile", str(without_clipo),
                     "--forcerun", "tables", "significance", "build_report")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for f in ["significance/bootstrap.csv", "significance/se_tiny.csv", "tables/table1.csv", "report.md"]:
        text = (results / f).read_text()
        assert "mini-base,grpo,infonce" not in text and "mini-base grpo+infonce" not in text, (f, text)
    assert "CLIPO" not in (results / "tables" / "table1.csv").read_text()
    assert (results / "eval" / clipo_run / "scores.csv").exists()  # still there, just not read

    declared = {o for rule, outs in job_list if rule == "significance" for o in outs}
    written = {str(p.relative_to(tmp_path)) for p in (results / "significance").iterdir()}
    assert written == declared


# ------------------------------------------------------------------------------------------------
# The reduced workflow for real (slow)
# ------------------------------------------------------------------------------------------------
def run_tiny(workdir: Path, *targets: str) -> subprocess.CompletedProcess:
    return snakemake(workdir, *targets, "--cores", "2", "--configfile", str(TINY))


TINY_ARTEFACTS = ["data/mini/train.parquet", "results/tiny/base-model/config.json",
                  "results/tiny/tables/table1.csv", "results/tiny/figures/fig4_tsne.png",
                  "results/tiny/figures/reward_curves.png", "results/tiny/figures/forest_deltas.pdf",
                  "results/tiny/significance/bootstrap.csv",
                  "results/tiny/report.md"]


@pytest.mark.slow
def test_tiny_workflow_runs_reports_and_regenerates_one_figure(tiny_local_run):
    work = tiny_local_run
    for f in TINY_ARTEFACTS:
        assert (work / f).stat().st_size > 0, f
    logs = sorted((work / "results" / "tiny" / "logs").rglob("*.log"))
    assert len(logs) == 13
    assert all(log.read_text().startswith("slurm_job_id= host=") for log in logs)

    # the browsable report of the run: every table, figure and significance table flagged with report()
    proc = snakemake(work, "--report", "report.html", "--configfile", str(TINY))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (work / "report.html").read_text()
    for name in ("table1.html", "fig4_tsne.png", "bootstrap.html", "se_tiny.html", "report.html"):
        assert name in html, name  # HTML entries: the viewer shows them inline (tests/test_report_html.py)

    fig4 = work / "results" / "tiny" / "figures" / "fig4_tsne.png"
    fig4.unlink()
    proc = run_tiny(work, str(fig4.relative_to(work)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.findall(r"^(?:local)?rule (\S+):$", proc.stdout + proc.stderr, re.M) == ["figure"]
    assert fig4.stat().st_size > 0


@pytest.mark.slow
def test_tiny_rewards_vary_so_clipo_changes_the_model(tiny_local_run):
    """The CI config must be able to tell GRPO from GRPO+CLIPO (issue 12, item 11): its base model solves
    some training problems, so rewards are neither all 0 nor all 1, the contrastive term has positive pairs,
    and the two runs end with different weights; table1 shows both trained runs."""
    runs = tiny_local_run / "results" / "tiny" / "runs"
    grpo, clipo = (next(r for r in TINY_RUNS if f"_grpo_{v}_" in r) for v in ("none", "infonce"))
    rewards = [m["reward/outcome"] for run in (grpo, clipo) for m in metrics(runs / run) if m["step"] > 0]
    assert any(0 < r < 1 for r in rewards), rewards  # a batch with right and wrong answers
    assert any(m.get("clipo/cos_pos") is not None for m in metrics(runs / clipo))
    weights = [(runs / run / "final" / "model.safetensors").read_bytes() for run in (grpo, clipo)]
    assert weights[0] != weights[1]
    table1 = (tiny_local_run / "results" / "tiny" / "tables" / "table1.csv").read_text(encoding="utf-8")
    rows = ["Base Model", "GRPO", "GRPO+CLIPO", "Δ"]
    assert [line.split(",")[0] for line in table1.splitlines()[1:]] == [  # Pass@1, then the step-checked sections
        *rows, "Sound Pass@1 (% of all answers)", *rows, "Lucky share of correct answers (%)", *rows]


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint(tiny_local_run, tmp_path):
    """SIGKILL snakemake and its job mid-training; --rerun-incomplete continues from the last checkpoint
    and ends with the same metrics and weights as an uninterrupted run."""
    run = "mini_mini-base_grpo_none_tau-_g4_s0_mini"
    target = f"results/tiny/runs/{run}/summary.json"
    config = write_config(tmp_path / "resume.yaml", **{"train.steps": 6, "train.checkpoint_every": 1})
    dirs = {}
    for name in ("killed", "straight"):  # same data and base model as the local run
        d = dirs[name] = tmp_path / name
        shutil.copytree(tiny_local_run / "data", d / "data")
        shutil.copytree(tiny_local_run / "results/tiny/base-model", d / "results/tiny/base-model")

    proc = snakemake(dirs["straight"], target, "--cores", "1", "--configfile", str(config))
    assert proc.returncode == 0, proc.stderr[-3000:]

    killed = dirs["killed"]
    ckpts = killed / "results/tiny/runs" / run / "checkpoints"
    job = subprocess.Popen([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), target,
                            "--cores", "1", "--configfile", str(config)], cwd=killed, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not any(ckpts.glob("step_00000[2-4].pt")):
        assert job.poll() is None and time.monotonic() < deadline, "training ended or stalled before step 2"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)  # snakemake and the training job, as a crashed node would
    job.wait()
    assert not (killed / target).exists()
    killed_at = int(max(p.stem for p in ckpts.glob("step_*.pt")).split("_")[1])

    # A killed Snakemake leaves its lock behind; --unlock removes it (documented Snakemake behaviour).
    assert snakemake(killed, "--unlock", "--configfile", str(config)).returncode == 0
    proc = snakemake(killed, target, "--cores", "1", "--rerun-incomplete", "--configfile", str(config))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((killed / target).read_text())
    assert summary["resumed_from_step"] >= killed_at >= 2
    resumed, straight = (d / "results/tiny/runs" / run for d in (killed, dirs["straight"]))
    assert metrics(resumed) == metrics(straight)
    weights = "final/model.safetensors"
    assert (resumed / weights).read_bytes() == (straight / weights).read_bytes()
