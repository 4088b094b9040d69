"""The mini track's data: GSM8K-like arithmetic word problems, small enough for a tiny model on a CPU.

Each problem has one person, one item and a start quantity, then a chain of operations (add,
subtract, double/triple, split equally and keep one share: "keeps a third of them"). Every
intermediate value stays in ``1..MAX_VALUE`` so each number can be a single token of the mini
tokenizer (the design note on the mini track: larger numbers made a short SFT fail). Solutions are
step by step and end in ``\\boxed{N}``. Each row's ``extra_info`` carries the chain (``start`` and
``chain``: op, operand, result of every step) so clipo.data.stepcheck can read an answer's work against it.

Splits mirror Track I's evaluation table: ``test`` (in distribution), ``sym`` (same templates with
held-out names and items and fresh numbers, like GSM-Symbolic), ``p1``/``p2`` (one/two more steps than
any training problem, like GSM-P1/P2) and ``mc`` (the same problems as four-option multiple choice, the
"general" column). No question appears in two splits. Everything is deterministic given the seed.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clipo.data.prompts import build_prompt
from clipo.data.registry import get_dataset
from clipo.data.schema import load_dataset, validate_dataset
from clipo.errors import ConfigError
from clipo.progress import progress
from clipo.records import atomic_write

MAX_VALUE = 60
"""Largest quantity that ever appears (start, operand, intermediate or answer)."""
START_RANGE = (2, 30)
N_TRAIN, N_EVAL = 20000, 1000
"""Default split sizes: 1000 problems per evaluation split put the binomial standard error of a Pass@1
near 40% at 1.5 points (3.5 at the 200 problems used before), so a few points' difference resolves."""
TRAIN_STEPS = (1, 2, 3)
"""Operations per training / in-distribution problem; p1 and p2 use max + 1 and max + 2."""
SPLITS: tuple[str, ...] = ("train", "test", "sym", "p1", "p2", "mc")
LETTERS = "ABCD"
FINAL_SENTENCE = "The answer is "
"""How every solution ends, before its boxed answer; what is left of a bare-answer demonstration
(clipo.mini.sft.bare_answers)."""

TRAIN_NAMES = (
    "Tom", "Anna", "Ben", "Lily", "Sam", "Mia", "Jack", "Emma", "Leo", "Zoe",
    "Max", "Ella", "Noah", "Ava", "Liam", "Ruby", "Owen", "Lucy", "Eli", "Nora",
    "Finn", "Ivy", "Luke", "Rosa", "Adam", "Maya", "Jake", "Cora", "Ryan", "Tara",
    "Ian", "Gina", "Carl", "Hana", "Paul", "Vera", "Dan", "Iris", "Omar", "Lena",
)
TRAIN_ITEMS = (
    "apples", "marbles", "stickers", "coins", "pencils", "cards", "shells", "beads", "books", "cookies",
    "stamps", "candies", "balloons", "buttons", "crayons", "erasers", "flowers", "rocks", "toys", "cupcakes",
)
SYM_NAMES = (
    "Hugo", "Nina", "Raj", "Yuki", "Felix", "Amara", "Diego", "Priya", "Kofi", "Sofia",
    "Mateo", "Leila", "Arjun", "Chloe", "Tariq", "Elena", "Bruno", "Aisha", "Pedro", "Greta",
)
SYM_ITEMS = (
    "lemons", "feathers", "tickets", "magnets", "acorns", "pebbles", "ribbons", "muffins", "badges", "keys",
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "add": ("{name} buys {k} more.", "{name} finds {k} more.", "{name} gets {k} more."),
    "sub": ("{name} gives away {k}.", "{name} loses {k}.", "{name} sells {k}."),
    # indexed by k - 2
    "mul": ("{name} doubles the {item}.", "{name} triples the {item}."),
    "div": ("{name} keeps half of them.", "{name} keeps a third of them.", "{name} keeps a quarter of them.",
            "{name} keeps a fifth of them."),
}
SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


@dataclass(frozen=True)
class Problem:
    stem: str
    """The question without instruction or options."""
    solution: str
    values: tuple[int, ...]
    """Start quantity, then the result of each step; the last one is the answer."""
    operations: tuple[tuple[str, int], ...]
    """(symbol, operand) of each step: ``values[i + 1] = values[i] <symbol> operand``."""

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def steps(self) -> int:
        return len(self.values) - 1

    def chain(self) -> list[dict]:
        """The steps as the rows carry them (``extra_info.chain``), read by clipo.data.stepcheck."""
        return [{"op": op, "operand": k, "result": v} for (op, k), v in zip(self.operations, self.values[1:])]


def _apply(op: str, a: int, k: int) -> int:
    return {"add": a + k, "sub": a - k, "mul": a * k, "div": a // k}[op]


def _random_op(rng: random.Random, a: int) -> tuple[str, int]:
    """A uniformly chosen operation (and operand) that keeps the result in 1..MAX_VALUE."""
    options: list[tuple[str, list[int]]] = []
    if MAX_VALUE - a >= 2:
        options.append(("add", list(range(2, min(20, MAX_VALUE - a) + 1))))
    if a >= 2:
        options.append(("sub", list(range(1, min(20, a - 1) + 1))))
    if 2 * a <= MAX_VALUE:
        options.append(("mul", [k for k in (2, 3) if k * a <= MAX_VALUE]))
    divisors = [k for k in (2, 3, 4, 5) if a % k == 0]
    if divisors:
        options.append(("div", divisors))
    op, operands = rng.choice(options)
    return op, rng.choice(operands)


def make_problem(rng: random.Random, steps: int, names, items) -> Problem:
    name, item = rng.choice(names), rng.choice(items)
    value = rng.randint(*START_RANGE)
    values = [value]
    operations = []
    sentences = [f"{name} has {value} {item}."]
    work = [f"{name} starts with {value}."]
    for _ in range(steps):
        op, k = _random_op(rng, value)
        template = TEMPLATES[op][k - 2] if op in ("mul", "div") else rng.choice(TEMPLATES[op])
        sentences.append(template.format(name=name, item=item, k=k))
        result = _apply(op, value, k)
        work.append(f"{value} {SYMBOL[op]} {k} = {result}.")
        value = result
        values.append(value)
        operations.append((SYMBOL[op], k))
    sentences.append(f"How many {item} does {name} have now?")
    work.append(f"{FINAL_SENTENCE}\\boxed{{{value}}}.")
    return Problem(" ".join(sentences), " ".join(work), tuple(values), tuple(operations))


def _distractors(rng: random.Random, problem: Problem) -> list[int]:
    """Three plausible wrong options: an earlier intermediate value or near misses."""
    answer = problem.answer
    candidates = set(problem.values[:-1]) | {answer + d for d in (-10, -2, -1, 1, 2, 10)}
    candidates = sorted(c for c in candidates if 0 <= c <= MAX_VALUE and c != answer)
    return rng.sample(candidates, 3)


def _as_multiple_choice(rng: random.Random, problem: Problem) -> tuple[str, str, str]:
    """(question with options, solution ending in the boxed letter, correct letter)."""
    wrong = _distractors(rng, problem)
    letter = LETTERS[rng.randrange(len(LETTERS))]
    options = iter(wrong)
    choice = {c: (problem.answer if c == letter else next(options)) for c in LETTERS}
    question = problem.stem + "\n" + " ".join(f"{c}) {v}" for c, v in choice.items())
    head = problem.solution.rsplit(" " + FINAL_SENTENCE, 1)[0]
    solution = f"{head} {problem.answer} is option {letter}. {FINAL_SENTENCE}\\boxed{{{letter}}}."
    return question, solution, letter


TRAIN_CHOICE_SHARE = 0.15
"""Share of training problems posed as multiple choice, so the base model learns to answer with a letter
(otherwise the MC split, the mini track's G-Avg., would only measure an answer format never seen)."""


def _split_plan(split: str) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
    """(possible step counts, name pool, item pool) of a split."""
    longest = max(TRAIN_STEPS)
    return {
        "train": (TRAIN_STEPS, TRAIN_NAMES, TRAIN_ITEMS),
        "test": (TRAIN_STEPS, TRAIN_NAMES, TRAIN_ITEMS),
        "sym": (TRAIN_STEPS, SYM_NAMES, SYM_ITEMS),
        "p1": ((longest + 1,), TRAIN_NAMES, TRAIN_ITEMS),
        "p2": ((longest + 2,), TRAIN_NAMES, TRAIN_ITEMS),
        "mc": (TRAIN_STEPS, TRAIN_NAMES, TRAIN_ITEMS),
    }[split]


def generate_split(split: str, n: int, seed: int, seen: set[str]) -> pd.DataFrame:
    """``n`` new problems of one split in the verl schema; their stems are added to ``seen``."""
    steps_choices, names, items = _split_plan(split)
    # A string seed is hashed with SHA-512 by `random`, so splits are independent and stable across runs.
    rng = random.Random(f"clipo-mini/{seed}/{split}")
    dataset = "mini_mc" if split == "mc" else f"mini_{split}"
    rows = []
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ConfigError(f"cannot draw {n} distinct {split!r} problems; lower --n-train/--n-eval")
        problem = make_problem(rng, rng.choice(steps_choices), names, items)
        if problem.stem in seen:
            continue
        seen.add(problem.stem)
        as_choice = split == "mc" or (split == "train" and rng.random() < TRAIN_CHOICE_SHARE)
        if as_choice:
            question, solution, truth = _as_multiple_choice(rng, problem)
        else:
            question, solution, truth = problem.stem, problem.solution, str(problem.answer)
        rows.append({
            "data_source": "clipo/mini/mc" if as_choice else f"clipo/mini/{split}",
            "prompt": [{"role": "user", "content": build_prompt(question, "mini_mc" if as_choice else dataset)}],
            "ability": "math",
            "reward_model": {"ground_truth": truth, "style": "rule"},
            "extra_info": {"index": len(rows), "split": split, "steps": problem.steps,
                           "answer": problem.answer, "solution": solution,
                           "start": problem.values[0], "chain": problem.chain()},
        })
    return validate_dataset(pd.DataFrame(rows), f"mini/{split}")


def generate(seed: int = 0, n_train: int = N_TRAIN, n_eval: int = N_EVAL) -> dict[str, pd.DataFrame]:
    """All splits; train first so evaluation problems are guaranteed unseen."""
    for flag, value in (("--n-train", n_train), ("--n-eval", n_eval)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{flag} {value!r}: must be a positive integer")
    seen: set[str] = set()
    return {split: generate_split(split, n_train if split == "train" else n_eval, seed, seen)
            for split in progress(SPLITS, desc="synthesising mini splits", unit="split")}


def split_path(data_dir: str | os.PathLike, split: str) -> Path:
    return Path(data_dir) / get_dataset(f"mini_{split}").path


def write_mini(data_dir: str | os.PathLike, seed: int = 0, n_train: int = N_TRAIN,
               n_eval: int = N_EVAL) -> dict[str, Path]:
    """Generate every split and write ``<data_dir>/mini/<split>.parquet`` atomically."""
    frames = generate(seed, n_train, n_eval)
    return {split: atomic_write(split_path(data_dir, split),
                                lambda tmp, df=df: df.to_parquet(tmp, index=False))
            for split, df in frames.items()}


def mini_corpus(data_dir: str | os.PathLike) -> list[str]:
    """Every training text (prompt, newline, solution): what the mini tokenizer is trained on."""
    df = load_dataset(split_path(data_dir, "train"))
    return [f"{prompt[0]['content']}\n{info['solution']}"
            for prompt, info in zip(df["prompt"], df["extra_info"])]
