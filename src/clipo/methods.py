"""The one table of the paper's hyperparameters: methods × tracks × CLIPO variants.

Every value that the paper states (App. A.1.1, Tables 8 and 9, §4.1) lives here exactly once and
feeds both backends: the CPU mini trainer (``clipo.mini``) reads these dataclasses directly and the
verl backend (``clipo.verl``) turns them into command-line overrides. The ``mini`` track is this
project's own CPU-sized analogue of Track I; its values are design choices, not paper values.

Lookups by name fail with one error that lists the valid names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from clipo.errors import ConfigError


def _lookup(table: dict, name: str, what: str):
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown {what} {name!r}; valid: {', '.join(sorted(table))}") from None


# --------------------------------------------------------------------------------------------
# Policy-optimisation methods (paper App. A.1.1). Names of losses / estimators are verl registry keys
# (geo_mean_global is the project's, registered by clipo.verl.losses).
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """One group-based RLVR method; differs from the others only by these registry entries."""

    name: str
    policy_loss: str
    """verl ``POLICY_LOSS_REGISTRY`` key (actor.policy_loss.loss_mode). GMPO's is the project's
    ``geo_mean_global``: verl's ``geo_mean`` averages per micro-batch, which verl's engine then sums
    (clipo.verl.losses)."""
    loss_agg_mode: str
    """How token losses are aggregated (actor.loss_agg_mode)."""
    clip_ratio_low: float
    clip_ratio_high: float
    use_kl_loss: bool
    """KL(π‖π_ref) as a separate loss term (needs a frozen reference model)."""
    kl_loss_coef: float = 0.0
    kl_loss_type: str = "low_var_kl"
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: drop groups whose rewards have zero variance and refill the batch.
    Implemented in the mini trainer (clipo.mini.train; at most ``Track.max_gen_rounds`` rounds per step);
    on verl ``algorithm.filter_groups``, which keeps the step count and reads extra prompts for the
    refills. Differs from the authors' release, whose trainer has no dynamic sampling (docs/gpu.md)."""
    adv_estimator: str = "grpo"
    """verl advantage-estimator registry key; all four methods use GRPO's group normalisation."""
    label: str = ""
    """How tables, figures and the report print it (default: the name in capitals, GRPO as the paper)."""

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", self.name.upper())


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("grpo", "vanilla", "token-mean", 0.2, 0.2, use_kl_loss=True, kl_loss_coef=0.001),
        Method("gspo", "gspo", "seq-mean-token-mean", 3e-4, 4e-4, use_kl_loss=False),
        Method("dapo", "vanilla", "token-mean", 0.2, 0.28, use_kl_loss=False, dynamic_sampling=True),
        Method("gmpo", "geo_mean_global", "token-mean", 0.4, 0.4, use_kl_loss=False),
    )
}


def get_method(name: str) -> Method:
    return _lookup(METHODS, name, "method")


def _check_name(name: str, what: str, taken) -> None:
    """A registered name is a run-id field: non-empty, no '_', not 'base', 'none' or '*-fixed'."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name) or name in ("base", "none") or name.endswith("-fixed"):
        raise ConfigError(f"{what} name {name!r}: lower-case letters, digits, '.' and '-' (a run-id field), "
                          "not 'base', 'none' or ending in '-fixed'")
    if name in taken:
        raise ConfigError(f"{what} {name!r} is registered already")


def register_method(method: Method) -> Method:
    """Add a method; the run grid, the config check, every table and figure and the labels pick it up."""
    _check_name(method.name, "method", METHODS)
    METHODS[method.name] = method
    return method


# --------------------------------------------------------------------------------------------
# CLIPO: contrastive head and reward (paper §3, §4.1, Table 9)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContrastiveLoss:
    """A contrastive loss of CLIPO as configs, tables and figures know it; its maths is the function
    registered under the same name in ``clipo.contrastive`` (kept apart so this table needs no torch)."""

    name: str
    """Name in configs and run ids (``clipo: infonce``)."""
    label: str
    """As the paper prints it (Tables 13/14, Figure 3)."""
    lam: float
    """Default λ of eq. 12 for this loss."""
    fixed_head_variant: bool = False
    """Also offer ``<name>-fixed``, the ablation whose head keeps its random initialisation."""


CONTRASTIVE_LOSSES: dict[str, ContrastiveLoss] = {}
"""The contrastive-loss registry, in the paper's order; τ is a track setting (Track.clipo_temperature)."""


def register_contrastive_loss(name: str, label: str, lam: float, fixed_head_variant: bool = False) -> ContrastiveLoss:
    """Add a contrastive loss (its maths: ``clipo.contrastive.register_contrastive_loss_fn``)."""
    _check_name(name, "contrastive loss", CONTRASTIVE_LOSSES)
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ConfigError(f"contrastive loss {name!r}: lam={lam!r} must be a finite number >= 0")
    entry = CONTRASTIVE_LOSSES[name] = ContrastiveLoss(name, label, float(lam), fixed_head_variant)
    return entry


# paper §4.1: λ = 0.2 for InfoNCE and SupCon, 1.0 for SoftNN; the fixed-head ablation is InfoNCE's
register_contrastive_loss("infonce", "InfoNCE", 0.2, fixed_head_variant=True)
register_contrastive_loss("supcon", "SupCon", 0.2)
register_contrastive_loss("softnn", "SoftNN", 1.0)


def get_contrastive_loss(name: str) -> ContrastiveLoss:
    return _lookup(CONTRASTIVE_LOSSES, name, "contrastive loss")


REWARD_FLOOR = -0.5
"""Lower clip of the contrastive reward (eq. 12)."""


@dataclass(frozen=True)
class Clipo:
    """Settings of the contrastive head and reward; ``None`` in a run means CLIPO is off."""

    loss: str = "infonce"
    """Contrastive loss: infonce (one sampled positive), supcon (mean over positives), softnn (sum)."""
    temperature: float = 0.05
    """τ of eq. 8 (Table 9)."""
    lam: float = 0.2
    """λ of eq. 12; defaults per loss in CONTRASTIVE_LOSSES."""
    floor: float = REWARD_FLOOR
    head_output_size: int = 512
    head_kind: str = "linear"
    head_lr: float = 1e-3
    head_weight_decay: float = 0.01
    fixed_head: bool = False
    """Ablation CLIPO-fixed: the head keeps its random initialisation."""
    reference_eps: float = 0.0
    """> 0 reproduces the released code's eps-inside-the-log numerics (see clipo.contrastive)."""

    def __post_init__(self):
        if self.loss not in CONTRASTIVE_LOSSES:
            raise ConfigError(f"clipo.loss={self.loss!r}; valid: {', '.join(CONTRASTIVE_LOSSES)}")
        if self.head_kind not in ("linear", "mlp"):
            raise ConfigError(f"clipo.head_kind={self.head_kind!r}; valid: linear, mlp")
        for name, low, strict in (("temperature", 0, True), ("lam", 0, False), ("reference_eps", 0, False),
                                  ("head_lr", 0, True), ("head_weight_decay", 0, False)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)
                    and (value > low if strict else value >= low)):
                raise ConfigError(f"clipo.{name}={value!r} must be a finite number {'>' if strict else '>='} {low}")
        if not (isinstance(self.floor, (int, float)) and math.isfinite(self.floor)):
            raise ConfigError(f"clipo.floor={self.floor!r} must be a finite number")
        if not (isinstance(self.head_output_size, int) and self.head_output_size >= 1):
            raise ConfigError(f"clipo.head_output_size={self.head_output_size!r} must be an integer >= 1")


class _VariantNames(Sequence):
    """The CLIPO variants, read from the loss registry at each use: 'none', every loss, then the
    fixed-head ablations (``infonce-fixed``, Tables 3, 11, 12). A live view, so a loss registered
    after import is a valid variant everywhere this name was imported."""

    def _names(self) -> tuple[str, ...]:
        losses = CONTRASTIVE_LOSSES.values()
        return ("none", *(c.name for c in losses), *(f"{c.name}-fixed" for c in losses if c.fixed_head_variant))

    def __getitem__(self, i):
        return self._names()[i]

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr(self._names())


CLIPO_VARIANTS: Sequence[str] = _VariantNames()
"""The variants the paper's tables compare, from the loss registry."""


def clipo_variant(variant: str, track: "Track", **overrides) -> Clipo | None:
    """The CLIPO settings of a named variant on a track (head size from the track), or None for 'none'."""
    if variant not in CLIPO_VARIANTS:
        raise ConfigError(f"unknown clipo variant {variant!r}; valid: {', '.join(CLIPO_VARIANTS)}")
    if variant == "none":
        return None
    loss = variant.removesuffix("-fixed")
    base = Clipo(
        loss=loss,
        lam=CONTRASTIVE_LOSSES[loss].lam,
        temperature=track.clipo_temperature,
        head_output_size=track.head_output_size,
        fixed_head=variant.endswith("-fixed"),
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


# --------------------------------------------------------------------------------------------
# Tracks: data, model and the shared training protocol (Table 8, §4.1). 'mini' is the CPU analogue.
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Track:
    name: str
    model: str
    """Default policy: an HF hub id (GPU tracks) or the mini base-model folder name."""
    train_batch_size: int
    """Prompts per step."""
    ppo_mini_batch_size: int
    """Prompts per optimiser update (train_batch_size / this = updates per step)."""
    micro_batch_size: int
    max_prompt_length: int
    max_response_length: int
    lr: float
    total_epochs: int
    """Epochs including the head warm-up epoch."""
    head_warmup_epochs: int
    rollout_n: int
    """Group size G: rollouts per prompt."""
    rollout_temperature: float
    val_n: int
    val_do_sample: bool
    val_temperature: float
    val_top_p: float
    head_output_size: int
    clipo_temperature: float
    # verl/GPU-only settings (ignored by the mini trainer)
    n_gpus_per_node: int = 8
    nnodes: int = 1
    tensor_model_parallel_size: int = 1
    ref_param_offload: bool = False
    actor_param_offload: bool = False
    actor_optimizer_offload: bool = False
    use_dynamic_bsz: bool = True
    gradient_checkpointing: bool = True
    filter_overlong_prompts: bool = True
    truncation: str = "error"
    ppo_max_token_len_per_gpu: int = 16384
    """Token budget of one GPU micro-batch under dynamic batch size. Paper: silent; the released scripts
    use 2 × (max_prompt_length + max_response_length), set per track below."""
    rollout_gpu_memory_utilization: float = 0.8
    """Share of GPU memory SGLang may take. Paper: silent; released scripts: 0.8."""
    rollout_max_num_seqs: int = 1024
    """Requests SGLang runs at once (its max_running_requests). Paper: silent; released scripts: 1024."""
    rollout_max_num_batched_tokens: int = 8192
    """Released scripts: max_prompt_length + max_response_length (set per track below). verl 0.9.1 hands
    it to vLLM and TensorRT-LLM only, not to SGLang: recorded so the command matches the released one."""
    test_freq: int = -1
    """Steps between in-training validation runs (-1: none; verl also validates after the last step).
    Paper: silent; released scripts: 7 (Track I) / 29 (Track II). Only logged curves come from it; the
    tables use the separate evaluation. The mini trainer also validates before its first step
    (``val/reward`` at step 0)."""
    save_freq: int = 0
    """Steps between verl checkpoints (0: one per epoch; verl also saves after the last step). The
    released scripts save none; here a run cut off by its job's wall-time limit resumes from the
    latest (``trainer.resume_mode=auto``)."""
    max_checkpoints_to_keep: int = 2
    """verl checkpoints kept on disk; resume needs only the latest."""
    data_track: str = ""
    """Track whose released evaluation files and averages this track uses ('' = its own name)."""
    train_files: tuple[str, ...] = ()
    eval_benchmarks: tuple[str, ...] = ()
    # CPU mini trainer only (clipo.mini.train); the GPU tracks count epochs instead
    mini_steps: int = 0
    """RL steps of one mini run (head warm-up steps included)."""
    checkpoint_every: int = 0
    """Steps between checkpoints of the mini trainer (the last step is always checkpointed)."""
    max_gen_rounds: int = 1
    """DAPO dynamic sampling: generation rounds per step at most (the first + refills)."""
    val_size: int = 0
    """Prompts of the mini trainer's validation: the first rows of the track's first benchmark, each
    answered once at the rollout temperature from the same random draws every time (verl validates on
    every evaluation file instead)."""
    output_gain_lr: float | None = None
    """Learning rate of the final norm's gain (None: the policy lr). That gain is the policy's output
    temperature; see the mini track for why it may need its own rate."""


TRACKS: dict[str, Track] = {
    # Where the paper (Table 8, §4.1) and the authors' released scripts (scripts/train_gsm8k.sh,
    # scripts/train_math.sh) disagree, the paper's value is kept and the script's noted beside it; where
    # the paper is silent, the script's value is used and marked "released".
    "I": Track(
        name="I", model="Qwen/Qwen2.5-3B-Instruct",
        train_batch_size=512, ppo_mini_batch_size=256, micro_batch_size=32,
        max_prompt_length=512, max_response_length=2048, lr=1e-6,
        # 6 epochs incl. 1 head warm-up epoch of 14 steps (Table 8), passed as the released script does:
        # critic_warmup=14, i.e. 13 head-only steps under verl's rule (clipo.verl.overrides).
        total_epochs=6, head_warmup_epochs=1, rollout_n=16, rollout_temperature=1.0,
        # Table 8 lists "temperature 0.6" next to do_sample=False for Track I: with greedy decoding the
        # temperature has no effect. We keep do_sample=False (greedy) as the documented choice.
        val_n=1, val_do_sample=False, val_temperature=0.6, val_top_p=0.95,
        head_output_size=512, clipo_temperature=0.05, ref_param_offload=True,
        ppo_max_token_len_per_gpu=2 * (512 + 2048),  # released: 5,120
        rollout_max_num_batched_tokens=512 + 2048,  # released: 2,560
        # Job length, an ESTIMATE (no GPU run yet): 8,192 rollouts of mostly short GSM8K answers per step,
        # ≈ 1.5-3 min → 84 steps ≈ 2-4 h plus 12 greedy validations (8 benchmarks, n = 1) of minutes
        # each: one 24 h job (configs/paper.yaml runtime) holds a run; a checkpoint per epoch (14 steps).
        test_freq=7,  # released
        train_files=("gsm8k_train",),
        eval_benchmarks=("GSM8K", "SYM", "P1", "P2", "cQA", "tQA", "thrmQA", "MMLU"),
    ),
    "II": Track(
        name="II", model="Qwen/Qwen2.5-7B-Instruct",
        train_batch_size=128, ppo_mini_batch_size=128, micro_batch_size=16,
        max_prompt_length=512, max_response_length=4096, lr=1e-6,
        # Table 8: 9 epochs incl. 1 warm-up epoch of 58 steps, critic_warmup=58 as in the script (57
        # head-only steps under verl's rule). Epochs: 9, not the script's total_epochs=10, because the
        # paper says it twice, independently (Table 8; §4.1: "8 epochs, with a similar early warmup" = 8 + 1),
        # while the script is one file that may have been edited after the runs; 10 would be 58 more steps.
        total_epochs=9, head_warmup_epochs=1, rollout_n=16, rollout_temperature=1.0,
        val_n=16, val_do_sample=True, val_temperature=0.6, val_top_p=0.95,
        # τ = 0.02: the τ of Table 2's CLIPO rows (Table 17's τ=0.02 row repeats them; configs/paper.yaml
        # and clipo.analysis.paper_tables use it). The released train_math.sh says 0.05 (Table 9's
        # default); the paper's tables win.
        head_output_size=2048, clipo_temperature=0.02, ref_param_offload=False,
        ppo_max_token_len_per_gpu=2 * (512 + 4096),  # released: 9,216
        rollout_max_num_batched_tokens=512 + 4096,  # released: 4,608
        # Job length, an ESTIMATE (no GPU run yet): ≈ 3-4 min per step × 522 steps ≈ 26-35 h, more than
        # the 24 h most partitions allow, so a run takes two jobs: the second resumes from the latest
        # checkpoint (docs/gpu.md, "Wall-time limits"). Checkpoints every 29 steps (half an epoch,
        # ≈ 1.5-2 h): a cut loses at most that, for 9 more checkpoint writes (≈ 2-3 min each) than one
        # per epoch. Validation: the released test_freq=29 means 18 runs of 1,201 problems × 16 samples
        # (≈ 19,000 responses ≤ 4,096 tokens, ≈ 9 steps' generation, ≈ 15-25 min each, ≈ 5-7 h in all)
        # that only feed curves; every 116 steps (2 epochs) keeps 5 points (116 … 464 and the last step)
        # for ≈ 1-2 h.
        test_freq=116,  # released: 29
        save_freq=29,
        train_files=("math_train",),
        eval_benchmarks=("Math", "Math_S", "Math_H", "AMC", "AIME", "AIME25"),
    ),
    # One-GPU analogue of Track I (not in the paper): Qwen2.5-1.5B-Instruct on the released GSM8K train
    # file, evaluated on Track I's eight benchmarks with Track I's protocol, on ONE 80 GB GPU. Design
    # choices, each sized for one GPU and a few hours per run:
    # - batch 128 prompts × G=8 (1,024 rollouts per step, as many as Track I's per-GPU share of 8,192
    #   over 8 GPUs), mini-batch 64 (2 updates per step, as Track I), responses ≤ 1,024 tokens
    #   (Qwen2.5-1.5B-Instruct's GSM8K answers are a few hundred tokens);
    # - 3 epochs incl. the head warm-up epoch: 7473 // 128 = 58 steps per epoch, 174 steps per run;
    # - no parameter sharding on one GPU, so SGLang gets half the memory (0.5 × 80 GB; weights 3 GB +
    #   KV cache) next to the resident actor (fp32 weights, gradients, AdamW ≈ 24 GB) and the
    #   offloaded reference model;
    # - lr, clip ranges, KL, head size and τ are Track I's.
    # Time per run, an ESTIMATE (not measured: no verl run on a GPU has been possible here): ≈ 40-60 s per step
    # on an H100-class GPU (generation of ≤ 1 M tokens plus three passes over them) → 2-3 h for 174
    # steps, plus ≈ 10 min of evaluation; configs/gpu-1.yaml's 6 runs ≈ 13-19 GPU-hours.
    "small": Track(
        name="small", model="Qwen/Qwen2.5-1.5B-Instruct",
        train_batch_size=128, ppo_mini_batch_size=64, micro_batch_size=16,
        max_prompt_length=512, max_response_length=1024, lr=1e-6,
        total_epochs=3, head_warmup_epochs=1, rollout_n=8, rollout_temperature=1.0,
        val_n=1, val_do_sample=False, val_temperature=0.6, val_top_p=0.95,
        head_output_size=512, clipo_temperature=0.05, ref_param_offload=True,
        n_gpus_per_node=1,
        ppo_max_token_len_per_gpu=2 * (512 + 1024),  # the released scripts' rule
        rollout_gpu_memory_utilization=0.5,
        rollout_max_num_batched_tokens=512 + 1024,
        test_freq=-1,
        data_track="I",
        train_files=("gsm8k_train",),
        eval_benchmarks=("GSM8K", "SYM", "P1", "P2", "cQA", "tQA", "thrmQA", "MMLU"),
    ),
    # CPU analogue of Track I: a tiny Qwen2 trained from scratch on synthetic arithmetic, sized so one
    # RL run takes ~1-2 minutes on one core. Every value below was chosen by measurement on GRPO only, on
    # the all-worked 400-step base that preceded MiniSFT.bare_answer_share; on today's base the same
    # recipe raises greedy Test by ~18 points (docs/mini-track.md has the tables and times):
    # - lr 3e-5: 1e-4 and 3e-4 (one update of 32 prompts per step) lowered greedy Test Pass@1 within
    #   30 steps (39.0 vs base 43.5 at 1e-4); 3e-5 leaves it where it was.
    # - output_gain_lr 4e-2: the final norm's gain is the policy's output temperature (doubling it turns
    #   the base's T=1 accuracy 23% into its T=0.5 accuracy, 41%). At the policy lr, Adam needs ~1/lr
    #   steps to move that O(1) gain, so GRPO at 3e-5 alone left the training reward flat for 30 steps.
    #   With its own rate Test-T1 rises from 23.9 by +9.5 in 10 steps at 4e-2 (mean of 3 seeds; 5e-2
    #   gives the same, 3e-2 needs 20 steps, 2e-2 40); 5e-2 collapsed after ~25 steps of a 40-step run.
    # - 16 prompts × G=8 per step in two updates of 8 prompts, 10 steps: 1,280 rollouts per run, ~45 s,
    #   so 10 runs and 11 evaluations fit the 15-minute default (docs/mini-track.md, frontier).
    # - validation on 128 fixed Test prompts every 2 steps (~1 s each, 6-8 s of a run): a step's
    #   reward/outcome comes from 16 new prompts, and which prompts they are moves it by ±0.05 (a frozen
    #   policy's rollout reward ranged 0.17-0.30 over 10 steps), as much as 10 steps of learning; fixed
    #   prompts and fixed random draws leave only the policy's change in the curve.
    "mini": Track(
        name="mini", model="mini-base",
        train_batch_size=16, ppo_mini_batch_size=8, micro_batch_size=32,
        max_prompt_length=96, max_response_length=64, lr=3e-5,
        total_epochs=1, head_warmup_epochs=0, rollout_n=8, rollout_temperature=1.0,
        val_n=1, val_do_sample=False, val_temperature=0.6, val_top_p=0.95,
        head_output_size=64, clipo_temperature=0.05,
        n_gpus_per_node=0, use_dynamic_bsz=False, gradient_checkpointing=False,
        train_files=("mini_train",),
        eval_benchmarks=("Test", "Test-T1", "SYM", "P1", "P2", "MC"),
        mini_steps=10, checkpoint_every=5, max_gen_rounds=3, output_gain_lr=4e-2,
        test_freq=2, val_size=128,
    ),
}

PAPER_MODELS: dict[str, str] = {
    "qwen2.5-3b-instruct": "Qwen/Qwen2.5-3B-Instruct",
    "qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct",
    "ds-r1-distill-qwen-7b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    "llama3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "qwen2.5-1.5b-instruct": "Qwen/Qwen2.5-1.5B-Instruct",
}
"""Short model names used in run ids → HF hub ids (paths are configurable in the workflow config): the
paper's four and the one-GPU track's."""


def get_track(name: str) -> Track:
    return _lookup(TRACKS, name, "track")


# --------------------------------------------------------------------------------------------
# Mini track base model: tokenizer + tiny Qwen2 + SFT warm start (design choices, not paper values)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MiniSFT:
    """How `clipo sft` builds the mini "Base Model" (../shared/design/mini-track.md)."""

    vocab_size: int = 600
    """Upper bound of the byte-level BPE vocabulary trained on the synthetic corpus."""
    hidden_size: int = 128
    """Qwen2 width: 4 layers × 128 ≈ 1.1 M parameters, ~0.7 s per step on 2 cores."""
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 256
    """Prompt (≤ ~96 tokens) + response (≤ 64) fits with room to spare."""
    steps: int = 500
    """Accuracy rises as a phase change. With half the demonstrations bare, 500 steps make the base's
    worked answers right about twice as often as its bare ones at T = 1; after 400 they were not, and RL
    had nothing to prefer (docs/mini-track.md has every base measured)."""
    batch_size: int = 64
    micro_batches: int = 4
    """Length-sorted micro-batches per step (one gradient step): 1.12× the real tokens padded instead of
    1.52× for the whole batch, the same gradient up to float rounding (fewer when the batch is smaller)."""
    lr: float = 2e-3
    """Peak AdamW learning rate (linear warm-up, then cosine decay to 10%)."""
    warmup_steps: int = 20
    weight_decay: float = 0.01
    checkpoint_every: int = 50
    """Steps between resumable checkpoints (a killed `clipo sft` restarts from the latest)."""
    bare_answer_share: float = 0.5
    """Share of the demonstrations cut to their final sentence, "The answer is \\boxed{N}.", as a teacher
    that often skips its work would write them (clipo.mini.sft.bare_answers). This is the headroom RL can
    take: the base answers most Test problems bare, mostly wrongly, and outcome rewards teach it to work
    them out (10 GRPO steps: greedy Test 27.1 → 43.6 and 46.3 on two seeds, no bare answer left;
    docs/mini-track.md, "A base that often skips its work"). 0 gives the all-worked base, on which no RL
    recipe tried raised greedy Test."""

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_position_embeddings", "steps", "batch_size", "micro_batches", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sft.{name}={getattr(self, name)!r} must be >= 1")
        if not self.lr > 0:
            raise ConfigError(f"sft.lr={self.lr!r} must be > 0")
        if not 0 <= self.bare_answer_share < 1:
            raise ConfigError(f"sft.bare_answer_share={self.bare_answer_share!r} must be in [0, 1)")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"sft.hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")
