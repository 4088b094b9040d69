"""Figure 4: t-SNE of contrastive-head embeddings at the start and the end of training
(``runs/<run_id>/embeddings.parquet``). ``fig4`` draws it, writes PNG + PDF and returns the points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipo import records
from clipo.analysis import style
from clipo.analysis.registry import FIGURES
from clipo.errors import ConfigError, MissingInput
from clipo.runs import RunSpec

MAX_TSNE_POINTS = 512
"""Points per panel; more are subsampled (fixed seed), as the paper plots a random sample, so the
figure renders in seconds."""
TSNE_ITERATIONS = 500


def read_embeddings(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"fig4: no embeddings file {path}")
    return records.read_embeddings(path)


def tsne_perplexity(n: int, preferred: float = 30.0) -> float:
    """Perplexity that stays valid for small dumps: at most (n − 1) / 3, never below 1."""
    return float(max(1.0, min(preferred, (n - 1) / 3)))


def _phase_points(df: pd.DataFrame, phase: str, seed: int) -> pd.DataFrame:
    """One phase's dump: the earliest step for 'start', the latest for 'end' (if several were written)."""
    d = df[df["phase"] == phase]
    if d.empty:
        return d
    d = d[d["step"] == (d["step"].min() if phase == "start" else d["step"].max())]
    if len(d) > MAX_TSNE_POINTS:
        d = d.sample(MAX_TSNE_POINTS, random_state=seed).sort_index()
    return d


def fig4(embeddings: pd.DataFrame, out_dir: str | Path, seed: int = 0, title: str | None = None) -> dict:
    """Two t-SNE panels (start, end); returns phase → DataFrame(x, y, correct, group_id, step).

    Dumps may carry a ``space`` column: 'head' (contrastive-head embeddings, what the paper plots) or
    'hidden' (pooled hidden states, what trainers dump when CLIPO is off); head rows win, and a
    hidden-state figure says so in its title.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    if "space" in embeddings.columns and embeddings["space"].nunique() > 0:
        space = "head" if (embeddings["space"] == "head").any() else str(embeddings["space"].iloc[0])
        embeddings = embeddings[embeddings["space"] == space]
        if space != "head":
            title = f"{title or ''} ({space} states; no contrastive head)".strip()
    data = {}
    for phase in ("start", "end"):
        d = _phase_points(embeddings, phase, seed)
        if len(d) < 2:
            raise MissingInput(f"fig4: phase {phase!r} has {len(d)} embedding(s); t-SNE needs at least 2")
        x = np.stack([np.asarray(e, dtype=np.float32) for e in d["embedding"]])
        tsne = TSNE(
            n_components=2,
            perplexity=tsne_perplexity(len(d)),
            random_state=seed,
            init="pca",
            learning_rate="auto",
            max_iter=TSNE_ITERATIONS,
        )
        # One OpenMP thread: on a busy machine sklearn's spinning threads made t-SNE 5-15x slower.
        with threadpool_limits(limits=1):
            xy = tsne.fit_transform(x)
        data[phase] = pd.DataFrame(
            {
                "x": xy[:, 0],
                "y": xy[:, 1],
                "correct": d["correct"].astype(bool).to_numpy(),
                "group_id": d["group_id"].to_numpy(),
                "step": d["step"].to_numpy(),
            }
        )
    with style.context():
        fig, axes = style.new_figure(style.FULL_WIDTH, 3.0, ncols=2)
        for ax, phase in zip(axes, ("start", "end")):
            d = data[phase]
            for ok, colour, marker, label in (
                (True, style.CORRECT, "o", "correct"),
                (False, style.INCORRECT, "x", "incorrect"),
            ):
                sel = d[d["correct"] == ok]
                ax.scatter(
                    sel["x"],
                    sel["y"],
                    s=7,
                    c=colour,
                    marker=marker,
                    linewidths=0.7,
                    alpha=0.8,
                    label=f"{label} ({len(sel)})",
                )
            ax.set_title(
                f"{'Start of training' if phase == 'start' else 'After training'} (step {d['step'].iloc[0]})"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.legend(loc="best", markerscale=1.5)
        if title:
            fig.suptitle(title, fontsize=7)
        style.save(fig, Path(out_dir) / FIGURES["fig4"].stem)
    return data


def find_embedding_run(runs_dir: str | Path, run: str | None = None, runs: list[str] | None = None) -> Path:
    """The run folder for Figure 4: ``run`` if given, else a CLIPO run with embeddings (among ``runs``).

    Runs whose head is trained come first (InfoNCE, the paper's default, before the other losses);
    the fixed-head ablation is used only when nothing else has embeddings.
    """
    runs_dir = Path(runs_dir)
    if run is not None:
        path = runs_dir / run / "embeddings.parquet"
        if not path.exists():
            raise MissingInput(f"fig4: no {path}")
        return path.parent

    def preference(path: Path) -> tuple[int, str]:
        try:
            variant = RunSpec.parse(path.parent.name).clipo
        except ConfigError:
            return (3, path.parent.name)
        rank = {"none": 4, "infonce": 0}.get(variant, 2 if variant.endswith("-fixed") else 1)
        return (rank, path.parent.name)

    candidates = [p for p in records.run_files(runs_dir, "embeddings.parquet", runs) if preference(p)[0] < 4]
    if candidates:
        return min(candidates, key=preference).parent
    raise MissingInput(f"fig4: no embeddings.parquet under {runs_dir}/*/ (written by CLIPO training runs)")


def draw(results: Path, out: Path, *, run: str | None = None, runs: list[str] | None = None, **_) -> dict:
    """Figure 4 of a run set: ``run``'s embeddings, else those of the preferred CLIPO run (among ``runs``)."""
    run_dir = find_embedding_run(results / "runs", run, runs)
    return fig4(read_embeddings(run_dir / records.EMBEDDINGS_FILE), out, title=run_dir.name)
