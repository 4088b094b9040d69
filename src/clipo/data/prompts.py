"""Table 10 of the paper: the instruction appended to every question, as data in one place.

A prompt is ``question + "\\n" + instruction`` (App. A.1.2, eq. 13), sent as a single ``user`` message.
The paper prints the apostrophe of "Let's" typographically in Table 10 and as ASCII in the text of
A.1.2; we use ASCII, as in the text. Multiple-choice sets name the answer letters they expect.
"""

from __future__ import annotations

from clipo.errors import ConfigError

MATH_INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."


def _choice_instruction(letters: str) -> str:
    return f"Let's think step by step and output the final answer (eg, {letters}) within \\boxed{{}}."


INSTRUCTIONS: dict[str, str] = {
    # Table 10, one entry per dataset it lists
    "gsm8k": MATH_INSTRUCTION,
    "gsm_p1": MATH_INSTRUCTION,
    "gsm_p2": MATH_INSTRUCTION,
    "gsm_symbolic": MATH_INSTRUCTION,
    "math": MATH_INSTRUCTION,
    "amc": MATH_INSTRUCTION,
    "aime": MATH_INSTRUCTION,
    "aime2025": MATH_INSTRUCTION,
    "theoremqa": MATH_INSTRUCTION,
    "mmlu": _choice_instruction("A, B, C, D"),
    "truthfulqa": _choice_instruction("A, B, C, D, ..."),
    "commonsense_qa": _choice_instruction("A, B, C, D, E"),
    # The mini track (this project's analogue of Track I): arithmetic like GSM8K, 4-option choice like MMLU
    "mini": MATH_INSTRUCTION,
    "mini_mc": _choice_instruction("A, B, C, D"),
}
"""Dataset → instruction (App. A.1.2, Table 10)."""

ALIASES: dict[str, str] = {
    # Table 10's spellings and the paper's table column names (clipo.data.registry benchmarks)
    "gsm_8k": "gsm8k",
    "sym": "gsm_symbolic",
    "p1": "gsm_p1",
    "p2": "gsm_p2",
    "commonsenseqa": "commonsense_qa",
    "cqa": "commonsense_qa",
    "tqa": "truthfulqa",
    "thrmqa": "theoremqa",
    "mmlu2k": "mmlu",
    "math500": "math",
    "math_s": "math",
    "math_h": "math",
    "math_perturb_simple": "math",
    "math_perturb_hard": "math",
    "math75": "math",
    "math_train": "math",
    "gsm8k_train": "gsm8k",
    "amc23": "amc",
    "aime2024": "aime",
    "aime25": "aime2025",
    # registry keys of the mini splits
    "mini_train": "mini",
    "mini_test": "mini",
    "mini_test_sampled": "mini",
    "mini_sym": "mini",
    "mini_p1": "mini",
    "mini_p2": "mini",
}
"""Other names for the datasets above: registry keys, paper short names, Table 10 spellings."""


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def instruction(dataset: str) -> str:
    """The instruction for a dataset given by registry key, Table 10 name or paper short name."""
    key = _normalise(dataset)
    key = ALIASES.get(key, key)
    try:
        return INSTRUCTIONS[key]
    except KeyError:
        valid = sorted(set(INSTRUCTIONS) | set(ALIASES))
        raise ConfigError(f"no prompt instruction for dataset {dataset!r}; valid: {', '.join(valid)}") from None


def build_prompt(question: str, dataset: str) -> str:
    """``question`` newline ``instruction(dataset)`` (eq. 13)."""
    return f"{question}\n{instruction(dataset)}"
