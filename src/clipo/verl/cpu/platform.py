"""verl platform ``cpu``: training processes on CPU cores, collectives on gloo.

verl 0.9.1 ships CUDA, NPU and ROCm platforms and falls back to CUDA when none is detected; this one
is selected with ``VERL_PLATFORM=cpu``. Ray still schedules verl's workers by its accelerator resource,
so the platform keeps Ray's resource name ``GPU``: on a CPU machine that is a logical count of worker
slots, declared by ``ray.init(num_gpus=N)`` (``clipo.verl.cpu.ray_init_overrides``).
"""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, Optional

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

PLATFORM_NAME = "cpu"


def _no_op(*_args, **_kwargs):
    return None


def _zero(*_args, **_kwargs) -> int:
    return 0


def _memory_info(*_args) -> tuple[int, int]:
    """(free, total) bytes of host memory, as ``torch.cuda.mem_get_info`` reports device memory."""
    import psutil

    memory = psutil.virtual_memory()
    return memory.available, memory.total


class _CpuDeviceModule(SimpleNamespace):
    """What verl calls on ``torch.cuda``, for the host: RNG calls go to torch's CPU generator, memory
    statistics read 0 (no device allocator), cache and device selection do nothing."""

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cpu, name)


DEVICE_MODULE = _CpuDeviceModule(
    current_device=lambda: "cpu",
    device_count=lambda: 1,
    is_available=lambda: True,
    set_device=_no_op,
    synchronize=_no_op,
    empty_cache=_no_op,
    manual_seed=torch.manual_seed,
    manual_seed_all=torch.manual_seed,
    get_rng_state=lambda *_: torch.get_rng_state(),
    set_rng_state=lambda state, *_: torch.set_rng_state(state),
    memory_allocated=_zero,
    memory_reserved=_zero,
    max_memory_allocated=_zero,
    max_memory_reserved=_zero,
    reset_peak_memory_stats=_no_op,
    mem_get_info=_memory_info,
    ipc_collect=_no_op,
    get_device_name=lambda *_: "CPU",  # verl's FLOPs table has a "CPU" row
)


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """Host CPU as verl's device: ``cpu`` tensors, gloo collectives, no IPC, no profiler."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self):
        return DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # never auto-detected: a CUDA machine must not train on its CPU by accident
        return False

    def current_device(self) -> str:
        # verl passes it as a device argument (``.to(get_device_id())``): an int would mean cuda:N
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
