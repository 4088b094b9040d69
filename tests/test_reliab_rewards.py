"""compute_score is time-bounded in every thread and process, and reads every ground-truth entry (issue 22)."""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time

import pytest

from clipo import rewards
from clipo.rewards import compute_score

# Issue 22, item 2: 140 s in a threading.Thread before the fix, cut at CALL_BUDGET_S in the main thread.
INTERVALS = "\\boxed{" + "\\cup".join(f"[{2 * i},{2 * i + 1}]" for i in range(20)) + "}"
INTERVALS_GOLD = "x^{6}+1"


def _timed(*args) -> tuple[float, float]:
    started = time.perf_counter()
    score = compute_score(*args)
    return score, time.perf_counter() - started


def _in_thread(*args) -> tuple[float, float]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(_timed(*args)))
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "compute_score ran past 60 s in a worker thread"
    return result[0]


def test_hostile_answer_is_cut_off_in_a_worker_thread():
    assert _in_thread("conrl/math", "\\boxed{x+1}", "1+x")[0] == 1.0  # starts a worker (once per process)
    score, elapsed = _in_thread("conrl/math", INTERVALS, INTERVALS_GOLD)
    assert score == 0.0
    assert elapsed < rewards.CALL_BUDGET_S + rewards.WORKER_GRACE_S
    # the worker that was cut off still answers (or was replaced): symbolic matches keep scoring
    assert _in_thread("conrl/math", "\\boxed{x^2+2x+1}", "(x+1)^2")[0] == 1.0


def test_a_stuck_worker_is_killed_and_replaced(monkeypatch):
    """A worker that does not answer (code no signal interrupts) is killed after the grace period."""
    _in_thread("conrl/math", "\\boxed{x+1}", "1+x")
    monkeypatch.setattr(rewards, "WORKER_GRACE_S", 0.5)
    monkeypatch.setattr(rewards, "CALL_BUDGET_S", 0.1)
    with rewards._WORKERS._lock:
        stuck = rewards._WORKERS._idle[-1]
    stuck.process.send_signal(__import__("signal").SIGSTOP)  # frozen: it can never reply
    score, elapsed = _in_thread("conrl/math", "\\boxed{x^2+2x+1}", "(x+1)^2")
    assert score == 0.0 and elapsed < 3.0
    assert stuck.process.poll() is not None  # killed, not reused
    monkeypatch.setattr(rewards, "CALL_BUDGET_S", 1.0)
    assert _in_thread("conrl/math", "\\boxed{x^2+2x+1}", "(x+1)^2")[0] == 1.0


def test_hostile_answer_is_cut_off_in_a_process_pool():
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(_timed, "conrl/math", "\\boxed{x+1}", "1+x").result(timeout=120)[0] == 1.0
        score, elapsed = pool.submit(_timed, "conrl/math", INTERVALS, INTERVALS_GOLD).result(timeout=60)
    assert score == 0.0
    assert elapsed < rewards.CALL_BUDGET_S + rewards.WORKER_GRACE_S


def test_plain_numbers_never_leave_the_calling_thread(monkeypatch):
    """The mini track's answers are numbers: scoring them in a thread must not need a worker process."""
    def no_workers(*args):
        raise AssertionError("a worker process was asked")

    monkeypatch.setattr(rewards._WORKERS, "run", no_workers)
    assert _in_thread("clipo/mini/test", "so \\boxed{12}", "12")[0] == 1.0
    assert _in_thread("clipo/mini/test", "so \\boxed{13}", "12")[0] == 0.0
    assert _in_thread("clipo/mini/mc", "\\boxed{B}", "B")[0] == 1.0


def test_every_entry_of_a_long_ground_truth_list_counts():
    """Issue 22, item 13: the right answer 18th of 20 acceptable answers scored 0.0 (lists were cut at 16)."""
    golds = [str(i) for i in range(100, 120)]
    assert compute_score("conrl/gsm8k", "\\boxed{117}", golds) == 1.0
    assert compute_score("conrl/gsm8k", "\\boxed{999}", golds) == 0.0


@pytest.mark.parametrize("gold", [float("nan"), "nan", "NaN", math.inf, -math.inf, ["nan"], [float("nan"), "5"]])
def test_nan_or_infinite_ground_truth_never_scores(gold):
    """Issue 22, item 13: a NaN ground truth let \\boxed{nan} score 1.0; a reference must be a real answer."""
    for answer in ("nan", "NaN", "inf", "-inf", "\\infty"):
        assert compute_score("conrl/math", f"\\boxed{{{answer}}}", gold) == 0.0, (gold, answer)
        assert compute_score("conrl/gsm8k", f"\\boxed{{{answer}}}", gold) == 0.0, (gold, answer)
    if isinstance(gold, list) and "5" in gold:
        assert compute_score("conrl/math", "\\boxed{5}", gold) == 1.0


@pytest.mark.parametrize("truth", [float("nan"), "nan", ["5", float("nan")], []])
def test_schema_refuses_a_missing_ground_truth(truth):
    import pandas as pd

    from clipo.data.schema import validate_dataset
    from clipo.errors import SchemaError

    row = {"data_source": "conrl/math", "prompt": [{"role": "user", "content": "1+1?"}], "ability": "math",
           "extra_info": {"index": 0}}
    good = dict(row, reward_model={"ground_truth": "2", "style": "rule"})
    bad = dict(row, reward_model={"ground_truth": truth, "style": "rule"})
    with pytest.raises(SchemaError, match=r"bad.parquet: row 1, column 'reward_model': .*ground_truth"):
        validate_dataset(pd.DataFrame([good, bad]), "bad.parquet")
