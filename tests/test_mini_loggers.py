"""clipo.mini.loggers: the --logger list and the TensorBoard event files of the mini trainer."""

import pytest

from clipo.errors import ConfigError
from clipo.mini.loggers import DEFAULT_LOGGERS, MetricLoggers, parse_loggers


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """tag → [(step, value)] of every event file in ``folder``, as TensorBoard reads them."""
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_the_logger_list_is_verls_comma_list_with_console_by_default():
    assert parse_loggers(None) == DEFAULT_LOGGERS == ("console",)
    assert parse_loggers("console, tensorboard,console") == ("console", "tensorboard")
    assert parse_loggers("tensorboard") == ("tensorboard",)
    with pytest.raises(ConfigError, match="unknown logger 'wandb'; valid: console, tensorboard"):
        parse_loggers("console,wandb")


def test_without_tensorboard_nothing_is_written(tmp_path):
    loggers = MetricLoggers(("console",), tmp_path, first_step=1)
    loggers.log({"step": 1, "reward/outcome": 0.5})
    loggers.close()
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_gets_every_number_of_a_row_and_a_resume_replaces_the_lost_steps(tmp_path):
    pytest.importorskip("tensorboard")
    first = MetricLoggers(("tensorboard",), tmp_path, first_step=1)
    for step in (1, 2, 3):  # a crash after step 3, with the last checkpoint at step 2
        first.log({"step": step, "reward/outcome": step / 10, "train/policy_frozen": step == 1,
                   "clipo/loss": None, "note": "text"})
    first.close()
    resumed = MetricLoggers(("tensorboard",), tmp_path, first_step=3)
    resumed.log({"step": 3, "reward/outcome": 0.9, "train/policy_frozen": False})
    resumed.close()
    got = scalars(tmp_path / "tensorboard")
    assert sorted(got) == ["reward/outcome", "train/policy_frozen"]
    assert got["reward/outcome"] == [(1, pytest.approx(0.1)), (2, pytest.approx(0.2)), (3, pytest.approx(0.9))]
    assert [v for _, v in got["train/policy_frozen"]] == [1.0, 0.0, 0.0]


def test_the_verl_backend_refuses_the_mini_logger_option():
    from clipo.runs import TrainOptions, resolve

    with pytest.raises(ConfigError, match=r"trainer\.logger=\[console,tensorboard\]"):
        resolve(TrainOptions("verl", "II", "grpo", logger="tensorboard"))
