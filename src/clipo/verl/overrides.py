"""One paper run → the complete list of Hydra overrides for ``python -m clipo.verl.main``.

Every value comes from ``clipo.methods`` (method table, track presets, CLIPO variants) and the dataset
registry; nothing here is a hyperparameter of its own. The list is deliberately exhaustive — each paper
value appears explicitly even where it equals verl's default — so the logged command records the run.

Derived values (computed, not chosen):
- steps per epoch = rows of the training file // train_batch_size (verl's dataloader drops the last
  partial batch): GSM8K 7473 // 512 = 14, MATH 7500 // 128 = 58 — the paper's Table 8 step counts.
- head warm-up: verl updates the actor only when ``critic_warmup <= global_step`` and steps start at 1,
  so ``critic_warmup = N + 1`` gives N head-only steps. A track's warm-up of one epoch is passed
  literally, as the authors' scripts pass Table 8's "14 / 58 steps (1 epoch)": ``critic_warmup`` 14 / 58,
  i.e. 13 / 57 head-only steps and the first actor update on the epoch's last step.
  ``--head-warmup-steps N`` still means N head-only steps (``critic_warmup = N + 1``). The warm-up
  epoch consumes data and counts in ``total_epochs`` (Table 8: 6 = 1 + 5 for Track I, 9 = 1 + 8 for
  Track II).
- checkpoints every ``Track.save_freq`` steps, one per epoch where that is 0 (verl also saves at the
  last step), so a run cut off by its job's time limit resumes (``resume_mode=auto``).
- the mini track runs on the CPU (``clipo.verl.cpu``): its step count, checkpoint interval and
  validation size are the mini trainer's, plus verl's CPU settings (``_on_cpu``).

Documented choices where the paper is silent or ambiguous:
- Track I evaluation lists "temperature 0.6" next to ``do_sample=False``: greedy decoding, the
  temperature is recorded but has no effect (see ``clipo.methods.TRACKS``).
- The micro-batch size of Table 8 is set for the actor update and both log-prob passes; with dynamic
  batch size on (Table 8) verl packs micro-batches by ``ppo_max_token_len_per_gpu`` instead.
- Where the paper is silent the authors' released scripts decide (``clipo.methods.Track`` documents
  each: SGLang memory share 0.8, ``max_num_seqs`` 1024, ``ppo_max_token_len_per_gpu`` = 2 × (prompt +
  response), validation every 7 steps on Track I); where they conflict with the paper (Track II's
  epochs and τ) the paper's value is used. Track II validates every 116 steps instead of the released
  29, and checkpoints every 29: sized to its job's wall time (``clipo.methods.TRACKS``).
- verl's in-training validation (``test_freq``) only logs curves; the tables come from a separate
  evaluation step (``clipo.verl.evaluate``) with the same sampling settings (``val_kwargs``). No
  validation before training: the base model is evaluated as its own pseudo-run.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from clipo.data.registry import eval_files, get_dataset
from clipo.errors import ConfigError
from clipo.verl import cpu
from clipo.methods import Clipo, Method, Track
from clipo.runs import RunSpec, TrainOptions, TrainRun, resolve

ENTRY_POINT = ("python", "-m", "clipo.verl.main")
TRAINER_MODE = "clipo_sync"
WORKER_PATCH = "clipo.verl.worker_patch"
REWARD_FUNCTION = ("pkg://clipo.rewards", "compute_score")


@dataclass(frozen=True)
class VerlRun:
    """Everything one verl training run needs, resolved from the paper tables."""

    spec: RunSpec
    track: Track
    method: Method
    clipo: Clipo | None
    model_path: str
    data_dir: str
    out_dir: str
    steps_per_epoch: int | None
    """None on the CPU track, which counts steps instead of epochs."""
    head_warmup_steps: int
    """Steps that train only the head (``critic_warmup`` - 1)."""
    total_training_steps: int | None
    """Cap on RL steps (smoke tests); None trains ``track.total_epochs`` epochs."""
    lr: float
    train_batch_size: int
    """Prompts per step."""
    ppo_mini_batch_size: int
    max_response_length: int
    overrides: tuple[str, ...]
    """Extra Hydra overrides, checked against the run id (``check_overrides``)."""

    @property
    def on_cpu(self) -> bool:
        """A CPU run (the mini track: no GPUs per node): verl's trainer with ``clipo.verl.cpu``'s plugin."""
        return self.track.n_gpus_per_node == 0

    @property
    def critic_warmup(self) -> int:
        return self.head_warmup_steps + 1 if self.head_warmup_steps > 0 else 0


def plan_run(track: str, method: str, clipo: str = "none", **options) -> VerlRun:
    """A verl run from ``clipo.runs.TrainOptions`` fields (the checks are ``clipo.runs.resolve``'s)."""
    return verl_run(resolve(TrainOptions(backend="verl", track=track, method=method, clipo=clipo, **options)))


def verl_run(run: TrainRun) -> VerlRun:
    """The verl-side derived values of a resolved run: steps per epoch and the head warm-up in steps."""
    check_overrides(run.options.overrides)
    train = get_dataset(run.track.train_files[0])
    steps_per_epoch = None if train.rows is None else train.rows // run.train_batch_size
    if steps_per_epoch is None:
        if run.steps is None:  # the mini track always has a step count (clipo.runs.resolve)
            raise ConfigError(f"track {run.track.name!r}: its training file has no fixed size; give --steps")
    elif steps_per_epoch < 1:
        raise ConfigError(f"train_batch_size={run.train_batch_size} (--train-batch-size) exceeds the "
                          f"{train.rows} rows of {train.path}: an epoch would have no step")
    warmup = run.head_warmup_steps
    if warmup is None:
        # Table 8's warm-up steps (one epoch) are the authors' literal critic_warmup: one step fewer head-only
        warmup = max(0, run.track.head_warmup_epochs * (steps_per_epoch or 0) - 1)
    return VerlRun(
        spec=run.spec,
        track=run.track,
        method=run.method,
        clipo=run.clipo,
        model_path=run.model_path,
        data_dir=run.options.data_dir,
        out_dir=run.out or f"results/verl/runs/{run.spec.run_id}",
        steps_per_epoch=steps_per_epoch,
        head_warmup_steps=warmup,
        total_training_steps=run.steps,
        lr=run.lr,
        train_batch_size=run.train_batch_size,
        ppo_mini_batch_size=run.ppo_mini_batch_size,
        max_response_length=run.max_new_tokens,
        overrides=run.options.overrides,
    )


RUN_KEYS: dict[str, str] = {
    "actor_rollout_ref.rollout.n": "--group-size",
    "data.seed": "--seed",
    "actor_rollout_ref.rollout.seed": "--seed",
    "actor_rollout_ref.model.path": "--model-path",
    "actor_rollout_ref.actor.optim.lr": "--lr",
    "data.train_batch_size": "--train-batch-size",
    "actor_rollout_ref.actor.ppo_mini_batch_size": "--mini-batch-size",
    "data.max_response_length": "--max-new-tokens",
    "trainer.total_training_steps": "--steps",
    "trainer.critic_warmup": "--head-warmup-steps",
    "trainer.experiment_name": "the run id",
    "trainer.default_local_dir": "--out",
    "algorithm.adv_estimator": "--method",
    "algorithm.filter_groups.enable": "--method",
    "actor_rollout_ref.actor.policy_loss.loss_mode": "--method",
    "actor_rollout_ref.actor.loss_agg_mode": "--method",
    "actor_rollout_ref.actor.clip_ratio_low": "--method",
    "actor_rollout_ref.actor.clip_ratio_high": "--method",
    "actor_rollout_ref.actor.use_kl_loss": "--method",
    "actor_rollout_ref.actor.kl_loss_coef": "--method",
    "actor_rollout_ref.actor.kl_loss_type": "--method",
    "data.train_files": "--track and --data-dir",
    "data.val_files": "--track and --data-dir",
    "clipo": "--clipo, --tau, --lam, --head-*, --reference-eps, --fixed-head, --seed, --out",
    "actor_rollout_ref.model.external_lib": "nothing (every run loads clipo's worker patch: CLIPO's hidden "
                                            "states and GMPO's registered loss)",
}
"""Override keys the run id or a ``clipo train`` option decides (``clipo`` covers clipo.*): an extra
override of one would train something other than the run id says."""


def _override_paths(override: str) -> list[str]:
    """The config paths an override can change: its key, and for ``group@package=...`` the package."""
    key = override.strip().lstrip("+~").split("=", 1)[0].strip()
    group, _, package = key.partition("@")
    return [p for p in (group.replace("/", "."), package) if p]


def _related(path: str, key: str) -> bool:
    """Whether setting or deleting ``path`` can change ``key``: the same node, a child, or a parent
    (``actor_rollout_ref.rollout={n:2}`` and ``~algorithm`` reach every key below them)."""
    return path == key or path.startswith(key + ".") or key.startswith(path + ".")


def check_overrides(overrides) -> None:
    """Refuse extra Hydra overrides that can change a key the run id or an option decides, naming the option.

    Hydra applies the extra overrides after the generated ones, so an override of the key itself, of a
    parent node (a dict assignment merges into it, a deletion removes it) or a config group placed at such a
    node would win; each is refused.
    """
    for override in overrides:
        if override.strip().startswith("-"):  # --config-name, -cd, --cfg job: another config, or no training
            raise ConfigError(f"{override!r} is a Hydra command-line flag, not an override (key=value); "
                              "the run's config is clipo/verl/config/clipo_trainer.yaml")
        for path in _override_paths(override):
            owned = [k for k in RUN_KEYS if _related(path, k)]
            if owned:
                options = ", ".join(dict.fromkeys(RUN_KEYS[k] for k in owned))
                raise ConfigError(f"override {override!r} would contradict the run id (it reaches "
                                  f"{', '.join(owned[:3])}{' ...' if len(owned) > 3 else ''}); set it with {options}")


_PLAIN = re.compile(r"[A-Za-z_/.][\w./:+@-]*")
_RESERVED = {"true", "false", "null", "none", "nan", "inf"}


def _value(v) -> str:
    """A Hydra override value: booleans lower-case; strings double-quoted only where Hydra's grammar
    needs it (the released file names hold '*')."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_value(x)}" for k, x in v.items()) + "}"
    text = str(v)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _files(data_dir: str, datasets) -> list[str]:
    return [str(Path(data_dir) / d.path) for d in datasets]


def build_overrides(run: VerlRun) -> list[str]:
    """The full override list of a run, grouped as verl's config is."""
    t, m, c = run.track, run.method, run.clipo
    micro = t.micro_batch_size
    sections: list[tuple[str, dict]] = [
        (
            "data",
            {
                "train_files": _files(run.data_dir, [get_dataset(k) for k in t.train_files]),
                "val_files": _files(run.data_dir, eval_files(t.name)),
                "train_batch_size": run.train_batch_size,
                "max_prompt_length": t.max_prompt_length,
                "max_response_length": run.max_response_length,
                "filter_overlong_prompts": t.filter_overlong_prompts,
                "truncation": t.truncation,
                "seed": run.spec.seed,
            },
        ),
        (
            "algorithm",
            {
                "adv_estimator": m.adv_estimator,
                "norm_adv_by_std_in_grpo": True,
                "use_kl_in_reward": False,
                "filter_groups.enable": m.dynamic_sampling,
                "filter_groups.metric": "reward",
            },
        ),
        (
            "actor_rollout_ref.model",
            {
                "path": run.model_path,
                "enable_gradient_checkpointing": t.gradient_checkpointing,
                "use_remove_padding": True,
                "external_lib": WORKER_PATCH,
            },
        ),
        (
            "actor_rollout_ref.actor",
            {
                "optim.lr": run.lr,
                "ppo_mini_batch_size": run.ppo_mini_batch_size,
                "ppo_micro_batch_size_per_gpu": micro,
                "use_dynamic_bsz": t.use_dynamic_bsz,
                "ppo_max_token_len_per_gpu": t.ppo_max_token_len_per_gpu,
                "policy_loss.loss_mode": m.policy_loss,
                "loss_agg_mode": m.loss_agg_mode,
                "clip_ratio_low": m.clip_ratio_low,
                "clip_ratio_high": m.clip_ratio_high,
                "use_kl_loss": m.use_kl_loss,
                "kl_loss_coef": m.kl_loss_coef,
                "kl_loss_type": m.kl_loss_type,
                "entropy_coeff": 0.0,
                "ulysses_sequence_parallel_size": 1,
                "fsdp_config.param_offload": t.actor_param_offload,
                "fsdp_config.optimizer_offload": t.actor_optimizer_offload,
            },
        ),
        (
            "actor_rollout_ref.rollout",
            {
                "name": "sglang",
                "n": run.spec.group_size,
                "temperature": t.rollout_temperature,
                "tensor_model_parallel_size": t.tensor_model_parallel_size,
                "gpu_memory_utilization": t.rollout_gpu_memory_utilization,
                "max_num_seqs": t.rollout_max_num_seqs,
                "max_num_batched_tokens": t.rollout_max_num_batched_tokens,
                "log_prob_micro_batch_size_per_gpu": micro,
                "seed": run.spec.seed,
                "val_kwargs.n": t.val_n,
                "val_kwargs.do_sample": t.val_do_sample,
                "val_kwargs.temperature": t.val_temperature,
                "val_kwargs.top_p": t.val_top_p,
            },
        ),
        (
            "actor_rollout_ref.ref",
            {
                "log_prob_micro_batch_size_per_gpu": micro,
                "fsdp_config.param_offload": t.ref_param_offload,
            },
        ),
        ("reward.custom_reward_function", {"path": REWARD_FUNCTION[0], "name": REWARD_FUNCTION[1]}),
        (
            "trainer",
            {
                "use_v1": True,
                "v1.trainer_mode": TRAINER_MODE,
                "total_epochs": t.total_epochs,
                "total_training_steps": run.total_training_steps,
                "critic_warmup": run.critic_warmup,
                "n_gpus_per_node": t.n_gpus_per_node,
                "nnodes": t.nnodes,
                "project_name": "clipo",
                "experiment_name": run.spec.run_id,
                "logger": ["console"],
                "default_local_dir": str(Path(run.out_dir) / "checkpoints"),
                "resume_mode": "auto",
                "save_freq": t.save_freq or run.steps_per_epoch,
                "max_actor_ckpt_to_keep": t.max_checkpoints_to_keep,
                "test_freq": t.test_freq,
                "val_before_train": False,
            },
        ),
        ("clipo", _clipo_values(c, run)),
    ]
    flat = {f"{prefix}.{key}": value for prefix, values in sections for key, value in values.items()}
    if run.on_cpu:
        flat = _on_cpu(flat, run)
    return [f"{key}={_value(value)}" for key, value in flat.items()]


CPU_WORKERS = 1
"""Training processes (FSDP ranks) of a CPU run; the rollout server is one more process."""


def _on_cpu(flat: dict, run: VerlRun) -> dict:
    """The CPU track's differences: verl's CPU settings (``clipo.verl.cpu``), a step count instead of
    epochs, micro-batches that fit the batch, the mini trainer's checkpoint interval, and validation
    on ``val_size`` rows of the track's first benchmark (every benchmark in full would take longer
    than training)."""
    t = run.track
    flat = {**flat, **cpu.overrides(CPU_WORKERS)}
    # without dynamic batch size verl needs micro-batches that divide each worker's share of a mini-batch
    g, w = run.spec.group_size, CPU_WORKERS
    micro = math.gcd(t.micro_batch_size, run.ppo_mini_batch_size * g // w, run.train_batch_size * g // w)
    flat.update({
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": micro,
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": micro,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": micro,
        "data.val_files": _files(run.data_dir, eval_files(t.name)[:1]),
        "data.val_max_samples": t.val_size,
        "trainer.total_epochs": run.total_training_steps,
        "trainer.save_freq": t.checkpoint_every,
    })
    return flat


def _clipo_values(c: Clipo | None, run: VerlRun) -> dict:
    values: dict = {"enable": c is not None}
    if c is not None:
        values.update(
            {
                "loss": c.loss,
                "temperature": c.temperature,
                "lam": c.lam,
                "floor": c.floor,
                "head_output_size": c.head_output_size,
                "head_kind": c.head_kind,
                "head_lr": c.head_lr,
                "head_weight_decay": c.head_weight_decay,
                "fixed_head": c.fixed_head,
                "reference_eps": c.reference_eps,
            }
        )
    values.update({"seed": run.spec.seed, "out_dir": run.out_dir})
    return values


def command(run: VerlRun) -> list[str]:
    """argv of the training command (portable: ``python`` from PATH), extra overrides last."""
    return [*ENTRY_POINT, *build_overrides(run), *run.overrides]


def format_command(argv: list[str]) -> str:
    """The command as one shell line, one override per line for reading."""
    head, overrides = argv[: len(ENTRY_POINT)], argv[len(ENTRY_POINT) :]
    return " \\\n    ".join([" ".join(head), *(shlex.quote(a) for a in overrides)])
