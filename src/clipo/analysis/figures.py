"""The paper's Figures 3-5 from results files, and `clipo figures`.

Each ``fig*`` function draws one figure, writes PNG + PDF and RETURNS the data it plotted, so what
is on the page can be checked against the inputs.

* Figure 3: gain of each contrastive loss (InfoNCE, SupCon, SoftNN) over GRPO on the track's averages,
  from Table 13/14-shaped scores (``scores.csv``).
* Figure 4: t-SNE of contrastive-head embeddings at the start and the end of training
  (``runs/<run_id>/embeddings.parquet``).
* Figure 5: mean within-group cosine similarity of positive pairs vs step, one line per τ
  (``runs/<run_id>/metrics.jsonl``, key ``clipo/cos_pos``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from clipo.analysis import style
from clipo.analysis.schema import SchemaError
from clipo.data.registry import AVERAGE_NAMES, benchmark_groups
from clipo.methods import TRACKS, ConfigError
from clipo.runs import RunSpec

LOSSES = ("infonce", "supcon", "softnn")
LOSS_LABELS = {"infonce": "InfoNCE", "supcon": "SupCon", "softnn": "SoftNN"}
NAMES = {"fig3": "fig3_loss_gains", "fig4": "fig4_tsne", "fig5": "fig5_pos_cos"}


class MissingInput(FileNotFoundError):
    """A figure's input files are absent or hold nothing it can plot; the message says what is missing."""


# ------------------------------------------------------------------------------------------------
# Figure 3: gains of the contrastive losses over GRPO
# ------------------------------------------------------------------------------------------------
def _averages(scores: pd.DataFrame, track: str) -> pd.Series:
    """average name → unweighted mean of its member benchmarks, for one run's scores."""
    per_bench = scores.drop_duplicates("benchmark").set_index("benchmark")["score"]
    out = {}
    for name, members in benchmark_groups(track).items():
        if all(m in per_bench.index for m in members):
            out[name] = float(per_bench[members].mean())
    return pd.Series(out, dtype=float)


def _pick_tau(cands: pd.DataFrame, track: str) -> float | None:
    """The τ shared by most losses (the figure compares losses at equal settings); ties → track default."""
    taus = cands.dropna(subset=["tau"]).groupby("tau")["clipo"].nunique()
    if taus.empty:
        return None
    best = taus[taus == taus.max()].index
    default = TRACKS[track].clipo_temperature if track in TRACKS else None
    return float(default) if default in set(best) else float(min(best))


def loss_gains(
    scores: pd.DataFrame,
    track: str,
    model: str | None = None,
    method: str = "grpo",
    tau: float | None = None,
    group_size: int | None = None,
) -> pd.DataFrame:
    """Gain of each contrastive loss over ``method`` on the track's averages, from tidy scores.

    Picks one model (default: the track's most frequent), the track's default group size when present,
    and one τ for all losses (``_pick_tau``). A loss's gain is averaged over the seeds it shares with the
    base runs. Returns columns loss, average, gain, score, base_score, n_seeds, tau, group_size, model.
    """
    s = scores[(scores["track"] == track) & (scores["method"] == method)]
    s = s[s["clipo"].isin(("none", *LOSSES))]
    if model is None and len(s):
        model = s.groupby("model")["clipo"].nunique().idxmax()
    s = s[s["model"] == model]
    if group_size is None and len(s):
        default = TRACKS[track].rollout_n if track in TRACKS else None
        group_size = default if default in set(s["group_size"]) else int(s["group_size"].mode().iloc[0])
    s = s[s["group_size"] == group_size]
    base = s[s["clipo"] == "none"]
    cands = s[s["clipo"] != "none"]
    if tau is None:
        tau = _pick_tau(cands, track)
    cands = cands[np.isclose(cands["tau"], tau)] if tau is not None else cands.iloc[0:0]
    if base.empty or cands.empty:
        raise MissingInput(
            f"fig3: need {method} without CLIPO and with at least one of {', '.join(LOSSES)} "
            f"on track {track} (model {model}, G={group_size}); found "
            f"{'no base run' if base.empty else 'no CLIPO run'}"
        )
    rows = []
    for loss in LOSSES:
        runs = cands[cands["clipo"] == loss]
        seeds = sorted(set(runs["seed"]) & set(base["seed"]))  # gains pair runs of equal seed
        if not seeds:
            continue
        avg = pd.DataFrame([_averages(runs[runs["seed"] == s], track) for s in seeds])
        base_avg = pd.DataFrame([_averages(base[base["seed"] == s], track) for s in seeds])
        for name in avg.columns.intersection(base_avg.columns):
            gains = avg[name] - base_avg[name]
            rows.append(
                {
                    "loss": loss,
                    "average": name,
                    "gain": float(gains.mean()),
                    "score": float(avg[name].mean()),
                    "base_score": float(base_avg[name].mean()),
                    "n_seeds": len(seeds),
                    "tau": tau,
                    "group_size": group_size,
                    "model": model,
                }
            )
    if not rows:
        raise MissingInput(f"fig3: no average of track {track} has every member benchmark in both runs")
    return pd.DataFrame(rows)


def fig3(
    scores: pd.DataFrame,
    out_dir: str | Path,
    track: str | None = None,
    model: str | None = None,
    method: str = "grpo",
    tau: float | None = None,
    errors: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Grouped bars: one group per average, one bar per loss. ``errors`` (from ``gain_errors``: loss,
    average, model, group_size, tau, ci_low, ci_high) draws each gain's bootstrap CI as an error bar."""
    track = track or _default_track(scores)
    data = loss_gains(scores, track, model=model, method=method, tau=tau)
    if errors is not None and len(errors):
        keys = [k for k in ("loss", "average", "model", "group_size", "tau") if k in errors.columns]
        data = data.merge(errors[[*keys, "ci_low", "ci_high"]], on=keys, how="left")
    averages = [a for a in [*AVERAGE_NAMES.get(track, {}).values(), "Avg."] if a in set(data["average"])]
    losses = [loss for loss in LOSSES if loss in set(data["loss"])]
    width = 0.8 / len(losses)
    with style.context():
        fig, (ax,) = style.new_figure(style.COLUMN_WIDTH, 2.1)
        for i, loss in enumerate(losses):
            d = data[data["loss"] == loss].set_index("average").reindex(averages)
            x = np.arange(len(averages)) + (i - (len(losses) - 1) / 2) * width
            yerr = None
            if "ci_low" in d and d["ci_low"].notna().any():
                yerr = np.vstack([(d["gain"] - d["ci_low"]).fillna(0), (d["ci_high"] - d["gain"]).fillna(0)])
            bars = ax.bar(
                x,
                d["gain"],
                width * 0.92,
                yerr=yerr,
                capsize=2,
                error_kw={"linewidth": 0.7},
                label=LOSS_LABELS[loss],
                color=style.OKABE_ITO[i],
            )
            if yerr is None:  # with error bars the value labels would collide with the caps
                ax.bar_label(bars, fmt="%+.2f", fontsize=6, padding=1.5)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(np.arange(len(averages)), averages)
        ax.set_ylabel(f"Gain over {method.upper()} (pp)")
        ax.grid(axis="x", visible=False)
        ax.margins(y=0.18)
        ax.legend(ncols=len(losses), loc="upper center", bbox_to_anchor=(0.5, 1.18))
        style.save(fig, Path(out_dir) / NAMES["fig3"])
    return data


# ------------------------------------------------------------------------------------------------
# Figure 4: t-SNE of the contrastive head's embeddings, start vs end of training
# ------------------------------------------------------------------------------------------------
EMBEDDING_COLUMNS = ("step", "phase", "group_id", "correct", "embedding")
MAX_TSNE_POINTS = 512
"""Points per panel; more are subsampled (fixed seed), as the paper plots a random sample, so the
figure renders in seconds."""
TSNE_ITERATIONS = 500


def read_embeddings(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"fig4: no embeddings file {path}")
    df = pd.read_parquet(path)
    missing = [c for c in EMBEDDING_COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(EMBEDDING_COLUMNS)}"
        )
    return df


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
        style.save(fig, Path(out_dir) / NAMES["fig4"])
    return data


# ------------------------------------------------------------------------------------------------
# Figure 5: positive-pair cosine similarity vs step, one line per τ
# ------------------------------------------------------------------------------------------------
COS_KEY = "clipo/cos_pos"


def read_metrics(path: str | Path) -> pd.DataFrame:
    """metrics.jsonl as a frame; a torn last line (run still writing) is skipped, any other bad line fails."""
    path = Path(path)
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines):
                break
            raise SchemaError(f"{path}:{i}: not a JSON object ({e.msg})") from None
    return pd.DataFrame.from_records(records)


def smooth(values: pd.Series, alpha: float = 0.3) -> pd.Series:
    """Light exponential moving average (bias-corrected, so the first points are not pulled to 0)."""
    return values.ewm(alpha=alpha, adjust=True).mean()


def run_tau(run_dir: Path) -> float | None:
    """τ of a run: from its folder name (a run id), else from run.json; None when CLIPO is off."""
    try:
        return RunSpec.parse(run_dir.name).tau
    except ConfigError:
        pass
    cfg_path = run_dir / "run.json"
    if cfg_path.exists():
        cfg = json.loads(cfg_path.read_text())
        clipo = cfg.get("clipo")
        if isinstance(clipo, dict) and clipo.get("temperature") is not None:
            return float(clipo["temperature"])
        if cfg.get("tau") is not None:
            return float(cfg["tau"])
    return None


def _run_files(runs_dir: Path, name: str, runs: list[str] | None) -> list[Path]:
    """``<runs_dir>/*/<name>``, or only those of ``runs`` (the workflow's grid) that exist."""
    if runs is None:
        return sorted(runs_dir.glob(f"*/{name}"))
    return [p for p in (runs_dir / run / name for run in runs) if p.is_file()]


def tau_family(runs_dir: str | Path, run: str | None = None, runs: list[str] | None = None) -> dict[float, Path]:
    """τ → run folder for runs that differ only in τ (the family of ``run``, else the one with most τ);
    ``runs`` limits the candidates to those run ids."""
    families: dict[RunSpec, dict[float, Path]] = {}
    for d in _run_files(Path(runs_dir), "metrics.jsonl", runs):
        try:
            spec = RunSpec.parse(d.parent.name)
        except ConfigError:
            continue
        if spec.tau is not None:
            families.setdefault(replace(spec, tau=1.0), {})[spec.tau] = d.parent
    if run is not None:
        spec = RunSpec.parse(run)
        if spec.tau is None:
            raise ConfigError(f"--run {run}: CLIPO is off in that run, it has no positive-pair similarity")
        family = families.get(replace(spec, tau=1.0))
        if not family:
            raise MissingInput(f"fig5: no metrics.jsonl for run {run} under {runs_dir}")
        return dict(sorted(family.items()))
    if not families:
        raise MissingInput(f"fig5: no CLIPO run with metrics.jsonl under {runs_dir}")
    best = max(families.values(), key=len)
    return dict(sorted(best.items()))


def fig5(
    curves: dict[float, pd.DataFrame], out_dir: str | Path, alpha: float = 0.3, title: str | None = None
) -> dict[float, pd.DataFrame]:
    """One line per τ (``curves``: τ → metrics with 'step', 'clipo/cos_pos'); returns τ → step/raw/smooth."""
    data = {}
    for tau, m in sorted(curves.items()):
        if COS_KEY not in m.columns or "step" not in m.columns:
            continue
        d = m[["step", COS_KEY]].dropna().sort_values("step")
        if len(d):
            raw = d[COS_KEY].astype(float).reset_index(drop=True)
            data[tau] = pd.DataFrame({"step": d["step"].to_numpy(), "raw": raw, "smooth": smooth(raw, alpha)})
    if not data:
        taus = ", ".join(f"{t:g}" for t in sorted(curves))
        raise MissingInput(
            f"fig5: the metrics of the runs with τ = {taus} hold no value of {COS_KEY!r} with a 'step' "
            "(it is null at steps where no group has two correct rollouts)"
        )
    with style.context():
        fig, (ax,) = style.new_figure(style.COLUMN_WIDTH, 2.2)
        for i, (tau, d) in enumerate(data.items()):
            colour = style.OKABE_ITO[i % len(style.OKABE_ITO)]
            ax.plot(d["step"], d["raw"], color=colour, alpha=0.25, linewidth=0.7)
            ax.plot(d["step"], d["smooth"], color=colour, label=f"τ = {tau:g}")
        ax.set_xlabel("Training step")
        ax.set_ylabel("Positive-pair cosine similarity")
        ax.legend()
        if title:
            ax.set_title(title)
        style.save(fig, Path(out_dir) / NAMES["fig5"])
    return data


# ------------------------------------------------------------------------------------------------
# Locating inputs in a run set
# ------------------------------------------------------------------------------------------------
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

    candidates = [p for p in _run_files(runs_dir, "embeddings.parquet", runs) if preference(p)[0] < 4]
    if candidates:
        return min(candidates, key=preference).parent
    raise MissingInput(f"fig4: no embeddings.parquet under {runs_dir}/*/ (written by CLIPO training runs)")


def render(
    name: str,
    results: Path,
    out: Path,
    *,
    run: str | None = None,
    scores: pd.DataFrame | None = None,
    errors: pd.DataFrame | None = None,
    track: str | None = None,
    runs: list[str] | None = None,
):
    """Draw one figure from a run set folder (only ``runs`` of it, if given); ``scores`` overrides the
    run set's scores (fig3 --source)."""
    if name == "fig3":
        if scores is None:
            from clipo.analysis.results import load_scores

            try:
                scores = load_scores(results, runs)
            except FileNotFoundError as e:
                raise MissingInput(f"fig3: {e}") from None
        return fig3(scores, out, track=track, errors=errors)
    if name == "fig4":
        run_dir = find_embedding_run(results / "runs", run, runs)
        return fig4(read_embeddings(run_dir / "embeddings.parquet"), out, title=run_dir.name)
    if name == "fig5":
        family = tau_family(results / "runs", run, runs)
        curves = {tau: read_metrics(d / "metrics.jsonl") for tau, d in family.items()}
        spec = RunSpec.parse(next(iter(family.values())).name)
        return fig5(
            curves, out, title=f"{spec.track} {spec.method}+{spec.clipo} G={spec.group_size} s{spec.seed}"
        )
    raise ConfigError(f"unknown figure {name!r}; valid: {', '.join(NAMES)}")


def gain_errors(samples: pd.DataFrame, track: str, n_boot: int = 10_000) -> pd.DataFrame:
    """Bootstrap CI of each loss's gain over GRPO (seeds pooled) as fig3 error bars: loss, average, ci_*."""
    from clipo.analysis.stats import bootstrap_table

    table = bootstrap_table(samples, n_boot=n_boot, pool_seeds=True)
    table = table[
        (table["track"] == track)
        & (table["method"] == "grpo")
        & (table["reference"] == "none")
        & table["clipo"].isin(LOSSES)
        & table["is_average"]
    ]
    table = table.rename(columns={"clipo": "loss", "benchmark": "average"})
    return table[["loss", "average", "model", "group_size", "tau", "ci_low", "ci_high"]]


def run_figures_command(
    results: str | Path,
    out: str | Path,
    only: str | None = None,
    run: str | None = None,
    source: str | None = None,
    error_bars: bool = False,
    track: str | None = None,
    paper_scores: str | Path | None = None,
    runs: list[str] | None = None,
) -> int:
    """`clipo figures`: draw every figure (or ``only`` those), report the ones whose inputs are missing.

    A missing input is fatal only for a figure asked for by name; otherwise it is reported and skipped.
    """
    from clipo.analysis.results import PAPER, load_scores
    from clipo.analysis.stats import load_samples

    results, out = Path(results), Path(out)
    names = [n.strip() for n in only.split(",")] if only else list(NAMES)
    for n in names:
        if n not in NAMES:
            raise ConfigError(f"--only {n!r}: valid figures are {', '.join(NAMES)}")
    scores = None
    if source is not None and "fig3" in names:
        if source != "paper":
            raise ConfigError(f"--source {source!r}: only 'paper' (default: the scores under --results)")
        scores = load_scores(paper_scores or PAPER)
    errors = None
    if error_bars and "fig3" in names:
        samples = load_samples(results, runs) if source is None else None
        if samples is None or samples.empty:
            print(
                f"fig3: no per-sample records under {results}/eval/*/samples.parquet; "
                "drawn without error bars"
            )
        else:
            track = track or _default_track(load_scores(results, runs))
            errors = gain_errors(samples, track)
    drawn = 0
    for name in names:
        try:
            render(name, results, out, run=run, scores=scores, errors=errors, track=track, runs=runs)
        except MissingInput as e:
            if only:
                raise
            print(f"skipped {e}")
            continue
        drawn += 1
        print(f"{name}: {out / NAMES[name]}.{{png,pdf}}")
    return 0 if drawn else 2


def _default_track(scores: pd.DataFrame) -> str:
    tracks = [t for t in ("I", "II", "mini") if t in set(scores["track"])] or sorted(set(scores["track"]))
    if not tracks:
        raise MissingInput("fig3: the scores are empty")
    return tracks[0]
