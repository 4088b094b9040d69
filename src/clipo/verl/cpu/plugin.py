"""Registrations of a CPU run, imported by verl in every process (``VERL_USE_EXTERNAL_MODULES``).

- the platform ``cpu`` (``clipo.verl.cpu.platform``, selected with ``VERL_PLATFORM=cpu``);
- verl's FSDP language-model engine for device ``cpu``: verl registers the same class for cuda/npu
  only, and the class itself is device-agnostic torch FSDP2;
- the rollout ``hf_cpu`` (``clipo.verl.cpu.rollout``) in verl's replica and adapter registries.

Three call sites have no extension point, so their modules' names are rebound (nothing is edited):
- verl's workers join their process group with the backend string ``cpu:gloo,<device>:<backend>``,
  which torch rejects when the device is ``cpu`` itself ("Duplicate device type cpu"): the workers'
  module gets a wrapper that asks for ``cpu:gloo`` once;
- the FSDP engine keeps forward-only models (the reference policy) under ``CPUOffloadPolicy(
  pin_memory=True)``, and pinning needs an accelerator ("Cannot access accelerator device when none
  is available"): the engine's module gets the same policy without pinning (on a CPU, offloading to
  the CPU moves nothing);
- verl's model config loads the tokenizer with ``AutoTokenizer``, which turns the mini tokenizer of a
  ``qwen2`` folder into ``Qwen2Tokenizer`` and spells every number digit by digit ("14" → "1", "4"),
  so the policy would see prompts it was never trained on: the model config's module gets a loader
  that reads the tokenizer as saved (``clipo.hf``; other folders still go through ``AutoTokenizer``).
  The agent loop then picks its prompt builder by the config's ``model_type`` (Qwen's for ``qwen2``),
  which needs Qwen's ``<|im_end|>``; a tokenizer without the tokens of its family's builder gets
  verl's default builder.
"""

# the platform first: importing verl's engines asks for the current platform
from clipo.verl.cpu.platform import PLATFORM_NAME  # isort: skip

from verl.plugin.platform import get_platform  # noqa: E402
from verl.utils import distributed  # noqa: E402
from verl.workers import engine_workers  # noqa: E402
from torch.distributed.fsdp import CPUOffloadPolicy  # noqa: E402
from verl.utils.tokenizer.tokenizer import set_pad_token_id  # noqa: E402
from verl.workers.config import model as model_config  # noqa: E402
from verl.workers.engine.base import EngineRegistry  # noqa: E402
from verl.workers.engine.fsdp import transformer_impl  # noqa: E402
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead  # noqa: E402
from verl.workers.rollout import base as rollout_base  # noqa: E402
from verl.workers.rollout.replica import RolloutReplicaRegistry  # noqa: E402

from clipo.verl.cpu import ROLLOUT_NAME  # noqa: E402

ROLLOUT_MODULE = "clipo.verl.cpu.rollout"


def _join_gloo_group(timeout_second=None, backend=None):
    return distributed.initialize_global_process_group_ray(timeout_second, backend=backend or "cpu:gloo")


def _unpinned_offload_policy(pin_memory: bool = False) -> CPUOffloadPolicy:
    return CPUOffloadPolicy(pin_memory=False)


def tokenizer_as_saved(name_or_path, correct_pad_token: bool = True, **_verl_kwargs):
    """verl's ``hf_tokenizer`` with the tokenizer class the folder declares (``clipo.hf``)."""
    from pathlib import Path

    from clipo.hf import _load_tokenizer

    tokenizer = _load_tokenizer(Path(name_or_path))
    if correct_pad_token:
        set_pad_token_id(tokenizer)
    return tokenizer


def _builder_for_tokenizer(tokenizer, **kwargs):
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    try:
        return create_continuous_token_builder(tokenizer, **kwargs)
    except ValueError as error:
        if "does not define required token" not in str(error):
            raise
        return create_continuous_token_builder(tokenizer, **{**kwargs, "model_family": "default"})


def _load_replica():
    # imported on use: the rollout module imports verl, which imports this plugin
    from clipo.verl.cpu.rollout import HFReplica

    return HFReplica


def register() -> None:
    """Idempotent: verl may import this module more than once per process."""
    engines = EngineRegistry._engines["language_model"]
    for backend in ("fsdp", "fsdp2"):
        if PLATFORM_NAME not in engines.get(backend, {}):
            EngineRegistry.register("language_model", backend, device=PLATFORM_NAME)(FSDPEngineWithLMHead)
    RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_replica)
    if get_platform().device_name == PLATFORM_NAME:  # never on an accelerator, where verl's own are right
        engine_workers.initialize_global_process_group_ray = _join_gloo_group
        transformer_impl.CPUOffloadPolicy = _unpinned_offload_policy
        model_config.hf_tokenizer = tokenizer_as_saved
        from verl.experimental.agent_loop import agent_loop  # here: it imports most of verl

        agent_loop.create_continuous_token_builder = _builder_for_tokenizer
    rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = f"{ROLLOUT_MODULE}.HFServerAdapter"


register()
