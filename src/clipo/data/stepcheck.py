"""Step checker of the mini track: is a correct answer also correctly worked out?

The outcome reward only reads the final ``\\boxed{}`` answer, so it also pays an answer reached by
wrong steps. Every synthetic problem carries its chain (``extra_info``: ``start`` and ``chain``, a
list of ``{op, operand, result}``; clipo.data.synthetic), so on the mini track the work can be read
against it. ``classify`` labels one response:

* ``sound`` — the outcome is correct and the work is the problem's chain, every step right;
* ``lucky`` — the outcome is correct but the work is not: an arithmetic slip (two slips that cancel
  included), a skipped, invented, repeated or wrongly ordered step, a step applied to the wrong
  quantity, several operations folded into one equation, no equations at all (the answer alone, or
  sentences that only repeat the question's numbers), or for a multiple-choice answer "N is option X"
  with N not the answer;
* ``wrong`` — the outcome is wrong (the reward's verdict, passed in: the checker never re-scores);
* ``None`` — the row carries no chain (other tracks, data written before chains existed).

How the work is read. The text before the last ``\\boxed`` is split into numbers, operators
(``+ - * /``, also ``× x ÷ −``) and ``=``; any other text is junk and only separates statements.
A statement is ``a op b = c`` (a step), ``a = a`` (a restatement, ignored) or ``a op b = c op d = e``
(two steps, the second continuing from ``c``). An equation with two or more operators on one side,
a false restatement ``a = b`` or an ``=`` followed by no number (``5 - 8 = -3``: quantities are counts)
makes the work unsound; an expression without ``=`` claims nothing and is junk.

Which orders are valid. A step may state a commutative operation's operands in either order
(``7 + 18 = 25`` for "has 18, gets 7 more"). Operations may also be done in another order inside a
run of consecutive additive steps (``+``/``-``) or of consecutive multiplicative ones (``*``/``/``):
those commute for every start value, so with every intermediate an exact, non-negative integer the
result is the problem's. Across such runs the problem's order is kept: an addition and a
multiplication never commute in general, the story says to which quantity each one applies, and a
mixed reordering that still reaches the answer did so by chance. Each step must apply to the result
of the step before it (the first to the start quantity) and be exactly true (division exact).

Bounded and total on untrusted text: work longer than ``MAX_WORK_CHARS`` (a sound mini solution is
under 200 characters) is not sound, reading is one linear pass over it, and no input raises.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SOUND, LUCKY, WRONG = "sound", "lucky", "wrong"
LABELS: tuple[str, ...] = (SOUND, LUCKY, WRONG)
MAX_WORK_CHARS = 4_000
"""Longest work (text before the final answer) that can be read as sound."""
MAX_NUMBER_DIGITS = 12

_OPERATORS = {"+": "+", "-": "-", "−": "-", "*": "*", "×": "*", "x": "*", "/": "/", "÷": "/"}
_KIND = {"+": "additive", "-": "additive", "*": "multiplicative", "/": "multiplicative"}
_TOKEN = re.compile(r"(\d+(?:[.,]\d+)*)|([-+*/×÷−]|(?<![A-Za-z])x(?![A-Za-z]))|(=)|([^\s\d=+*/×÷−-]+)")
_OPTION_CLAIM = re.compile(r"(\d+)\s+is\s+option\s+[A-Z]\b")


@dataclass(frozen=True)
class Step:
    op: str
    """One of ``+ - * /``."""
    operand: int
    result: int


@dataclass(frozen=True)
class Chain:
    """A problem's chain: the start quantity and each operation with its result."""

    start: int
    steps: tuple[Step, ...]

    @property
    def answer(self) -> int:
        return self.steps[-1].result if self.steps else self.start


def _integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def chain_of(extra_info: object) -> Chain | None:
    """The chain a problem row's ``extra_info`` carries, or None when it has none (or a malformed one)."""
    if not isinstance(extra_info, Mapping):
        return None
    start, raw = _integer(extra_info.get("start")), extra_info.get("chain")
    if start is None or isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        return None
    steps = []
    for item in raw:
        if not isinstance(item, Mapping):
            return None
        op, operand, result = item.get("op"), _integer(item.get("operand")), _integer(item.get("result"))
        if op not in _KIND or operand is None or result is None:
            return None
        steps.append(Step(op, operand, result))
    return Chain(start, tuple(steps)) if steps else None


@dataclass(frozen=True)
class Work:
    """What a response states: its steps in order, and whether any statement rules soundness out."""

    steps: tuple[tuple[int, str, int, int], ...]
    """(a, op, b, c) of every ``a op b = c``."""
    flawed: bool


def _number(text: str) -> int | None:
    """An integer token; decimals, thousands separators and absurd lengths are not a count."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_NUMBER_DIGITS else None


def read_work(work: str) -> Work:
    """Parse the statements of ``work`` in one pass (see the module docstring for the grammar)."""
    steps: list[tuple[int, str, int, int]] = []
    flawed = False
    expr: list = []  # alternating numbers (None: not an integer) and operators of the expression being read
    tokens = list(_TOKEN.finditer(work))
    for i, token in enumerate(tokens):
        number, operator, equals = token.group(1), token.group(2), token.group(3)
        if number is not None:
            expr = [*expr, _number(number)] if expr and isinstance(expr[-1], str) else [_number(number)]
        elif operator is not None:
            expr = [*expr, _OPERATORS[operator]] if expr and not isinstance(expr[-1], str) else []
        elif equals is not None:
            if not expr or isinstance(expr[-1], str):
                expr = []  # "The total = 5": nothing on the left to check
                continue
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            rhs = _number(following.group(1)) if following is not None and following.group(1) else None
            if rhs is None or None in expr or len(expr) > 3 or (len(expr) == 1 and expr[0] != rhs):
                flawed = True  # no count on the right, a non-integer, several operations, or a false "a = b"
            elif len(expr) == 3:
                steps.append((expr[0], expr[1], expr[2], rhs))
            expr = []  # the right-hand number comes next and starts the following expression
        else:
            expr = []
    return Work(tuple(steps), flawed)


def _true(a: int, op: str, b: int, c: int) -> bool:
    if op == "/":
        return b != 0 and a == b * c
    return {"+": a + b, "-": a - b, "*": a * b}[op] == c


def _runs(steps: Sequence[Step]) -> list[list[Step]]:
    """The chain cut into maximal runs of additive or multiplicative operations."""
    runs: list[list[Step]] = []
    for step in steps:
        if runs and _KIND[runs[-1][-1].op] == _KIND[step.op]:
            runs[-1].append(step)
        else:
            runs.append([step])
    return runs


def _applies(stated: tuple[int, str, int, int], value: int, step: Step) -> bool:
    """Whether a stated step is ``step`` applied to ``value`` (either operand order where that commutes)."""
    a, op, b, _ = stated
    if op != step.op:
        return False
    return (a, b) == (value, step.operand) or (op in "+*" and (a, b) == (step.operand, value))


def follows_chain(stated: Sequence[tuple[int, str, int, int]], chain: Chain) -> bool:
    """Whether the stated steps are the chain's, in a valid order, each exactly true."""
    if len(stated) != len(chain.steps) or not all(_true(*s) for s in stated):
        return False
    value, position = chain.start, 0
    for run in _runs(chain.steps):
        pending = list(run)
        for s in stated[position:position + len(run)]:
            match = next((step for step in pending if _applies(s, value, step)), None)
            if match is None:
                return False
            pending.remove(match)
            value = s[3]
        position += len(run)
    return value == chain.answer


def is_sound(response: object, chain: Chain) -> bool:
    """Whether the work before the final ``\\boxed`` of ``response`` is the chain, soundly worked."""
    text = response if isinstance(response, str) else ""
    cut = text.rfind("\\boxed")
    work = text[:cut] if cut >= 0 else text
    if len(work) > MAX_WORK_CHARS:
        return False
    stated = read_work(work)
    if stated.flawed or not follows_chain(stated.steps, chain):
        return False
    return all(int(n) == chain.answer for n in _OPTION_CLAIM.findall(work))


def classify(extra_info: object, response: object, correct: bool) -> str | None:
    """``sound``, ``lucky`` or ``wrong`` for one response; None when the row carries no chain.

    ``correct`` is the outcome reward's verdict (clipo.rewards), so ``wrong`` means exactly reward 0.
    """
    chain = chain_of(extra_info)
    if chain is None:
        return None
    if not correct:
        return WRONG
    return SOUND if is_sound(response, chain) else LUCKY


@dataclass(frozen=True)
class ProcessCounts:
    """Labels of a set of responses; the shares are None where they are undefined."""

    sound: int = 0
    lucky: int = 0
    wrong: int = 0

    @property
    def checked(self) -> int:
        return self.sound + self.lucky + self.wrong

    @property
    def sound_share(self) -> float | None:
        """Sound answers among all checked ones: the sound Pass@1 (as a fraction)."""
        return self.sound / self.checked if self.checked else None

    @property
    def lucky_share(self) -> float | None:
        """Lucky answers among the correct ones."""
        correct = self.sound + self.lucky
        return self.lucky / correct if correct else None


def count_labels(labels: Iterable[str | None]) -> ProcessCounts:
    """Counts of ``classify`` labels; None (not checkable) is left out."""
    labels = list(labels)
    return ProcessCounts(*(sum(label == name for label in labels) for name in LABELS))


def process_metrics(extra_infos: Iterable[object], responses: Iterable[object], corrects: Iterable[bool],
                    prefix: str = "process/") -> dict[str, float | int | None]:
    """Per-step log entry of a batch of rollouts (problem row's extra_info, response, reward verdict).

    Measured, never rewarded. ``sound_share``: sound rollouts among the checked ones; ``lucky_share``:
    lucky among the correct checked ones (None when there are none); ``checked``: how many carried a chain.
    """
    counts = count_labels(classify(info, text, bool(ok)) for info, text, ok in zip(
        extra_infos, responses, corrects, strict=True))
    return {f"{prefix}sound_share": counts.sound_share, f"{prefix}lucky_share": counts.lucky_share,
            f"{prefix}checked": counts.checked}

