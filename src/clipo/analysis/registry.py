"""The paper's figures and tables this package renders: one registry each.

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
    draws it, ``clipo.analysis.<id>``."""
    stem: str
    """File name without extension: ``<run_set>/figures/<stem>.{png,pdf}``."""
    label: str
    caption: str
    """Caption in the report."""


FIGURES: dict[str, Figure] = {
    f.id: f
    for f in (
        Figure("fig3", "fig3_loss_gains", "Figure 3",
               "Gain of each contrastive loss (InfoNCE, SupCon, SoftNN) over GRPO on the track's averages."),
        Figure("fig4", "fig4_tsne", "Figure 4",
               "t-SNE of contrastive-head embeddings at the start of training and after training; green = "
               "correct, red = incorrect rollouts."),
        Figure("fig5", "fig5_pos_cos", "Figure 5",
               "Mean within-group cosine similarity of positive pairs vs training step, one line per τ "
               "(faint: raw; solid: exponential moving average)."),
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
