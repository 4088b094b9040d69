"""Identity of one training run: the readable, stable id shared by the workflow, trainers and analysis.

A run id spells out every axis the paper varies, so a run shared by several tables is one folder:
``{track}_{model}_{method}_{clipo}_tau{tau}_g{G}_s{seed}_{backend}``, e.g.
``II_qwen2.5-7b-instruct_grpo_infonce_tau0.02_g16_s0_verl``. Runs without CLIPO carry ``tau-``.
The base model (no RL) is the pseudo-run with method ``base``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from clipo.errors import ConfigError
from clipo.methods import CLIPO_VARIANTS, METHODS, TRACKS

BACKENDS = ("mini", "verl")
_ID = re.compile(
    r"^(?P<track>[^_]+)_(?P<model>[^_]+)_(?P<method>[^_]+)_(?P<clipo>[^_]+)"
    r"_tau(?P<tau>[0-9.]+|-)_g(?P<group_size>\d+)_s(?P<seed>\d+)_(?P<backend>[^_]+)$"
)


def format_tau(tau: float | None) -> str:
    return "-" if tau is None else f"{tau:g}"


@dataclass(frozen=True, order=True)
class RunSpec:
    track: str
    model: str
    method: str
    """grpo, gspo, dapo, gmpo, or 'base' for the untrained model."""
    clipo: str = "none"
    tau: float | None = None
    group_size: int = 16
    seed: int = 0
    backend: str = "mini"

    def __post_init__(self):
        if self.track not in TRACKS:
            raise ConfigError(f"run track={self.track!r}; valid: {', '.join(TRACKS)}")
        if self.method != "base" and self.method not in METHODS:
            raise ConfigError(f"run method={self.method!r}; valid: base, {', '.join(METHODS)}")
        if self.clipo not in CLIPO_VARIANTS:
            raise ConfigError(f"run clipo={self.clipo!r}; valid: {', '.join(CLIPO_VARIANTS)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"run backend={self.backend!r}; valid: {', '.join(BACKENDS)}")
        if "_" in self.model:
            raise ConfigError(f"run model={self.model!r} must not contain '_' (it separates run-id fields)")
        if (self.clipo == "none") != (self.tau is None):
            raise ConfigError(f"run {self.model}/{self.method}: tau must be given iff clipo is on "
                              f"(clipo={self.clipo!r}, tau={self.tau!r})")

    @property
    def run_id(self) -> str:
        return (f"{self.track}_{self.model}_{self.method}_{self.clipo}_tau{format_tau(self.tau)}"
                f"_g{self.group_size}_s{self.seed}_{self.backend}")

    @classmethod
    def parse(cls, run_id: str) -> "RunSpec":
        m = _ID.match(run_id)
        if not m:
            raise ConfigError(f"not a run id: {run_id!r} (expected {_ID.pattern})")
        d = m.groupdict()
        return cls(
            track=d["track"], model=d["model"], method=d["method"], clipo=d["clipo"],
            tau=None if d["tau"] == "-" else float(d["tau"]),
            group_size=int(d["group_size"]), seed=int(d["seed"]), backend=d["backend"],
        )

    def as_dict(self) -> dict:
        return asdict(self)
