"""The paper's own Figure 3 (Track I gains of InfoNCE, SupCon and SoftNN over GRPO), redrawn from the
transcribed scores (``results/paper/scores.csv``), so the report can show it beside the reproduced one.

The paper prints the gains without any interval; the whiskers here are ±2 binomial standard errors of
each gain (``clipo.analysis.stats.se_table``, the conservative bound), the scale on which a gain of a
point or so has to be judged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clipo.analysis import vocab
from clipo.analysis.fig3 import fig3
from clipo.errors import MissingInput

TRACK = "I"
"""The paper's Figure 3 shows Track I (Table 13); Track II's gains are Table 14's Δ rows."""


def se_whiskers(scores: pd.DataFrame, track: str = TRACK) -> pd.DataFrame:
    """gain ± 2 SE of each loss over GRPO on the track's averages, in fig3's ``errors`` columns."""
    from clipo.analysis.stats import se_table

    t = se_table(scores)
    t = t[(t["track"] == track) & (t["method"] == "grpo") & (t["reference"] == "none")
          & t["clipo"].isin(vocab.losses()) & t["is_average"].astype(bool)]
    return pd.DataFrame({
        "loss": t["clipo"], "average": t["benchmark"], "model": t["model"], "group_size": t["group_size"],
        "tau": t["tau"], "ci_low": t["delta"] - 2 * t["se_delta"], "ci_high": t["delta"] + 2 * t["se_delta"],
    })


def paperfig3(scores: pd.DataFrame, out_dir: str | Path) -> pd.DataFrame:
    """Track I gains as the paper prints them (two decimals), whiskers ±2 SE; returns the plotted data."""
    return fig3(scores, out_dir, track=TRACK, errors=se_whiskers(scores), figure="paperfig3", source="Paper",
                interval_name="±2 binomial SE", value_labels=True, label_format="%+.2f")


def draw(results: Path, out: Path, *, paper_scores: str | Path | None = None, **_) -> pd.DataFrame:
    """The figure from the repository's transcription (or ``paper_scores``), whatever the run set."""
    from clipo.analysis.results import PAPER, load_scores

    try:
        scores = load_scores(paper_scores or PAPER)
    except FileNotFoundError as e:
        raise MissingInput(f"paperfig3: {e}") from None
    return paperfig3(scores, out)
