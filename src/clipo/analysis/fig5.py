"""Figure 5: mean within-group cosine similarity of positive pairs vs step, one line per τ
(``runs/<run_id>/metrics.jsonl``, key ``clipo/cos_pos``). ``fig5`` draws it, writes PNG + PDF and
returns the curves.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from clipo import records
from clipo.analysis import style
from clipo.analysis.registry import FIGURES
from clipo.errors import ConfigError, MissingInput
from clipo.runs import RunSpec

COS_KEY = "clipo/cos_pos"


def read_metrics(path: str | Path) -> pd.DataFrame:
    """metrics.jsonl as a frame (``clipo.records.read_metrics``: a torn last line is skipped)."""
    return pd.DataFrame.from_records(records.read_metrics(path))


def smooth(values: pd.Series, alpha: float = 0.3) -> pd.Series:
    """Light exponential moving average (bias-corrected, so the first points are not pulled to 0)."""
    return values.ewm(alpha=alpha, adjust=True).mean()


def run_tau(run_dir: Path) -> float | None:
    """τ of a run: from its folder name (a run id), else from run.json; None when CLIPO is off."""
    try:
        return RunSpec.parse(run_dir.name).tau
    except ConfigError:
        pass
    cfg_path = run_dir / records.RUN_FILE
    if cfg_path.exists():
        cfg = records.read_json(cfg_path)
        clipo = cfg.get("clipo")
        if isinstance(clipo, dict) and clipo.get("temperature") is not None:
            return float(clipo["temperature"])
        if cfg.get("tau") is not None:
            return float(cfg["tau"])
    return None


def tau_family(runs_dir: str | Path, run: str | None = None, runs: list[str] | None = None) -> dict[float, Path]:
    """τ → run folder for runs that differ only in τ (the family of ``run``, else the one with most τ);
    ``runs`` limits the candidates to those run ids."""
    families: dict[RunSpec, dict[float, Path]] = {}
    for d in records.run_files(runs_dir, records.METRICS_FILE, runs):
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
        style.save(fig, Path(out_dir) / FIGURES["fig5"].stem)
    return data


def draw(results: Path, out: Path, *, run: str | None = None, runs: list[str] | None = None, **_) -> dict:
    """Figure 5 of a run set: the τ family of ``run``, else the family with most τ (among ``runs``)."""
    family = tau_family(results / "runs", run, runs)
    curves = {tau: read_metrics(d / records.METRICS_FILE) for tau, d in family.items()}
    spec = RunSpec.parse(next(iter(family.values())).name)
    return fig5(
        curves, out, title=f"{spec.track} {spec.method}+{spec.clipo} G={spec.group_size} s{spec.seed}"
    )
