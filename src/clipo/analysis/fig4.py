"""Figure 4: t-SNE of contrastive-head embeddings at the start and the end of training
(``runs/<run_id>/embeddings.parquet``), each prompt's rollouts in one colour, correct ones filled.

The trainer embeds one fixed probe set of prompts at both phases (the same ``group_id`` = the same
prompt), so the panels compare like with like; a dump whose phases hold different prompts is still
drawn, and its title says so. ``fig4`` draws it, writes PNG + PDF and returns the points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipo import records
from clipo.analysis import style, vocab
from clipo.analysis.registry import FIGURES
from clipo.errors import ConfigError, MissingInput, SchemaError
from clipo.runs import RunSpec

MAX_TSNE_POINTS = 512
"""Points per panel; beyond it whole prompt groups are left out (the same in both panels), so the
figure renders in seconds."""
TSNE_ITERATIONS = 500


def read_embeddings(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"fig4: no embeddings file {path}")
    try:
        df = records.read_embeddings(path)
    except (OSError, ValueError) as e:  # pyarrow's errors for a truncated or foreign file derive from these
        if isinstance(e, SchemaError):
            raise
        raise SchemaError(f"{path}: not a readable parquet file ({type(e).__name__}; truncated or not "
                          "written by training); train the run again to rewrite it") from None
    finite = np.array([np.isfinite(np.asarray(e, dtype=np.float32)).all() for e in df["embedding"]], dtype=bool)
    if not finite.all():
        steps = sorted(set(df.loc[~finite, "step"].tolist())) if "step" in df.columns else []
        raise SchemaError(f"{path}: {int((~finite).sum())} of {len(df)} embeddings hold NaN or infinite values "
                          f"(step(s) {steps}): the run diverged, t-SNE cannot place them")
    return df


def tsne_perplexity(n: int, preferred: float = 30.0) -> float:
    """Perplexity that stays valid for small dumps: at most (n − 1) / 3, never below 1."""
    return float(max(1.0, min(preferred, (n - 1) / 3)))


def phase_rows(df: pd.DataFrame, phase: str) -> pd.DataFrame:
    """One phase's dump: the earliest step for 'start', the latest for 'end' (if several were written)."""
    d = df[df["phase"] == phase]
    if d.empty:
        return d
    return d[d["step"] == (d["step"].min() if phase == "start" else d["step"].max())]


def keep_groups(d: pd.DataFrame, groups: list, limit: int = MAX_TSNE_POINTS, seed: int = 0) -> pd.DataFrame:
    """At most ``limit`` rows, whole prompt groups taken in the order of ``groups`` (so both panels keep
    the same prompts); rows sampled at random only when not even one group fits."""
    if len(d) <= limit:
        return d
    sizes = d.groupby("group_id").size()
    kept, n = [], 0
    for g in groups:
        if g in sizes.index and n + sizes[g] <= limit:
            kept.append(g)
            n += sizes[g]
    if not kept:
        return d.sample(limit, random_state=seed).sort_index()
    return d[d["group_id"].isin(kept)]


def group_silhouette(x: np.ndarray, groups: np.ndarray) -> float | None:
    """Silhouette of the prompt groups in the embedding space itself (cosine distance): near 1 when each
    prompt's rollouts form their own cluster, near 0 when groups overlap; None when undefined (fewer
    than 2 groups, or no group with 2 rollouts). Measured on the embeddings, not on the t-SNE map,
    whose distances do not mean much."""
    from sklearn.metrics import silhouette_score

    n_groups = len(np.unique(groups))
    if n_groups < 2 or n_groups >= len(groups):
        return None
    return float(silhouette_score(x, groups, metric="cosine"))


def group_colours(group_ids) -> dict:
    """group id → colour, the same in both panels: the house palette up to 8 prompts, tab20 up to 20,
    then repeating."""
    import matplotlib

    ids = sorted(set(group_ids))
    palette = list(style.OKABE_ITO) if len(ids) <= len(style.OKABE_ITO) else [
        matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab20"].colors]
    return {g: palette[i % len(palette)] for i, g in enumerate(ids)}


def fig4(embeddings: pd.DataFrame, out_dir: str | Path, seed: int = 0, title: str | None = None) -> dict:
    """Two t-SNE panels (start, end); returns phase → DataFrame(x, y, correct, group_id, step) and
    'summary' → DataFrame(phase, step, points, prompts, correct, silhouette, same_prompts).

    Dumps may carry a ``space`` column: 'head' (contrastive-head embeddings, what the paper plots) or
    'hidden' (pooled hidden states, what trainers dump when CLIPO is off); head rows win, and a
    hidden-state figure says so in its title. Colour is the prompt (a group of rollouts), the same
    prompt the same colour in both panels; filled = correct, hollow = incorrect.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    what = "Contrastive-head embeddings"
    if "space" in embeddings.columns and embeddings["space"].nunique() > 0:
        space = "head" if (embeddings["space"] == "head").any() else str(embeddings["space"].iloc[0])
        embeddings = embeddings[embeddings["space"] == space]
        if space != "head":
            what = f"Pooled {space} states (no contrastive head)"
    phases = {phase: phase_rows(embeddings, phase) for phase in ("start", "end")}
    shared = sorted(set(phases["start"]["group_id"]) & set(phases["end"]["group_id"]))
    data, summary = {}, []
    for phase, d in phases.items():
        d = keep_groups(d, shared or sorted(set(d["group_id"])), seed=seed)
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
            silhouette = group_silhouette(x, d["group_id"].to_numpy())
        data[phase] = pd.DataFrame(
            {
                "x": xy[:, 0],
                "y": xy[:, 1],
                "correct": d["correct"].astype(bool).to_numpy(),
                "group_id": d["group_id"].to_numpy(),
                "step": d["step"].to_numpy(),
            }
        )
        summary.append({"phase": phase, "step": int(d["step"].iloc[0]), "points": len(d),
                        "prompts": int(d["group_id"].nunique()), "correct": int(d["correct"].sum()),
                        "silhouette": silhouette})
    same = set(data["start"]["group_id"]) == set(data["end"]["group_id"])
    summary = pd.DataFrame(summary).assign(same_prompts=same)
    colours = group_colours([*data["start"]["group_id"], *data["end"]["group_id"]])
    with style.context():
        fig, axes = style.new_figure(style.FULL_WIDTH, 3.3, ncols=2)
        for ax, (phase, d), info in zip(axes, data.items(), summary.itertuples()):
            c = d["group_id"].map(colours)
            for ok, label in ((True, "correct"), (False, "incorrect")):
                sel = (d["correct"] == ok).to_numpy()
                ax.scatter(d["x"][sel], d["y"][sel], s=12, marker="o", linewidths=0.8, edgecolors=c[sel],
                           facecolors=c[sel] if ok else "white", alpha=0.9)
                ax.scatter([], [], s=12, marker="o", linewidths=0.8, edgecolors="0.35",
                           facecolors="0.35" if ok else "white", label=f"{label} ({int(sel.sum())})")
            sil = "" if info.silhouette is None or pd.isna(info.silhouette) else (
                f"; prompt-group silhouette {info.silhouette:.2f}")
            ax.set_title(f"{'Start of training' if phase == 'start' else 'End of training'} (step {info.step})\n"
                         f"{info.points} rollouts of {info.prompts} prompts{sil}")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.legend(loc="best", title="colour = prompt", title_fontsize=6, markerscale=1.3)
        prompts = ("the same probe prompts in both panels" if same
                   else "different prompts at start and end")
        fig.suptitle(f"{what}, t-SNE{': ' + title if title else ''}\n{prompts[0].upper()}{prompts[1:]}")
        style.save(fig, Path(out_dir) / FIGURES["fig4"].stem)
    data["summary"] = summary
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
    try:
        title = vocab.run_title(RunSpec.parse(run_dir.name))
    except ConfigError:
        title = run_dir.name
    return fig4(read_embeddings(run_dir / records.EMBEDDINGS_FILE), out, title=title)
