"""The figures and the paper's tables this package renders: one registry each.

The figure code, the report, the workflow (``workflow/rules/common.smk``) and the config schema's enums
take their names from here (tests/test_registries.py checks the schema). Import-light on purpose:
Snakemake reads it when it parses the workflow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    id: str
    """Name in the config and on the command line (``clipo figures --only``); also the module that
    draws it, ``clipo.analysis.<id>``. No underscore: the workflow reads the id back from the stem."""
    stem: str
    """File name without extension, ``<id>_<what>``: ``<run_set>/figures/<stem>.{png,pdf}``."""
    label: str
    caption: str
    """Caption in the report: what is drawn and what the bars, bands and intervals are."""
    reads: str
    """What it is drawn from, so the workflow knows its inputs: 'evaluations' (eval/*/scores.csv and
    samples.parquet), 'training' (runs/*/metrics.jsonl, embeddings.parquet) or 'paper' (the transcription)."""


READS = ("evaluations", "training", "paper")

FIGURES: dict[str, Figure] = {
    f.id: f
    for f in (
        Figure("fig3", "fig3_loss_gains", "Figure 3",
               "Gain of each contrastive loss (InfoNCE, SupCon, SoftNN) over GRPO on the track's averages, "
               "in percentage points: bar = mean gain over the seeds the loss shares with GRPO; whisker = "
               "95% paired-bootstrap interval (problems resampled jointly for both runs, seeds resampled "
               "where there are several), drawn wherever per-sample records exist. A figure without "
               "whiskers says so in its title and labels the bars instead.", "evaluations"),
        Figure("fig4", "fig4_tsne", "Figure 4",
               "t-SNE of contrastive-head embeddings at the start of training (left) and at the end "
               "(right). Colour = prompt (its group of rollouts), filled = correct, hollow = incorrect; "
               "the panel titles say whether both panels show the same probe prompts and give the "
               "silhouette of the prompt groups, computed on the embeddings themselves (cosine), not on "
               "the t-SNE map.", "training"),
        Figure("fig5", "fig5_pair_cos", "Figure 5",
               "Mean within-group cosine similarity of head embeddings vs training step, for positive "
               "(correct-correct), negative (incorrect-incorrect) and cross (correct-incorrect) pairs; one "
               "line per CLIPO variant and τ. Solid: exponential moving average (mean over seeds); faint: "
               "raw values; band: min-max of the seeds' smoothed curves where a setting has several seeds.",
               "training"),
        Figure("reward", "reward_curves", "Training reward",
               "Outcome reward (fraction of correct rollouts) per training step, one line per method and "
               "CLIPO variant. Solid: exponential moving average (mean over seeds); faint: raw values; "
               "band: min-max of the seeds' smoothed curves where a setting has several seeds. Right, "
               "where the runs log it: the validation reward (the same prompts and random draws at every "
               "validation, one answer each at the rollout temperature), mean over seeds, unsmoothed; band: "
               "min-max of the seeds.",
               "training"),
        Figure("lucky", "lucky_share", "Lucky answers in training",
               "Share of the correct answers whose work is unsound (lucky: the outcome right, a step wrong, "
               "skipped, invented or missing; clipo.data.stepcheck), in %, per training step, one line per "
               "method and CLIPO variant. Left: the step's rollouts; solid: exponential moving average (mean "
               "over seeds); faint: raw values; band: min-max of the seeds' smoothed curves where a setting "
               "has several seeds. Right, where the runs log it: the fixed validation prompts, mean over "
               "seeds, unsmoothed; band: min-max of the seeds. Measured only, never rewarded; a step without "
               "a correct answer has no lucky share.", "training"),
        Figure("forest", "forest_deltas", "Δ with intervals",
               "Every Δ (CLIPO variant minus its base method; the fixed-head ablation minus learned-head "
               "CLIPO) per benchmark and average, in percentage points, with its 95% paired-bootstrap "
               "interval (clipo significance). Diamonds: seeds pooled (interval also covers seed-to-seed "
               "variation); filled: the interval excludes 0.", "evaluations"),
        Figure("paperfig3", "paperfig3_loss_gains", "Figure 3 (paper)",
               "The paper's Figure 3 redrawn from the transcribed Table 13 scores (Track I, Qwen2.5-3B, "
               "τ = 0.05): gain of each contrastive loss over GRPO, labelled as printed. Whisker: ±2 "
               "binomial standard errors of the gain (conservative bound from the benchmark sizes); the "
               "paper reports no intervals.", "paper"),
    )
}

TABLES: tuple[str, ...] = ("table1", "table2", "table3", "table5", "table6", "table7", "table11", "table12",
                           "table13", "table14", "table15", "table16", "table17", "table18", "table19")
"""The paper's tables that ``clipo tables`` renders (clipo.analysis.paper_tables.PAPER_TABLES, in order)."""

TABLE_TOPICS: dict[str, str] = {
    "table1": "main results", "table2": "Track II results", "table3": "fixed-head ablation",
    "table5": "temperature τ", "table6": "group size", "table7": "diverse models", "table11": "fixed head, Track I",
    "table12": "fixed head, Track II", "table13": "contrastive loss variants", "table14": "loss variants, Track II",
    "table15": "SoftNN on each RLVR method", "table16": "τ sweep, Track I", "table17": "τ sweep, Track II",
    "table18": "group size × τ", "table19": "various base models",
}
"""What each table shows, in a few words: the label of its entry in the Snakemake report."""


def table_label(table_id: str) -> str:
    """'table1' → 'Table 1 — main results'."""
    return f"Table {table_id.removeprefix('table')} — {TABLE_TOPICS[table_id]}"
