import pytest

from clipo.data.prompts import build_prompt, instruction
from clipo.data.registry import DATASETS, benchmarks
from clipo.errors import ConfigError

MATH = "Let's think step by step and output the final answer within \\boxed{}."
MMLU = "Let's think step by step and output the final answer (eg, A, B, C, D) within \\boxed{}."
TQA = "Let's think step by step and output the final answer (eg, A, B, C, D, ...) within \\boxed{}."
CQA = "Let's think step by step and output the final answer (eg, A, B, C, D, E) within \\boxed{}."

# Every dataset name of the paper's Table 10, spelled as there.
TABLE_10 = {
    "GSM8K": MATH, "GSM-P1": MATH, "GSM-P2": MATH, "GSM-Symbolic": MATH,
    "MATH": MATH, "AMC": MATH, "AIME": MATH, "AIME2025": MATH,
    "TheoremQA": MATH,
    "MMLU": MMLU,
    "TruthfulQA": TQA,
    "CommonsenseQA": CQA,
}


@pytest.mark.parametrize("dataset", sorted(TABLE_10))
def test_build_prompt_is_question_newline_table10_instruction(dataset):
    assert build_prompt("What is 2 + 3?", dataset) == "What is 2 + 3?\n" + TABLE_10[dataset]


def test_every_registry_key_and_paper_benchmark_has_an_instruction():
    for key in DATASETS:
        assert instruction(key).startswith("Let's think step by step")
    for track in ("I", "II"):
        for name in benchmarks(track):
            assert instruction(name).endswith("within \\boxed{}.")


@pytest.mark.parametrize(("name", "expected"), [
    ("mmlu2k", MMLU), ("MMLU", MMLU), ("truthfulqa", TQA), ("tQA", TQA), ("commonsense_qa", CQA), ("cQA", CQA),
    ("thrmQA", MATH), ("Math_H", MATH), ("AIME25", MATH), ("SYM", MATH), ("mini_mc", MMLU), ("mini_p2", MATH),
])
def test_aliases_resolve_to_the_right_instruction(name, expected):
    assert instruction(name) == expected


def test_unknown_dataset_is_one_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"'gsm9k'.*valid: .*gsm8k"):
        build_prompt("q", "gsm9k")
