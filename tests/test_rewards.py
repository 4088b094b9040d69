"""clipo.rewards: correct answers score 1, wrong ones 0, hostile text neither raises nor hangs."""

from __future__ import annotations

import signal
import threading
import time

import pandas as pd
import pytest

from clipo import rewards
from clipo.rewards import (
    choice_letter,
    compute_score,
    extract_answer,
    extract_boxed,
    normalize_number,
    scorer_name,
)

MATH_TRAIN_SOLUTION = (
    "We have $x^2 = 8$, so $x = \\sqrt{8} = 2\\sqrt{2}$ since $x > 0$. The answer is $\\boxed{2\\sqrt{2}}$."
)

# (data_source, ground truth as stored in reward_model, a correct response, a wrong response)
RELEASED_SHAPED = [
    ("conrl/gsm8k", "72", "48 + 24 = 72 clips.\nThe answer is \\boxed{72}.", "The answer is \\boxed{70}."),
    ("conrl/gsm_symbolic", "1000", "So the total is \\boxed{\\$1,000}", "So the total is \\boxed{\\$1,001}"),
    ("conrl/math", "\\frac{14}{3}", "Thus $\\boxed{\\dfrac{14}{3}}$.", "Thus $\\boxed{\\frac{3}{14}}$."),
    (
        "conrl/math_perturb_hard",
        "(3, \\frac{\\pi}{2})",
        "\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}",
        "\\boxed{(3, \\pi)}",
    ),
    ("conrl/aime", "204", "Hence $m+n=\\boxed{204}$", "Hence $m+n=\\boxed{240}$"),
    ("conrl/math75", MATH_TRAIN_SOLUTION, "so $x=\\boxed{\\sqrt{8}}$", "so $x=\\boxed{8}$"),
    ("conrl/theoremqa", "True", "The statement holds: \\boxed{True}", "\\boxed{False}"),
    ("conrl/mmlu", "B", "The correct option is \\boxed{B}.", "The correct option is \\boxed{C}."),
    ("conrl/commonsense_qa", "E", "\\boxed{(E) library}", "\\boxed{(A) school}"),
    ("conrl/truthfulqa", "A", "\\boxed{\\text{A}}", "\\boxed{\\text{D}}"),
    (
        "clipo/mini/test",
        "5",
        "Tom starts with 18. 18 - 7 = 11. 11 - 6 = 5. The answer is \\boxed{5}.",
        "\\boxed{11}",
    ),
    ("clipo/mini/mc", "C", "The answer is \\boxed{C. 12}", "The answer is \\boxed{D. 13}"),
]


def _released_shaped_rows(tmp_path) -> pd.DataFrame:
    """Rows in the released files' verl schema, round-tripped through parquet like the real files."""
    rows = [
        {
            "data_source": source,
            "prompt": [{"role": "user", "content": "Solve it. Put the final answer in \\boxed{}."}],
            "ability": "math",
            "reward_model": {"ground_truth": gold, "style": "rule"},
            "extra_info": {"index": i, "split": "test"},
        }
        for i, (source, gold, _, _) in enumerate(RELEASED_SHAPED)
    ]
    path = tmp_path / "rows.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return pd.read_parquet(path)


def test_released_shaped_rows_score_correct_one_and_wrong_zero(tmp_path):
    frame = _released_shaped_rows(tmp_path)
    for row, (_, _, correct, wrong) in zip(frame.itertuples(), RELEASED_SHAPED, strict=True):
        gold = row.reward_model["ground_truth"]
        assert compute_score(row.data_source, correct, gold, row.extra_info) == 1.0, row.data_source
        assert compute_score(row.data_source, wrong, gold, row.extra_info) == 0.0, row.data_source
        assert compute_score(row.data_source, "I do not know.", gold, row.extra_info) == 0.0


def test_boxed_ground_truth_itself_scores_one():
    for source, gold, _, _ in RELEASED_SHAPED:
        answer = extract_boxed(gold) or gold
        assert compute_score(source, f"The answer is \\boxed{{{answer}}}", gold) == 1.0, source


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,000", 1000),
        ("\\$18", 18),
        ("$18", 18),
        ("18.0", 18),
        ("18.", 18),
        ("18\\%", 18),
        ("18%", 18),
        ("1,234,567.50", 1234567.5),
        ("-3", -3),
        ("\\frac{3}{4}", 0.75),
        ("\\dfrac{-3}{4}", -0.75),
        ("3/4", 0.75),
        ("x = 5", 5),
        ("\\text{5}", 5),
        ("0.25", 0.25),
        (".5", 0.5),
    ],
)
def test_normalize_number_plain_forms(text, value):
    assert normalize_number(text) == pytest.approx(value)


def test_normalize_number_units_only_for_word_problems():
    assert normalize_number("18 dollars") is None
    assert normalize_number("18 dollars", allow_units=True) == 18
    assert normalize_number("\\text{5 apples.}", allow_units=True) == 5
    assert normalize_number("2\\sqrt{2}", allow_units=True) is None
    assert normalize_number("1,2") is None
    assert normalize_number("3/0") is None


@pytest.mark.parametrize(
    ("boxed", "gold", "expected"),
    [
        ("1,000", "1000", 1.0),
        ("\\$18", "18", 1.0),
        ("18.00", "18", 1.0),
        ("18 dollars", "18", 1.0),
        ("\\text{18 dollars}", "18", 1.0),
        ("18\\%", "18", 1.0),
        ("17", "18", 0.0),
        ("1,800", "18", 0.0),
        ("18", "#### 18", 1.0),
    ],
)
def test_gsm_answers_compare_as_numbers(boxed, gold, expected):
    assert compute_score("conrl/gsm8k", f"\\boxed{{{boxed}}}", gold) == expected


@pytest.mark.parametrize(
    "text",
    [
        "B",
        "(B)",
        "B)",
        "B.",
        "B. Paris",
        "B: Paris",
        "(B) Paris",
        "\\text{B}",
        "\\textbf{(B)}",
        "\\mathrm{B}",
        "b",
        "Option B",
        "The answer is B",
    ],
)
def test_choice_letter_forms(text):
    assert choice_letter(text) == "B"
    assert compute_score("conrl/mmlu", f"So \\boxed{{{text}}}", "B") == 1.0
    assert compute_score("conrl/mmlu", f"So \\boxed{{{text}}}", "C") == 0.0


@pytest.mark.parametrize("text", ["Bob", "a dog", "I think B", "12", "", "AB"])
def test_choice_letter_rejects_non_choices(text):
    assert choice_letter(text) is None


def test_extract_boxed_takes_last_balanced_box():
    assert extract_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_boxed("\\fbox{7}") == "7"
    assert extract_boxed("so \\boxed 5.") == "5."
    assert extract_boxed("\\boxed{\\boxed{5}}") == "5"
    assert extract_boxed("\\boxed {42}") == "42"
    assert extract_boxed("\\boxed{3} and a truncated \\boxed{\\frac{1}{") == "3"
    assert extract_boxed("no box here") is None
    assert extract_boxed("\\boxed{unclosed") is None
    assert extract_boxed("x" * 100_000 + "\\boxed{9}") == "9"


def test_extract_answer_records_what_the_scorer_reads():
    assert extract_answer("conrl/mmlu", "\\boxed{(C) carbon}") == "C"
    assert extract_answer("conrl/math", "so \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert extract_answer("clipo/mini/test", "nothing boxed") is None


@pytest.mark.parametrize(
    ("source", "family"),
    [
        ("conrl/gsm8k", "gsm"),
        ("conrl/gsm_p2", "gsm"),
        ("clipo/mini/train", "gsm"),
        ("clipo/mini/p1", "gsm"),
        ("clipo/mini/mc", "mc"),
        ("conrl/mmlu", "mc"),
        ("conrl/commonsense_qa", "mc"),
        ("conrl/truthfulqa", "mc"),
        ("conrl/math", "math"),
        ("conrl/aime2025", "math"),
        ("conrl/olympiadbench", "math"),
        ("conrl/mmlu_pro", "mc"),
        ("openai/gsm8k", "gsm"),
        ("someone/arc_mc", "mc"),
        ("lighteval/MATH", "math"),
        (None, "math"),
        (b"conrl/mmlu", "mc"),
    ],
)
def test_data_source_dispatch(source, family):
    assert scorer_name(source) == family
    assert set(rewards.SCORERS) == {"gsm", "math", "mc"}


def test_ground_truth_list_accepts_any_listed_answer():
    assert compute_score("conrl/math", "\\boxed{6}", ["5", "6"]) == 1.0
    assert compute_score("conrl/math", "\\boxed{7}", ["5", "6"]) == 0.0


@pytest.mark.parametrize(
    "args",
    [
        (None, None, None),
        ("conrl/math", None, "5"),
        ("conrl/math", 5, 5),
        ("conrl/math", b"\\boxed{5}", b"5"),
        (7, "\\boxed{5}", "5"),
        ("conrl/math", {"a": 1}, ["x"]),
        ("conrl/mmlu", "\\boxed{B}", None),
        ("conrl/math", "\\boxed{5}", object()),
        ("conrl/math", bytearray(b"\xff\xfe\\boxed{5}"), 5),
    ],
)
def test_compute_score_never_raises_on_odd_types(args):
    assert compute_score(*args) in (0.0, 1.0)


def test_compute_score_reads_bytes_and_integer_ground_truth():
    assert compute_score("conrl/gsm8k", b"\\boxed{5}", 5) == 1.0


def test_compute_score_accepts_the_keywords_verl_adds():
    kwargs = {"reward_router_address": None, "reward_model_tokenizer": None}
    assert (
        compute_score(data_source="conrl/math", solution_str="\\boxed{5}", ground_truth="5", **kwargs) == 1.0
    )


HOSTILE = [
    "\\boxed{10**10**10}",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{9^{9^{9^9}}}",
    "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",
    "\\boxed{(99999^{99999})^{99999}}",
    "\\boxed{e^{e^{e^{e^{e^{10}}}}}}",
    "\\boxed{100000!}",
    "\\boxed{(10^{100})!}",
    "\\boxed{\\binom{1000000}{500000}}",
    "\\boxed{\\Gamma(10^{20})}",
    "\\boxed{\\sum_{i=1}^{10^{9}} i}",
    "\\boxed{\\prod_{i=1}^{100000000} i}",
    "\\boxed{\\int_0^1 x^{100000} dx}",
    "\\boxed{(x+1)^{50000}}",
    "\\boxed{(x+y+z)^{1000}}",
    "\\boxed{\\sin(10^{1000})}",
    "\\boxed{1e999999999}",
    "\\boxed{10^{999999}}",
    "\\boxed{1" + "0" * 390 + "}",
    "\\boxed{" * 5000,
    "{" * 50_000 + "\\boxed{5",
    "\\boxed{" + "{" * 3000 + "}" * 3000 + "}",
    "x" * 100_000 + "\\boxed{5}",
    "}" * 100_000,
    "\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}",
    "\\boxed{\\frac{" * 100 + "1" + "}{2}" * 100 + "}",
    "\\boxed{" + "+".join(f"x^{{{i}}}" for i in range(60)) + "}",
    "\\boxed{\\begin{pmatrix}" + "&".join(["1"] * 300) + "\\end{pmatrix}}",
    "\\boxed{" + "\\cos(" * 30 + "1" + ")" * 30 + "}",
    "\\boxed{" + "\\cos(" * 6 + "1" + ")" * 6 + "}",
    "\\boxed{" + "e^{" * 8 + "10" + "}" * 8 + "}",
    "\\boxed{" + "+".join(["\\sin(x)"] * 50) + "}",
    "\\boxed{" + "*".join(f"(x+{i})" for i in range(40)) + "}",
    "\\boxed{\x00\ud800}",
    "\\boxed{\\log(\\log(\\log(9)))^{99}}",
]
HOSTILE_GOLDS = ["5", "x^{6}+1", "Thus $\\boxed{\\frac{3}{4}}$."]


def _assert_bounded_zero(label: str) -> None:
    for text in HOSTILE:
        for gold in HOSTILE_GOLDS:
            for source in ("conrl/math", "conrl/gsm8k", "conrl/mmlu"):
                started = time.perf_counter()
                score = compute_score(source, text, gold)
                elapsed = time.perf_counter() - started
                expected = 1.0 if text.endswith("\\boxed{5}") and gold == "5" else 0.0
                assert score == expected, (label, source, text[:60], gold)
                assert elapsed < 2.0, (label, source, text[:60], gold, elapsed)


def _warm_worker() -> None:
    """Start this process's symbolic worker (seconds, once per process) before calls are timed."""
    thread = threading.Thread(target=compute_score, args=("conrl/math", "\\boxed{x+1}", "1+x"))
    thread.start()
    thread.join(timeout=120)


def test_hostile_inputs_score_zero_quickly_in_main_thread():
    compute_score("conrl/math", "\\boxed{1}", "1")  # first use builds math-verify's grammar
    _assert_bounded_zero("main")


def test_hostile_inputs_score_zero_quickly_in_worker_thread():
    """Off the main thread the symbolic comparisons run in worker processes under the same deadline."""
    compute_score("conrl/math", "\\boxed{1}", "1")
    _warm_worker()
    failures: list[BaseException] = []

    def work():
        try:
            _assert_bounded_zero("worker")
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
            failures.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=300)
    assert not worker.is_alive()
    assert not failures, failures[0]


def test_guards_keep_ordinary_answers():
    """The size limits must not reject what benchmark answers look like."""
    assert (
        compute_score(
            "conrl/math",
            "\\boxed{\\left(\\frac{1}{2}, \\frac{\\sqrt{3}}{2}\\right)}",
            "(\\frac12, \\frac{\\sqrt3}{2})",
        )
        == 1.0
    )
    assert compute_score("conrl/math", "\\boxed{\\cos(\\pi/3)}", "\\frac{1}{2}") == 1.0
    assert compute_score("conrl/math", "\\boxed{2\\sin(x)\\cos(x)}", "\\sin(2x)") == 1.0
    assert compute_score("conrl/math", "\\boxed{x^2+2x+1}", "(x+1)^2") == 1.0
    assert compute_score("conrl/math", "\\boxed{2^{10}}", "1024") == 1.0
    assert compute_score("conrl/math", "\\boxed{\\binom{10}{3}}", "120") == 1.0
    assert compute_score("conrl/math", "\\boxed{5!}", "120") == 1.0


def test_deadline_interrupts_a_hanging_comparison(monkeypatch):
    class HangingVerifier:
        @staticmethod
        def parse(text, parsing_timeout=None):
            return [text]

        @staticmethod
        def verify(gold, target, timeout_seconds=None):
            while True:
                pass

    monkeypatch.setattr(rewards, "_math_verify", lambda: HangingVerifier)
    monkeypatch.setattr(rewards, "CALL_BUDGET_S", 0.2)
    started = time.perf_counter()
    assert rewards.symbolic_equal("5", "6") is False
    assert time.perf_counter() - started < 1.5


PROBE_ANSWER = r"\boxed{\log(\log(\log(999999)))^{99}}"
PROBE_GOLDS = [f"\\log({i + 2})" for i in range(16)]


def _timed_score(*args) -> tuple[float, float]:
    started = time.perf_counter()
    score = compute_score(*args)
    return score, time.perf_counter() - started


@pytest.mark.parametrize("where", ["main", "worker"])
def test_one_budget_per_call_not_per_ground_truth_entry(where):
    """A hostile answer against 16 acceptable answers costs one budget, not 16 (issue 12, item 2)."""
    compute_score("conrl/math", "\\boxed{1}", "1")
    hostile = [PROBE_ANSWER, r"\boxed{\sin(\sin(\sin(9)))^{7}}"]  # the second passes the size guards
    _warm_worker()
    if where == "main":
        results = [_timed_score("conrl/math", text, PROBE_GOLDS) for text in hostile]
    else:
        results = []
        worker = threading.Thread(
            target=lambda: results.extend(_timed_score("conrl/math", t, PROBE_GOLDS) for t in hostile))
        worker.start()
        worker.join(timeout=120)
        assert not worker.is_alive()
    assert [score for score, _ in results] == [0.0, 0.0]
    assert all(elapsed < rewards.CALL_BUDGET_S + 0.8 for _, elapsed in results), results


def test_out_of_budget_scores_zero_but_exact_matches_still_count(monkeypatch):
    compute_score("conrl/math", "\\boxed{1}", "1")
    monkeypatch.setattr(rewards, "CALL_BUDGET_S", 0.0)
    assert compute_score("conrl/math", "\\boxed{x^2+2x+1}", ["7", "(x+1)^2"]) == 0.0  # symbolic only
    assert compute_score("conrl/math", "\\boxed{0.5}", ["7", "(x+1)^2", "\\frac{1}{2}"]) == 1.0  # numbers


def test_deadline_restores_a_timer_the_caller_armed():
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert compute_score("conrl/math", "\\boxed{\\frac{2}{4}}", "0.5") == 1.0
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 30.0
        assert signal.getsignal(signal.SIGALRM) is not rewards.signal.SIG_DFL
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_mini_track_reference_solutions_score_one_and_wrong_answers_zero():
    """The mini track's own data (clipo/mini/<split>): its reference solutions are rewarded, off-by-one not."""
    from clipo.data.synthetic import generate

    sources = set()
    for frame in generate(seed=3, n_train=12, n_eval=6).values():
        for row in frame.itertuples():
            gold = row.reward_model["ground_truth"]
            sources.add(row.data_source)
            assert compute_score(row.data_source, row.extra_info["solution"], gold) == 1.0, (
                row.data_source,
                gold,
            )
            mc = scorer_name(row.data_source) == "mc"
            wrong = chr((ord(gold) - ord("A") + 1) % 4 + ord("A")) if mc else str(int(gold) + 1)
            assert compute_score(row.data_source, f"The answer is \\boxed{{{wrong}}}.", gold) == 0.0
    assert sources == {f"clipo/mini/{s}" for s in ("train", "test", "sym", "p1", "p2", "mc")}
