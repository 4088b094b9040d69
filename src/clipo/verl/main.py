"""``python -m clipo.verl.main <overrides>``: verl's ``main_ppo`` steps with the CLIPO config and trainer.

Same order as ``verl.trainer.main_ppo.main``: device set-up, ``validate_config``, ``run_ppo``. Two
differences: the Hydra config is ``config/clipo_trainer.yaml`` (verl's ``ppo_trainer`` plus ``clipo:``),
and the Ray task runner imports ``clipo.verl.trainer`` — which registers the ``clipo_sync`` trainer mode —
before verl looks the trainer class up. ``run.json`` (the fully resolved config and the command line)
goes to ``clipo.out_dir`` before training starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import ray
from omegaconf import DictConfig, OmegaConf
from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config
from verl.utils.device import auto_set_device

from clipo import records
from clipo.errors import ConfigError


class ClipoTaskRunner(TaskRunnerV1.__ray_actor_class__):
    """verl's v1 task runner; the import registers ``clipo_sync`` in the Ray actor's process."""

    def run(self, config: DictConfig):
        import clipo.verl.trainer  # noqa: F401  (registers the trainer mode)

        return super().run(config)


def write_run_json(config: DictConfig, argv: list[str]) -> Path | None:
    """The resolved config of the run, so the run folder records exactly what trained."""
    out_dir = config.clipo.get("out_dir")
    if not out_dir:
        return None
    record = {
        "backend": "verl",
        "run_id": config.trainer.experiment_name,
        "command": ["python", "-m", "clipo.verl.main", *argv],
        "config": OmegaConf.to_container(config, resolve=True),
    }
    return records.write_json(Path(out_dir) / records.RUN_FILE, record)


def check_platform(config: DictConfig) -> None:
    """A CPU run (``trainer.device=cpu``) needs verl's platform to be the CPU plugin's, chosen before
    verl resolved it (verl otherwise falls back to CUDA and resets the device)."""
    from verl.plugin.platform import get_platform

    from clipo.verl import cpu

    if config.trainer.device == "cpu" and get_platform().device_name != "cpu":
        env = " ".join(f"{k}={v}" for k, v in cpu.ENV.items())
        raise ConfigError(f"trainer.device=cpu: start verl with the CPU plugin's environment ({env}); "
                          "`clipo train --backend verl --track mini` does")


@hydra.main(config_path="config", config_name="clipo_trainer", version_base=None)
def main(config: DictConfig) -> None:
    from clipo.verl.trainer import check_config

    check_platform(config)
    auto_set_device(config)
    check_config(config)
    validate_config(
        config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config)
    )
    write_run_json(config, sys.argv[1:])
    run_ppo(config, task_runner_class=ray.remote(ClipoTaskRunner))


if __name__ == "__main__":
    main()
