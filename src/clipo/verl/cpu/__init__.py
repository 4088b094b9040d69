"""verl 0.9.1 on a CPU: what a CPU lacks, supplied through verl's own extension points.

Everything else — trainer loop, Ray workers, TransferQueue, FSDP, checkpoints, model merger — is
verl's, unchanged. This module is import-light (no verl): the environment and the overrides a CPU run
adds. The registrations live in ``clipo.verl.cpu.plugin``, which verl imports in every process.
"""

from __future__ import annotations

PLUGIN = "clipo.verl.cpu.plugin"
ROLLOUT_NAME = "hf_cpu"

ENV = {
    "VERL_PLATFORM": "cpu",
    "VERL_USE_EXTERNAL_MODULES": PLUGIN,
    # one compute thread per process: a run starts several (trainer, workers, rollout, agent loop)
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Environment of every process of a CPU run: the launcher sets it, Ray's workers inherit it."""


RAY_CPU_SLOTS = 16


def overrides(workers: int) -> dict[str, object]:
    """verl settings of a CPU run with ``workers`` training processes (FSDP ranks) on one node."""
    return {
        "trainer.device": "cpu",
        "trainer.n_gpus_per_node": workers,
        "trainer.nnodes": 1,
        "actor_rollout_ref.rollout.name": ROLLOUT_NAME,
        "actor_rollout_ref.rollout.n_gpus_per_node": workers,
        "actor_rollout_ref.actor.strategy": "fsdp2",
        "actor_rollout_ref.ref.strategy": "fsdp2",
        # flash-attention 2 is CUDA-only; transformers' SDPA masks packed (remove-padding) sequences
        "+actor_rollout_ref.model.override_config.attn_implementation": "sdpa",
        # fp32 compute as the mini trainer (verl's default FSDP compute dtype is bf16), no torch.compile
        **{f"+actor_rollout_ref.{role}.fsdp_config.mixed_precision": {"param_dtype": "fp32", "reduce_dtype": "fp32",
                                                                      "buffer_dtype": "fp32"}
           for role in ("actor", "ref")},
        "actor_rollout_ref.actor.fsdp_config.use_torch_compile": False,
        "actor_rollout_ref.ref.fsdp_config.use_torch_compile": False,
        "actor_rollout_ref.rollout.dtype": "float32",
        # Ray's resources are scheduling tokens: "GPU" counts training slots (the cpu platform keeps
        # verl's GPU resource name), "CPU" must cover what verl's actors reserve (3 per placement-group
        # bundle, 1 per TransferQueue unit, agent-loop and reward workers). Threads: OMP_NUM_THREADS.
        "+ray_kwargs.ray_init.num_gpus": workers,
        "ray_kwargs.ray_init.num_cpus": RAY_CPU_SLOTS,
        "transfer_queue.backend.SimpleStorage.num_data_storage_units": 1,
        # one process each instead of verl's 8: every process imports verl (~10 s of a small CPU)
        "actor_rollout_ref.rollout.agent.num_workers": 1,
        "reward.num_workers": 1,
        "data.dataloader_num_workers": 0,
        "+ray_kwargs.ray_init.include_dashboard": False,
    }
