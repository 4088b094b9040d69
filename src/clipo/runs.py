"""Identity of one training run: the readable, stable id shared by the workflow, trainers and analysis.

A run id spells out every axis the paper varies, so a run shared by several tables is one folder:
``{track}_{model}_{method}_{clipo}_tau{tau}_g{G}_s{seed}_{backend}``, e.g.
``II_qwen2.5-7b-instruct_grpo_infonce_tau0.02_g16_s0_verl``. Runs without CLIPO carry ``tau-``.
The base model (no RL) is the pseudo-run with method ``base``.

Every value a run id can hold reads back unchanged: τ is written in positional notation with the
shortest digits that round-trip (``format_tau``), so no two τ share an id and none needs an exponent.

One training run is asked for as ``TrainOptions`` (the ``clipo train`` options, None = default) and
``resolve`` turns it into a ``TrainRun``: defaults from ``clipo.methods``, every check once, for both
backends (``clipo.mini.train.resolve_config`` and ``clipo.verl.overrides.plan_run`` build on it).
``expand_grid`` turns the workflow config's sweeps into the run ids Snakemake schedules.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from pathlib import Path

from clipo.errors import ConfigError
from clipo.methods import (
    CLIPO_VARIANTS,
    METHODS,
    PAPER_MODELS,
    TRACKS,
    Clipo,
    Method,
    Track,
    clipo_variant,
    get_method,
    get_track,
)

BACKENDS = ("mini", "verl")
# Range of the contrastive temperature τ. The loss exponentiates similarities cos/τ; at cos = 1 a code that
# does so without subtracting the row maximum (the paper's eq. 7 as written) needs e^{1/τ} to be finite in
# float32, i.e. 1/τ < ln(3.4e38) ≈ 88.7. τ ≥ 1/80 keeps four orders of magnitude of headroom (e^80 ≈ 5.5e34)
# and admits every τ the paper reports (0.015 to 0.2). Above 10⁶ every logit rounds to the same value in
# float32 (the loss carries no signal), and the run id writes τ positionally, so the cap keeps it short.
MIN_TAU = 1 / 80
MAX_TAU = 1e6
_ID = re.compile(
    r"^(?P<track>[^_]+)_(?P<model>[^_]+)_(?P<method>[^_]+)_(?P<clipo>[^_]+)"
    r"_tau(?P<tau>[0-9.]+|-)_g(?P<group_size>\d+)_s(?P<seed>\d+)_(?P<backend>[^_]+)$"
)


def format_tau(tau: float | None) -> str:
    """τ as written in a run id: ``-`` when CLIPO is off, else positional digits (``1e-05`` → ``0.00001``)."""
    if tau is None:
        return "-"
    text = format(Decimal(repr(float(tau))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


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
        if not self.model:
            raise ConfigError("run model='' must name the model (it is a run-id field)")
        if (self.clipo == "none") != (self.tau is None):
            raise ConfigError(f"run {self.model}/{self.method}: tau must be given iff clipo is on "
                              f"(clipo={self.clipo!r}, tau={self.tau!r})")
        if self.tau is not None and not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau)
                                         and self.tau > 0):
            raise ConfigError(f"run tau={self.tau!r} (--tau) must be a finite number > 0")
        if self.tau is not None and not MIN_TAU <= self.tau <= MAX_TAU:
            raise ConfigError(f"run tau={self.tau!r} (--tau) must be in [{MIN_TAU}, {MAX_TAU:g}]: below "
                              f"{MIN_TAU}, e^(1/tau) overflows float32 where a cosine of 1 is exponentiated "
                              "(the paper uses 0.015 to 0.2)")
        if not (isinstance(self.group_size, int) and self.group_size >= 2):
            raise ConfigError(f"group_size={self.group_size!r} (--group-size) must be >= 2: group-relative "
                              "advantages need at least 2 rollouts per prompt")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ConfigError(f"seed={self.seed!r} (--seed) must be an integer >= 0")

    @property
    def run_id(self) -> str:
        return (f"{self.track}_{self.model}_{self.method}_{self.clipo}_tau{format_tau(self.tau)}"
                f"_g{self.group_size}_s{self.seed}_{self.backend}")

    @classmethod
    def parse(cls, run_id: str) -> "RunSpec":
        m = _ID.match(run_id)
        if not m:
            raise ConfigError(f"{run_id!r} is not a run id: expected TRACK_MODEL_METHOD_CLIPO_tauTAU_gG_sSEED_"
                              "BACKEND (tau- when CLIPO is off), e.g. mini_mini-base_grpo_infonce_tau0.05_g8_s0_mini")
        d = m.groupdict()
        try:
            return cls(
                track=d["track"], model=d["model"], method=d["method"], clipo=d["clipo"],
                tau=None if d["tau"] == "-" else float(d["tau"]),
                group_size=int(d["group_size"]), seed=int(d["seed"]), backend=d["backend"],
            )
        except (ConfigError, ValueError) as e:
            raise ConfigError(f"run id {run_id!r}: {e}") from None

    def as_dict(self) -> dict:
        return asdict(self)


def default_model(track: str) -> str:
    """The run-id name of a track's default policy: its PAPER_MODELS key, or the mini base-model name."""
    hub_id = get_track(track).model
    return next((short for short, hub in PAPER_MODELS.items() if hub == hub_id), hub_id)


def expand_grid(sweeps: list[dict]) -> list[RunSpec]:
    """Union of the config's sweeps' products as RunSpecs, deduplicated (a run shared by tables is one
    job), sorted by run id. Axes left out take the track's defaults."""
    runs = set()
    for i, sweep in enumerate(sweeps):
        for track in sweep["track"]:
            t = get_track(track)
            axes = {
                "model": sweep.get("model", [default_model(track)]),
                "method": sweep["method"],
                "clipo": sweep.get("clipo", ["none"]),
                "tau": sweep.get("tau", [t.clipo_temperature]),
                "group_size": sweep.get("group_size", [t.rollout_n]),
                "seed": sweep.get("seed", [0]),
                "backend": sweep.get("backend", ["mini" if track == "mini" else "verl"]),
            }
            for values in itertools.product(*axes.values()):
                r = dict(zip(axes, values), track=track)
                if r["method"] == "base":  # untrained model: no CLIPO, no rollouts
                    r.update(clipo="none", group_size=t.rollout_n)
                if r["clipo"] == "none":
                    r["tau"] = None
                if r["backend"] == "mini" and track != "mini":
                    raise ConfigError(f"config grid[{i}]: backend {r['backend']!r} cannot train track "
                                      f"{track!r} (the mini backend trains the mini track only)")
                try:
                    runs.add(RunSpec(**r))
                except ConfigError as e:
                    raise ConfigError(f"config grid[{i}]: {e}") from None
    return sorted(runs, key=lambda r: r.run_id)


# =============================================================================================
# One training run: the options asked for, resolved once for both backends
# =============================================================================================
def _option(help: str, default=None, **argparse_kwargs):
    """A ``clipo train`` option: its one help text and any argparse settings beyond the field's type."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass(frozen=True)
class TrainOptions:
    """A training run as asked for: every ``clipo train`` option, None taking the default of clipo.methods.

    Each field's metadata is the option's help text (``add_train_arguments`` builds the parser from it),
    so the CLI, the grid, both backends and the tests describe a run with one type and one text per option.
    """

    backend: str = _option("mini: the CPU trainer (track mini); verl: verl on GPUs (the other tracks)",
                           default=None, choices=BACKENDS, required=True)
    track: str = _option("I: Qwen2.5-3B on GSM8K; II: Qwen2.5-7B on MATH; small: one-GPU Track I; mini: CPU",
                         default=None, choices=sorted(TRACKS), required=True)
    method: str = _option("policy-optimisation method; its loss and settings come from clipo.methods",
                          default=None, choices=sorted(METHODS), required=True)
    clipo: str = _option("CLIPO variant (default: none)", default="none", choices=CLIPO_VARIANTS)
    model: str | None = _option("short model name (run id) — defaults to the track's model")
    model_path: str | None = _option("folder or hub id of the initial policy (mini: required; verl: the "
                                     "model's hub id by default)")
    tau: float | None = _option("contrastive temperature τ (default: the track's)")
    group_size: int | None = _option("rollouts per prompt G (default: the track's)")
    lam: float | None = _option("λ of the contrastive reward (default: per loss)")
    head_output_size: int | None = _option("contrastive head output size d")
    head_kind: str | None = _option("contrastive head (default linear)", choices=("linear", "mlp"))
    reference_eps: float | None = _option("released-code numerics compatibility (default 0)")
    fixed_head: bool | None = _option("CLIPO-fixed ablation for any loss: the head keeps its random "
                                      "initialisation", action="store_true")
    seed: int = _option("seed of every random stream: sampling, prompt order, head init (default 0)", default=0)
    data_dir: str = _option("folder with the dataset files (clipo data ...)", default="data")
    out: str | None = _option("run folder (checkpoints, metrics.jsonl, embeddings, final model)")
    steps: int | None = _option("number of RL steps (mini default: the track's; verl: total_training_steps)")
    head_warmup_steps: int | None = _option("steps that train only the head (policy frozen)")
    checkpoint_every: int | None = _option("mini: checkpoint interval in steps")
    test_freq: int | None = _option("mini: validate every N steps and before the first (-1: never; default "
                                    "the track's)")
    train_batch_size: int | None = _option("mini: prompts per step (default: the track's)")
    mini_batch_size: int | None = _option("mini: prompts per optimiser update")
    max_new_tokens: int | None = _option("mini: response length limit (default: the track's)")
    lr: float | None = _option("mini: policy learning rate (default: the track's)")
    output_gain_lr: float | None = _option("mini: learning rate of the final norm's gain, the output "
                                           "temperature (default: the track's)")
    threads: int | None = _option("mini: torch CPU threads (default: torch's)")
    logger: str | None = _option("mini: console (progress), tensorboard (event files in OUT/tensorboard/); "
                                 "default console", metavar="NAME,...")
    dry_run: bool = _option("verl: print the full command and exit", default=False, action="store_true")
    overrides: tuple[str, ...] = _option("verl: extra Hydra overrides appended verbatim", default=(),
                                         positional=True, nargs="*")

    def __post_init__(self):
        for name in ("backend", "track", "method"):
            if getattr(self, name) is None:
                raise ConfigError(f"train option {name} is required")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainOptions":
        values = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
        values["overrides"] = tuple(values.get("overrides") or ())
        values["dry_run"] = bool(values.get("dry_run", False))
        return cls(**values)


def _argument_type(name: str, annotation) -> type:
    """The argparse type of an option annotated ``X`` or ``X | None``, X one of str, int, float."""
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kinds = [t for t in typing.get_args(annotation) if t is not type(None)] if is_union else [annotation]
    if len(kinds) != 1 or kinds[0] not in (str, int, float):
        raise TypeError(f"TrainOptions.{name}: annotation {annotation} is not str, int or float (optionally "
                        "| None); give the option its argparse type= in _option(...)")
    return kinds[0]


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One argument per ``TrainOptions`` field, ``--field-name`` with the field's help, type and default."""
    annotations = typing.get_type_hints(TrainOptions)
    for f in fields(TrainOptions):
        kwargs = dict(f.metadata)
        if kwargs.pop("positional", False):
            parser.add_argument(f.name, help=kwargs.pop("help"), **kwargs)
            continue
        if kwargs.get("action") == "store_true":
            kwargs.setdefault("default", f.default)
        else:
            kwargs.setdefault("type", _argument_type(f.name, annotations[f.name]))
            if f.default is not None and not kwargs.get("required"):
                kwargs["default"] = f.default
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


CLIPO_OPTIONS = ("tau", "lam", "head_output_size", "head_kind", "reference_eps", "fixed_head")
"""Options that set the contrastive head or reward: refused when CLIPO is off."""
BACKEND_OPTIONS = {"mini": ("checkpoint_every", "test_freq", "threads", "output_gain_lr", "logger"),
                   "verl": ("dry_run", "overrides")}
"""Options only one backend honours; the other refuses them."""
_REFUSAL = {
    "checkpoint_every": "verl checkpoints once per epoch",
    "test_freq": "give verl's trainer.test_freq=N as a Hydra override",
    "threads": "verl's workers set their own threads",
    "output_gain_lr": "the GPU tracks train every parameter at the paper's lr",
    "logger": "give verl's own list as a Hydra override, e.g. trainer.logger=[console,tensorboard]",
    "dry_run": "the mini trainer has no command to print",
    "overrides": "the mini trainer has no Hydra config",
}


@dataclass(frozen=True)
class TrainRun:
    """One training run, resolved and checked: what both backends train from."""

    options: TrainOptions
    spec: RunSpec
    track: Track
    method: Method
    clipo: Clipo | None
    model_path: str
    train_batch_size: int
    """Prompts per step."""
    ppo_mini_batch_size: int
    """Prompts per optimiser update."""
    max_new_tokens: int
    """Response length limit in tokens."""
    lr: float
    output_gain_lr: float
    """Learning rate of the final norm's gain (mini track: clipo.methods explains why it has its own)."""
    steps: int | None
    """RL steps (mini: default the track's; verl: None trains the track's epochs)."""
    head_warmup_steps: int | None
    """Head-only steps (mini: default 0; verl: None is the track's warm-up epoch)."""
    checkpoint_every: int | None
    test_freq: int | None
    """Mini: steps between validation runs (-1: none); verl: None (the track's, in its config)."""
    threads: int | None
    out: str | None


# A Hugging Face hub id as the paper's models are named: organisation/name, letters, digits, '-', '_', '.'.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def check_model_path(value: str) -> None:
    """Refuse a relative path that does not exist here and cannot be a hub id (organisation/name).

    verl hands a path it cannot find to the hub, so ``runs/x/final`` (not yet exported, or mistyped)
    would fail only on the GPU node, after the job waited for it. An absolute path may exist only on
    that node and is checked there (clipo.verl.launch); ``org/name`` that is not a folder here is a hub id.
    """
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists() or (_HUB_ID.fullmatch(value) and not value.startswith(".")):
        return
    raise ConfigError(f"--model-path {value!r}: no such folder (relative to {Path.cwd()}), and not a hub id "
                      "(organisation/name, e.g. Qwen/Qwen2.5-7B-Instruct)")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _at_least(name: str, value, minimum: int) -> None:
    if value is not None and not (isinstance(value, int) and value >= minimum):
        raise ConfigError(f"{name}={value!r} ({_flag(name)}) must be an integer >= {minimum}")


def resolve(opts: TrainOptions) -> TrainRun:
    """Defaults from clipo.methods, then every check of a training run, once, for both backends."""
    if opts.backend not in BACKENDS:
        raise ConfigError(f"backend={opts.backend!r}; valid: {', '.join(BACKENDS)}")
    track, method = get_track(opts.track), get_method(opts.method)
    if opts.backend == "mini" and track.name != "mini":
        raise ConfigError(f"--backend mini trains --track mini only (got --track {track.name}); "
                          "tracks I and II run on GPUs with --backend verl")
    other = "verl" if opts.backend == "mini" else "mini"
    for name in BACKEND_OPTIONS[other]:
        if getattr(opts, name):
            what = "Hydra overrides are" if name == "overrides" else f"{_flag(name)} is"
            raise ConfigError(f"{what} a {other}-trainer option; {_REFUSAL[name]}")
    if opts.clipo == "none":
        given = [_flag(k) for k in CLIPO_OPTIONS if getattr(opts, k) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} need(s) CLIPO on (--clipo "
                              f"{'|'.join(v for v in CLIPO_VARIANTS if v != 'none')})")
    for name in ("steps", "train_batch_size", "mini_batch_size", "max_new_tokens", "checkpoint_every", "threads"):
        _at_least(name, getattr(opts, name), 1)
    _at_least("head_warmup_steps", opts.head_warmup_steps, 0)
    if opts.test_freq is not None and not (opts.test_freq == -1 or opts.test_freq >= 1):
        raise ConfigError(f"test_freq={opts.test_freq!r} (--test-freq) must be -1 (no validation) or an integer >= 1")
    for name in ("lr", "output_gain_lr"):
        value = getattr(opts, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name}={value!r} ({_flag(name)}) must be a finite number > 0")
    if opts.model_path is not None and not str(opts.model_path).strip():
        raise ConfigError("--model-path '' is empty: give the folder or hub id of the initial policy")

    model = opts.model if opts.model is not None else default_model(track.name)
    if opts.backend == "verl" and track.name != "mini" and model not in PAPER_MODELS:
        raise ConfigError(f"--model {model!r}; valid: {', '.join(PAPER_MODELS)}")
    model_path = opts.model_path if opts.model_path is not None else PAPER_MODELS.get(model)
    if model_path is None:
        raise ConfigError("--model-path is required: the base-model folder written by `clipo sft`")
    if opts.backend == "verl":
        check_model_path(str(model_path))
    clipo = clipo_variant(
        opts.clipo, track, temperature=opts.tau, lam=opts.lam, head_output_size=opts.head_output_size,
        head_kind=opts.head_kind, reference_eps=opts.reference_eps, fixed_head=True if opts.fixed_head else None,
    )
    spec = RunSpec(
        track=track.name, model=model, method=method.name, clipo=opts.clipo,
        tau=None if clipo is None else clipo.temperature,
        group_size=track.rollout_n if opts.group_size is None else opts.group_size,
        seed=opts.seed, backend=opts.backend,
    )
    train_batch_size = opts.train_batch_size or track.train_batch_size
    # Mini track (either backend): a smaller or larger batch keeps the track's number of optimiser updates
    # per step by default. GPU tracks: the paper's ppo_mini_batch_size stands (refused below if it does not divide).
    updates = max(1, track.train_batch_size // track.ppo_mini_batch_size)
    resized = opts.train_batch_size is not None and track.name == "mini"
    mini_batch_size = opts.mini_batch_size or (
        max(1, train_batch_size // updates) if resized else track.ppo_mini_batch_size)
    if train_batch_size % mini_batch_size:
        raise ConfigError(f"train_batch_size={train_batch_size} must be a multiple of "
                          f"ppo_mini_batch_size={mini_batch_size}")
    steps = opts.steps if opts.steps is not None else (track.mini_steps or None)
    warmup = opts.head_warmup_steps
    if opts.backend == "mini":
        warmup = warmup or 0
        if warmup and clipo is None:
            raise ConfigError("head_warmup_steps > 0 needs CLIPO on: without a head there is nothing to warm up")
    if warmup is not None and steps is not None and warmup > steps:
        raise ConfigError(f"head_warmup_steps={warmup} must be in [0, steps={steps}]")
    if opts.backend == "mini" and not opts.out:
        raise ConfigError("--out is required: the run folder (e.g. results/mini/runs/<run_id>)")
    return TrainRun(
        options=opts, spec=spec, track=track, method=method, clipo=clipo, model_path=str(model_path),
        train_batch_size=train_batch_size, ppo_mini_batch_size=mini_batch_size,
        max_new_tokens=opts.max_new_tokens or track.max_response_length,
        lr=track.lr if opts.lr is None else opts.lr,
        output_gain_lr=opts.output_gain_lr or track.output_gain_lr or (track.lr if opts.lr is None else opts.lr),
        steps=steps, head_warmup_steps=warmup,
        checkpoint_every=(opts.checkpoint_every or track.checkpoint_every) if opts.backend == "mini" else None,
        test_freq=(opts.test_freq or track.test_freq) if opts.backend == "mini" else None,
        threads=opts.threads, out=opts.out,
    )
