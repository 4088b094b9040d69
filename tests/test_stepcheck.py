"""The mini track's step checker: hand-made answers, adversarial ones included, and the generated data."""

from __future__ import annotations

import random
import time

import numpy as np
import pandas as pd
import pytest

from clipo.data import synthetic
from clipo.data.stepcheck import (
    LUCKY, SOUND, WRONG, MAX_WORK_CHARS, chain_of, classify, count_labels, process_metrics, read_work,
)


def row(start: int, *ops: str) -> dict:
    """extra_info of a problem whose chain is ``start`` then ops like "-7", "*2" (results computed)."""
    chain, value = [], start
    for text in ops:
        op, k = text[0], int(text[1:])
        value = {"+": value + k, "-": value - k, "*": value * k, "/": value // k}[op]
        chain.append({"op": op, "operand": k, "result": value})
    return {"index": 0, "start": start, "chain": chain}


TOM = row(18, "-7", "-6")  # Tom has 18, gives away 7, loses 6: 5
LEO = row(9, "+9", "-12", "+7")  # the example: 13
ANNA = row(25, "*2", "/5")  # the example: 10
MIXED = row(6, "+4", "/2")  # 5


def label(info, text, correct=True):
    return classify(info, text, correct)


def test_the_reference_solution_is_sound():
    assert label(TOM, "Tom starts with 18. 18 - 7 = 11. 11 - 6 = 5. The answer is \\boxed{5}.") == SOUND
    assert label(LEO, "Leo starts with 9. 9 + 9 = 18. 18 - 12 = 6. 6 + 7 = 13. The answer is \\boxed{13}.") == SOUND
    assert label(ANNA, "25 * 2 = 50. 50 / 5 = 10. The answer is \\boxed{10}.") == SOUND


def test_a_wrong_outcome_is_wrong_whatever_the_work():
    assert label(TOM, "18 - 7 = 11. 11 - 6 = 5. The answer is \\boxed{6}.", correct=False) == WRONG
    assert label(TOM, "", correct=False) == WRONG


def test_the_answer_alone_is_lucky():
    assert label(TOM, "\\boxed{5}") == LUCKY
    assert label(TOM, "The answer is \\boxed{5}.") == LUCKY


def test_steps_that_only_repeat_the_question_are_lucky():
    assert label(TOM, "Tom has 18. Tom gives away 7. Tom loses 6. The answer is \\boxed{5}.") == LUCKY
    assert label(TOM, "18 = 18. 7 = 7. 6 = 6. The answer is \\boxed{5}.") == LUCKY
    assert label(TOM, "18 - 7. 11 - 6. The answer is \\boxed{5}.") == LUCKY  # expressions claim nothing


def test_arithmetic_slips_are_lucky_even_when_they_cancel():
    assert label(TOM, "18 - 7 = 12. 12 - 6 = 5. The answer is \\boxed{5}.") == LUCKY  # +1 then -1
    # the examples, read from a base model's sampled answers
    assert label(LEO, "Leo starts with 9. 9 + 7 = 15. 15 - 7 = 6. 6 + 7 = 13. The answer is \\boxed{13}.") == LUCKY
    assert label(ANNA, "Anna starts with 25. 25 * 2 = 40. 40 / 5 = 10. The answer is \\boxed{10}.") == LUCKY
    assert label(ANNA, "25 * 2 = 50. 50 / 4 = 10. The answer is \\boxed{10}.") == LUCKY  # wrong divisor, slip


def test_skipped_folded_invented_and_repeated_steps_are_lucky():
    assert label(TOM, "18 - 13 = 5. The answer is \\boxed{5}.") == LUCKY  # two steps merged into one
    assert label(TOM, "18 - 7 - 6 = 5. The answer is \\boxed{5}.") == LUCKY  # several operations at once
    assert label(TOM, "18 - 7 = 11. 11 - 6 = 5. 5 + 0 = 5. The answer is \\boxed{5}.") == LUCKY  # invented
    assert label(TOM, "18 - 7 = 11. 18 - 7 = 11. 11 - 6 = 5. The answer is \\boxed{5}.") == LUCKY  # repeated
    assert label(TOM, "18 - 7 = 11. 12 - 7 = 5. The answer is \\boxed{5}.") == LUCKY  # true, wrong quantity
    assert label(TOM, "18 - 7 = 11. 11 - 6 = 5. 11 = 12. The answer is \\boxed{5}.") == LUCKY  # false claim


def test_operands_of_a_commutative_step_may_come_in_either_order():
    assert label(LEO, "9 + 9 = 18. 18 - 12 = 6. 7 + 6 = 13. The answer is \\boxed{13}.") == SOUND
    assert label(ANNA, "2 * 25 = 50. 50 / 5 = 10. The answer is \\boxed{10}.") == SOUND
    assert label(TOM, "7 - 18 = 11. 11 - 6 = 5. The answer is \\boxed{5}.") == LUCKY  # not for subtraction
    assert label(ANNA, "25 * 2 = 50. 5 / 50 = 10. The answer is \\boxed{10}.") == LUCKY  # nor division


def test_reordering_is_sound_only_within_a_run_of_additive_or_multiplicative_steps():
    assert label(TOM, "18 - 6 = 12. 12 - 7 = 5. The answer is \\boxed{5}.") == SOUND
    assert label(LEO, "9 + 7 = 16. 16 + 9 = 25. 25 - 12 = 13. The answer is \\boxed{13}.") == SOUND
    assert label(ANNA, "25 / 5 = 5. 5 * 2 = 10. The answer is \\boxed{10}.") == SOUND
    # across an addition and a division the order is the story's: done the other way it ends elsewhere
    assert label(MIXED, "6 / 2 = 3. 3 + 4 = 7. The answer is \\boxed{5}.") == LUCKY
    # the right equations written in the wrong order do not chain
    assert label(MIXED, "10 / 2 = 5. 6 + 4 = 10. The answer is \\boxed{5}.") == LUCKY
    assert label(TOM, "11 - 6 = 5. 18 - 7 = 11. The answer is \\boxed{5}.") == LUCKY
    # a reorder through a negative count is not arithmetic on quantities
    assert label(row(5, "+10", "-8"), "5 - 8 = -3. -3 + 10 = 7. The answer is \\boxed{7}.") == LUCKY


def test_junk_between_steps_and_after_the_answer_is_ignored():
    junky = ("Well,, Tom!! starts (with) 18 ... so 18 - 7 = 11 ; then 11 - 6 = 5 ?? ok "
             "The answer is \\boxed{5}. 3 + 4 = 9 <|endoftext|> x = 2")
    assert label(TOM, junky) == SOUND
    assert label(TOM, "18 - 7 = 11 - 6 = 5. \\boxed{5}") == SOUND  # continued equation
    assert label(TOM, "18 − 7 = 11. 11 − 6 = 5. \\boxed{5}") == SOUND  # unicode minus
    assert label(ANNA, "25 × 2 = 50. 50 ÷ 5 = 10. \\boxed{10}") == SOUND
    assert label(TOM, "18 - 7 = 11.0. 11 - 6 = 5. \\boxed{5}") == LUCKY  # not a count
    assert label(TOM, "18 - 7 = 11. Then 1 + 1 = 2. 11 - 6 = 5. \\boxed{5}") == LUCKY  # a junk equation is a step


def test_only_the_last_boxed_answer_closes_the_work():
    assert label(TOM, "\\boxed{5} 18 - 7 = 11. 11 - 6 = 5. \\boxed{5}") == SOUND
    assert label(TOM, "\\boxed{5} then 18 - 7 = 11. 11 - 6 = 5.") == LUCKY  # work after the answer


def test_multiple_choice_answers_are_checked_by_their_chain_and_stated_value():
    mc = {**TOM, "split": "mc"}
    assert label(mc, "18 - 7 = 11. 11 - 6 = 5. 5 is option C. The answer is \\boxed{C}.") == SOUND
    assert label(mc, "18 - 7 = 11. 11 - 6 = 5. 11 is option C. The answer is \\boxed{C}.") == LUCKY
    assert label(mc, "18 - 7 = 11. 11 - 6 = 6. 6 is option C. The answer is \\boxed{C}.") == LUCKY
    assert label(mc, "The answer is \\boxed{C}.") == LUCKY


def test_rows_without_a_chain_are_not_checkable():
    for info in (None, {}, {"index": 3, "answer": 5}, {"start": 18}, {"start": 18, "chain": []},
                 {"start": True, "chain": TOM["chain"]}, {"start": 18, "chain": "18 - 7 = 11"},
                 {"start": 18, "chain": [{"op": "^", "operand": 2, "result": 9}]},
                 {"start": 18, "chain": [{"op": "-", "operand": "7", "result": 11}]},
                 {"start": 18, "chain": [7, 6]}, "not a mapping"):
        assert chain_of(info) is None
        assert classify(info, "18 - 7 = 11. \\boxed{11}", True) is None
        assert classify(info, "", False) is None


def test_a_parquet_round_trip_keeps_the_chain_checkable(tmp_path):
    df = synthetic.generate_split("p2", 30, seed=3, seen=set())
    df.to_parquet(tmp_path / "p2.parquet", index=False)
    back = pd.read_parquet(tmp_path / "p2.parquet")
    assert isinstance(back["extra_info"][0]["chain"], np.ndarray)
    assert {classify(info, info["solution"], True) for info in back["extra_info"]} == {SOUND}


@pytest.mark.parametrize("split", ["test", "sym", "p1", "p2", "mc"])
def test_every_generated_solution_is_sound_and_any_one_slip_is_not(split):
    df = synthetic.generate_split(split, 60, seed=1, seen=set())
    rng = random.Random(split)
    for info in df["extra_info"]:
        solution = info["solution"]
        assert classify(info, solution, True) == SOUND
        assert classify(info, solution, False) == WRONG
        chain = chain_of(info)
        assert len(chain.steps) == info["steps"] and chain.answer == info["answer"]
        # change one step's result by one (the next step then reads the changed value): never sound
        i = rng.randrange(len(chain.steps))
        before = chain.start if i == 0 else chain.steps[i - 1].result
        step = chain.steps[i]
        stated = f"{before} {step.op} {step.operand} = {step.result}."
        assert solution.count(stated) >= 1
        slipped = solution.replace(stated, f"{before} {step.op} {step.operand} = {step.result + 1}.", 1)
        assert classify(info, slipped, True) == LUCKY


def test_untrusted_text_never_raises_and_is_read_in_bounded_time():
    rng = random.Random(0)
    alphabet = "0123456789 +-*/=x×÷−.,\\boxed{}()ABC \n\t\x00é²٣"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(200)))
        assert classify(TOM, text, True) in (SOUND, LUCKY)
    for text in (None, 5, b"18 - 7 = 11", ["18 - 7 = 11"], "9" * 10_000 + " - 7 = 11", "1 = " * 2000):
        assert classify(TOM, text, True) == LUCKY
    worst = ["1 + " * (MAX_WORK_CHARS // 4 - 1), "= " * (MAX_WORK_CHARS // 2 - 1), "18 - 7 = 11. " * 300,
             "18 - 7 = 11. 11 - 6 = 5. " + "junk " * 10**6 + "\\boxed{5}"]
    start = time.perf_counter()
    for text in worst:
        assert classify(TOM, text + "\\boxed{5}", True) == LUCKY
    assert time.perf_counter() - start < 5.0  # generous: one linear pass, work over the limit not read


def test_read_work_sees_steps_and_flaws():
    assert read_work("18 - 7 = 11 - 6 = 5").steps == ((18, "-", 7, 11), (11, "-", 6, 5))
    assert read_work("2x3 = 6, 3 x 2 = 6, box 2").steps == ((2, "*", 3, 6), (3, "*", 2, 6))
    assert read_work("18 = 18. Total = 5. 18 - 7").steps == () and not read_work("18 = 18. Total = 5").flawed
    for flawed in ("٣ + 1 = 4", "5 - 8 = -3", "1 + 2 + 3 = 6", "4 = 5", "18 - 7 = 11.5"):
        assert read_work(flawed).flawed, flawed


def test_process_metrics_count_a_batch_of_rollouts():
    infos = [TOM, TOM, TOM, TOM, {"index": 1}]
    texts = ["18 - 7 = 11. 11 - 6 = 5. \\boxed{5}", "\\boxed{5}", "\\boxed{4}", "18 - 7 = 12. 12 - 6 = 5. \\boxed{5}",
             "\\boxed{5}"]
    metrics = process_metrics(infos, texts, [True, True, False, True, True])
    assert metrics == {"process/sound_share": 1 / 4, "process/lucky_share": 2 / 3, "process/checked": 4}
    none_correct = process_metrics([TOM], ["\\boxed{4}"], [False])
    assert none_correct == {"process/sound_share": 0.0, "process/lucky_share": None, "process/checked": 1}
    assert process_metrics([], [], []) == {"process/sound_share": None, "process/lucky_share": None,
                                          "process/checked": 0}
    counts = count_labels([SOUND, LUCKY, None, WRONG, LUCKY])
    assert (counts.sound, counts.lucky, counts.wrong, counts.checked) == (1, 2, 1, 4)
    with pytest.raises(ValueError):
        process_metrics([TOM], [], [True])  # a batch whose parts do not line up is a caller's bug
