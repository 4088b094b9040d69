"""Verifiable outcome rewards: is the model's final ``\\boxed{...}`` answer correct?

``compute_score`` has the signature verl's ``reward.custom_reward_function`` expects, and the mini
trainer and the evaluators call the same function, so every backend scores answers identically.

Model output is untrusted text. Every public function here returns instead of raising, and each call has a
bounded cost: only the tail of a response is searched, answers longer than any benchmark answer skip the
symbolic path, numbers too large to build (``10^{10^{10}}``, ``(10^{100})!``) are rejected from the parsed
but still unevaluated expression tree before math-verify compares anything, and a wall-clock deadline
interrupts whatever work remains. The deadline is a signal, which only a process's main thread receives:
called from any other thread (verl's reward managers score in thread pools), the symbolic comparison runs
in a small pool of worker processes instead (``_WorkerPool``), each answering in its own main thread under
the same deadline and killed if it does not answer soon after. The cheap comparisons (plain numbers,
option letters, exact strings) always run in the caller, so most calls never leave it. The budget is per
call, not per ground-truth entry: the answer is parsed once, the cheap comparisons run against every entry
first, and the symbolic comparisons stop (scoring 0) once the call has spent ``CALL_BUDGET_S``.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import numbers
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

logger = logging.getLogger(__name__)

# Responses are searched only in their last characters: the final answer sits at the end, and regexes over a
# 100k-character string would otherwise dominate the cost of a call.
TAIL_CHARS = 8_000
# Longest boxed content that is handed to the symbolic checker; benchmark answers are far shorter.
MAX_SYMBOLIC_CHARS = 400
# Longest boxed content that is extracted at all.
MAX_ANSWER_CHARS = 2_000
# Wall-clock budget of one call's symbolic comparisons, over all its ground-truth entries: enforced by a
# signal in a main thread (the caller's, or a worker process's for calls from other threads).
CALL_BUDGET_S = 1.0
# How many earlier \boxed openings are tried when the last ones are unbalanced (truncated responses).
MAX_BOX_CANDIDATES = 32

# --------------------------------------------------------------------------------------------- extraction

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_BARE = re.compile(r"\\boxed[ \t]+([^\s${}\\]+)")


def _as_text(value: object) -> str | None:
    """Coerce a response/ground truth to text; None for what cannot be text (None, containers of junk)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return str(value)
    return None


def _balanced_content(text: str, start: int) -> str | None:
    """Content from ``start`` (just after an opening brace) up to its matching brace, or None."""
    depth = 1
    end = min(len(text), start + MAX_ANSWER_CHARS + 1)
    for i in range(start, end):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def _last_boxed(text: str) -> str | None:
    tail = text[-TAIL_CHARS:]
    braced = [m.end() for m in _BOX_OPEN.finditer(tail)]
    bare = [(m.start(), m.group(1)) for m in _BOX_BARE.finditer(tail)]
    last_bare = bare[-1] if bare else None
    for content_start in reversed(braced[-MAX_BOX_CANDIDATES:]):
        if last_bare is not None and last_bare[0] > content_start:
            return last_bare[1]
        content = _balanced_content(tail, content_start)
        if content is not None:
            return content
    return last_bare[1] if last_bare is not None else None


def extract_boxed(text: object) -> str | None:
    """The content of the last ``\\boxed{...}``/``\\fbox{...}`` with balanced braces (or ``\\boxed 5``).

    "Last" means last opened, so a nested ``\\boxed{\\boxed{5}}`` gives ``5``. None when no box is complete.
    """
    try:
        s = _as_text(text)
        if not s:
            return None
        content = _last_boxed(s)
        return content.strip() if content is not None else None
    except Exception:  # noqa: BLE001 - untrusted input must never raise
        logger.debug("extract_boxed failed", exc_info=True)
        return None


# ------------------------------------------------------------------------------------- normalisation

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|textit|operatorname)\s*\{([^{}]*)\}")
_LATEX_SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d])")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,4})?")
_FRACTION_LATEX = re.compile(r"^(-?)\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}$")
_SLASH_FRACTION = re.compile(r"^(-?\d+)\s*/\s*(-?\d+)$")
_UNIT_WORDS = re.compile(r"^(.*?\d\.?)\s*(?:[a-zA-Z][a-zA-Z.\s/]*)$")


def _strip_wrappers(s: str) -> str:
    """Remove LaTeX text wrappers and spacing so ``\\text{18 dollars}`` reads as ``18 dollars``."""
    previous = None
    for _ in range(4):
        if s == previous:
            break
        previous = s
        s = _TEXT_WRAPPER.sub(r"\1", s)
    s = _LATEX_SPACING.sub(" ", s)
    s = s.replace("\\left", "").replace("\\right", "")
    return s.strip().strip("$").strip()


def normalize_number(answer: str, allow_units: bool = False) -> Fraction | None:
    """A GSM-style answer as an exact number: ``1,000``, ``$18``, ``18.0``, ``18\\%``, ``3/4``.

    With ``allow_units`` a trailing word is dropped (``18 dollars``); only word problems want that, since in
    competition maths ``2 pi`` is not 2. None when the answer is not a single plain number.
    """
    if len(answer) > 100:
        return None
    s = _strip_wrappers(answer)
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"^[a-zA-Z]\s*=\s*", "", s.strip())  # "x = 5"
    s = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), s).strip().rstrip(".").strip()
    if m := _FRACTION_LATEX.match(s):
        sign, num, den = m.groups()
        return _fraction(int(num), int(den), negative=sign == "-")
    if m := _SLASH_FRACTION.match(s):
        return _fraction(int(m.group(1)), int(m.group(2)))
    if allow_units and not _NUMBER.fullmatch(s) and (m := _UNIT_WORDS.match(s)):
        s = m.group(1).rstrip(".")  # "18 dollars", "5 cm", "3 apples."
    if not _NUMBER.fullmatch(s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _fraction(num: int, den: int, negative: bool = False) -> Fraction | None:
    if den == 0:
        return None
    value = Fraction(num, den)
    return -value if negative else value


def _canonical_string(answer: str) -> str:
    """Exact-match form: wrappers, spacing, case and surrounding punctuation removed."""
    s = _strip_wrappers(answer)
    s = re.sub(r"\s+", "", s).rstrip(".").lower()
    return s


# -------------------------------------------------------------------------- symbolic (math-verify) path


class _DeadlineExceeded(BaseException):
    """Raised from SIGALRM; a BaseException so math-verify's ``except Exception`` cannot swallow it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` in the main thread; a no-op elsewhere (signals need it).

    Restores a timer the caller may have armed (e.g. a test timeout), minus the time spent here.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        raise _DeadlineExceeded

    try:
        previous_handler = signal.signal(signal.SIGALRM, _on_alarm) or signal.SIG_DFL
    except ValueError:  # not the main interpreter
        yield
        return
    started = time.monotonic()
    previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        remaining, interval = previous_timer
        if remaining > 0:
            left = max(remaining - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, interval)


# Constructs never found in a benchmark's final answer whose symbolic evaluation can run unbounded.
_UNEVALUATED_CALCULUS = re.compile(r"\\(?:[io]+int|int|lim|sum|prod|limsup|liminf)(?![a-zA-Z])")
# LaTeX that latex2sympy evaluates while parsing (so the tree guard comes too late for it).
_EVALUATED_AT_PARSE = re.compile(r"!|\\[dt]?binom|\\choose|\\Gamma|\\gamma|\\operatorname")
_DIGIT_RUN = re.compile(r"\d+")
_COMMAND = re.compile(r"\\[a-zA-Z]+")
# Benchmark answers use a handful of LaTeX commands and shallow nesting; beyond these sizes parsing and
# comparison costs grow steeply (nested functions are exponential in sympy's numeric comparison).
_MAX_COMMANDS = 24
_MAX_NESTING = 8


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def _plausible_answer(answer: str) -> bool:
    """Cheap string checks that keep inputs with unbounded parse/evaluation cost away from sympy."""
    if len(answer) > MAX_SYMBOLIC_CHARS or _UNEVALUATED_CALCULUS.search(answer):
        return False
    if answer.count("^") + answer.count("**") > 8:
        return False
    if len(_COMMAND.findall(answer)) > _MAX_COMMANDS or _nesting_depth(answer) > _MAX_NESTING:
        return False
    longest = max((len(run) for run in _DIGIT_RUN.findall(answer)), default=0)
    if _EVALUATED_AT_PARSE.search(answer) and longest > 4:
        return False
    if ("^" in answer or "**" in answer) and longest > 6:
        return False
    return True


class _TooLarge(Exception):
    """The expression denotes a number too large to build or compare in bounded time."""


# Log10 of the largest magnitude an answer may denote; benchmark answers are nowhere near it.
_MAX_LOG10 = 10_000.0
# Largest argument (log10) of functions whose cost grows with the value itself (n!, sums over n terms).
_MAX_COMBINATORIAL_LOG10 = 5.0
# Largest argument (log10) of any other function (trig, log, ...): evaluation precision grows with it.
_MAX_FUNCTION_ARG_LOG10 = 30.0
_COMBINATORIAL = {
    "factorial",
    "factorial2",
    "subfactorial",
    "gamma",
    "loggamma",
    "binomial",
    "RisingFactorial",
    "FallingFactorial",
    "Sum",
    "Product",
    "fibonacci",
    "lucas",
    "bell",
    "catalan",
    "harmonic",
    "prime",
    "primepi",
    "bernoulli",
    "euler",
    "partition",
    "multinomial_coefficients",
}


def _log10_bound(expr) -> float:
    """Upper bound on log10 of the magnitude any numeric evaluation of ``expr`` can reach.

    Works on the unevaluated tree math-verify's parser returns, so nothing large is ever computed.
    Symbols count as magnitude 1: only the numbers written in the answer can make evaluation explode.
    """
    import sympy

    if isinstance(expr, sympy.Integer):
        return int(expr).bit_length() * 0.30103
    if isinstance(expr, sympy.Rational):
        return max(int(expr.p).bit_length(), int(expr.q).bit_length()) * 0.30103
    if isinstance(expr, sympy.Float):
        _, mantissa, exponent, bits = expr._mpf_
        return abs(exponent + bits) * 0.30103 if mantissa else 0.0
    args = getattr(expr, "args", ())
    if not isinstance(args, tuple) or not args:
        return 0.0
    bounds = [_log10_bound(a) for a in args if isinstance(a, sympy.Basic)]
    if not bounds:
        return 0.0
    if isinstance(expr, sympy.Pow):
        base, exponent = bounds[0], bounds[1]
        if exponent > 6:
            raise _TooLarge
        # (x+1)^5000 parses instantly but verify() expands it; x^5000 (a bare symbol) is harmless.
        if exponent > 1.5 and not expr.base.is_Symbol and expr.base.free_symbols:
            raise _TooLarge
        # log(log(log(9)))^{99}: verify() spends its time (47 s) on high powers of nested functions.
        if exponent > 1.0 and expr.base.atoms(sympy.Function):
            raise _TooLarge
        result = max(base, 1.0) * (10.0**exponent)
    elif isinstance(expr, sympy.exp):  # e^{e^{e^{10}}} written as exp()
        if bounds[0] > 6:
            raise _TooLarge
        result = 0.4343 * (10.0 ** bounds[0])
    elif isinstance(expr, sympy.Mul):
        result = sum(bounds)
    elif isinstance(expr, sympy.Add):
        result = max(bounds) + math.log10(len(bounds))
    elif type(expr).__name__ in _COMBINATORIAL:
        largest = max(bounds)
        if largest > _MAX_COMBINATORIAL_LOG10:
            raise _TooLarge
        result = (10.0**largest) * max(largest, 1.0)
    elif isinstance(expr, sympy.Function) and max(bounds) > _MAX_FUNCTION_ARG_LOG10:
        raise _TooLarge  # sin(10^{1000}) needs 1000-digit precision to evaluate
    else:
        result = max(bounds)
    if result > _MAX_LOG10:
        raise _TooLarge
    return result


# Tree limits for what reaches verify(): its numeric/symbolic comparison of nested functions is exponential
# in the nesting (cos(cos(cos(cos(1)))) takes seconds, six levels half a minute).
_MAX_TREE_NODES = 150
_MAX_FUNCTION_NESTING = 3
_MAX_FUNCTIONS = 12


def _function_nesting(expr) -> int:
    import sympy

    inner = max((_function_nesting(a) for a in expr.args if isinstance(a, sympy.Basic)), default=0)
    return inner + 1 if isinstance(expr, sympy.Function) else inner


def _safe_to_compare(parsed: list) -> bool:
    import sympy

    try:
        for item in parsed:
            if not isinstance(item, sympy.Basic):
                continue
            nodes = list(sympy.preorder_traversal(item))
            if len(nodes) > _MAX_TREE_NODES:
                return False
            if sum(isinstance(n, sympy.Function) for n in nodes) > _MAX_FUNCTIONS:
                return False
            if _function_nesting(item) > _MAX_FUNCTION_NESTING:
                return False
            _log10_bound(item)
        return True
    except (_TooLarge, RecursionError):
        return False


class _QuietTimeoutWarning(logging.Filter):
    """math-verify warns once that its own timeouts are off; ours (``_deadline``) replace them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


_MATH_VERIFY_READY = False


def _math_verify():
    """math-verify, warmed up once: its first parse builds the LaTeX grammar (~1 s) and its first symbolic
    comparison imports the rest of sympy (~0.5 s), neither of which may be charged to a response's deadline."""
    global _MATH_VERIFY_READY
    import math_verify

    if not _MATH_VERIFY_READY:
        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).addFilter(_QuietTimeoutWarning())
        warm = math_verify.parse("\\boxed{\\frac{1}{2}}", parsing_timeout=None)
        math_verify.verify(warm, math_verify.parse("$0.5$", parsing_timeout=None), timeout_seconds=None)
        math_verify.verify(math_verify.parse("$(x+1)^2$", parsing_timeout=None),
                           math_verify.parse("$x^2+2x+1$", parsing_timeout=None), timeout_seconds=None)
        _MATH_VERIFY_READY = True
    return math_verify


def symbolic_equal(gold: str, answer: str) -> bool:
    """Mathematical equivalence of two boxed answers via math-verify, guarded against hostile sizes."""
    return _symbolic_bounded([gold], answer, CALL_BUDGET_S)


def _symbolic_bounded(golds: list[str], answer: str, budget_s: float) -> bool:
    """``_symbolic_any`` under its deadline from any thread: here in a main thread, else in a worker process."""
    golds = [g for g in golds if _plausible_answer(g)]
    if not golds or not _plausible_answer(answer):
        return False
    if threading.current_thread() is threading.main_thread():
        return _symbolic_any(golds, answer, budget_s)
    try:
        return _WORKERS.run(golds, answer, budget_s)
    except _WorkerUnavailable as e:
        # A stalled reward step is visible; rewards silently zeroed for a whole run would not be: score
        # here, with the structural guards only, and say so.
        logger.warning("symbolic scoring runs in this thread without a deadline: %s", e)
        return _symbolic_any(golds, answer, budget_s)


def _symbolic_any(golds: list[str], answer: str, budget_s: float) -> bool:
    """Whether ``answer`` is equivalent to any of ``golds``, within one wall-clock budget for them all.

    The answer is parsed and checked once. math-verify's own timeouts use ``signal.alarm`` with whole
    seconds and refuse to run outside the main thread, so they are switched off; ``_deadline`` (main
    thread), the budget check between entries and the size guards take their place. Out of budget → False.
    """
    golds = [g for g in golds if _plausible_answer(g)]
    if not golds or not _plausible_answer(answer):
        return False
    try:
        mv = _math_verify()
        give_up_at = time.monotonic() + budget_s  # after the one-off warm-up, which is not this call's cost
        with _deadline(budget_s):
            answer_parsed = mv.parse("\\boxed{" + answer + "}", parsing_timeout=None)
            if not answer_parsed or not _safe_to_compare(answer_parsed):
                return False
            for gold in golds:
                if time.monotonic() >= give_up_at:
                    logger.debug("symbolic comparisons exceeded the call's %.1f s", budget_s)
                    return False
                gold_parsed = mv.parse("\\boxed{" + gold + "}", parsing_timeout=None)
                if gold_parsed and _safe_to_compare(gold_parsed) and mv.verify(
                    gold_parsed, answer_parsed, timeout_seconds=None
                ):
                    return True
            return False
    except _DeadlineExceeded:
        logger.debug("symbolic comparisons exceeded the call's %.1f s", budget_s)
        return False
    except Exception:  # noqa: BLE001 - untrusted input must never raise
        logger.debug("symbolic comparison failed", exc_info=True)
        return False


# ------------------------------------------------------------------------- worker processes for threads

# A worker answers within CALL_BUDGET_S by its own deadline; this much later it is taken to be stuck in
# code a signal cannot interrupt (a long C call) and is killed. The call then scores 0.
WORKER_GRACE_S = 4.0
# Starting a worker imports sympy and builds math-verify's grammar: seconds, paid once per worker.
WORKER_START_TIMEOUT_S = 120.0
# Concurrent symbolic comparisons off the main thread; more callers wait for a free worker (each holds
# sympy, ~100 MB). Only answers that are not plain numbers or letters get here.
MAX_WORKERS = max(2, min(8, os.cpu_count() or 2))
# The worker loads this file by path (verl may load it that way too, so `clipo` need not be importable).
_WORKER_MAIN = (
    "import importlib.util, sys\n"
    "del sys.path[0]\n"  # not the current folder: nothing there may shadow sympy's imports
    "spec = importlib.util.spec_from_file_location('clipo_rewards_worker', sys.argv[1])\n"
    "module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
    "module._serve()\n"
)


class _WorkerUnavailable(Exception):
    """No worker process could be started."""


class _WorkerLost(Exception):
    """The worker died or closed its pipe before the request was sent."""


def _serve() -> None:
    """Worker loop: one JSON request per line on stdin, ``1``/``0`` per line on the original stdout."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the replies
    _math_verify()
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        verdict = _symbolic_any(request["golds"], request["answer"], request["budget_s"])
        replies.write("1\n" if verdict else "0\n")
        replies.flush()


class _Worker:
    """One worker process and its pipes; replies are read from the raw descriptor with a timeout."""

    def __init__(self):
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN, os.path.abspath(__file__)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
        except OSError as e:
            raise _WorkerUnavailable(f"cannot start {sys.executable}: {e}") from None
        if self._reply(WORKER_START_TIMEOUT_S) != "ready":
            self.kill()
            raise _WorkerUnavailable(f"a worker process did not start within {WORKER_START_TIMEOUT_S:.0f} s "
                                     "(is math-verify installed?)")

    def _reply(self, timeout_s: float) -> str | None:
        """The next line from the worker, or None when it does not come within ``timeout_s``."""
        fd, data = self.process.stdout.fileno(), b""
        give_up_at = time.monotonic() + timeout_s
        while not data.endswith(b"\n"):
            left = give_up_at - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 64)
            if not chunk:  # the worker ended
                return None
            data += chunk
        return data.decode().strip()

    def ask(self, golds: list[str], answer: str, budget_s: float) -> bool | None:
        """The worker's verdict, or None when it took too long (it is then killed)."""
        request = json.dumps({"golds": golds, "answer": answer, "budget_s": budget_s}) + "\n"
        try:
            self.process.stdin.write(request.encode())
            self.process.stdin.flush()
        except OSError:
            self.kill()
            raise _WorkerLost from None
        reply = self._reply(budget_s + WORKER_GRACE_S)
        if reply not in ("0", "1"):
            logger.debug("a symbolic comparison ran past %.1f s; its worker is restarted", budget_s)
            self.kill()
            return None
        return reply == "1"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            pipe.close()

    def close(self) -> None:
        """Let an idle worker end by itself (end of its input), killing it only if it does not."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=2)
            self.process.stdout.close()
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


class _WorkerPool:
    """Idle workers, started on first need and reused; at most ``MAX_WORKERS`` busy at once."""

    def __init__(self):
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_WORKERS)

    def run(self, golds: list[str], answer: str, budget_s: float) -> bool:
        with self._slots:
            for _ in range(2):  # a worker found dead (killed from outside) is replaced once
                with self._lock:
                    worker = self._idle.pop() if self._idle else None
                worker = worker or _Worker()
                try:
                    verdict = worker.ask(golds, answer, budget_s)
                except _WorkerLost:
                    continue
                if verdict is None:
                    return False
                with self._lock:
                    self._idle.append(worker)
                return verdict
            raise _WorkerUnavailable("worker processes end as soon as they are started")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()

    def forget(self) -> None:
        """After fork: the child must not share the parent's workers (their pipes would interleave)."""
        self._idle = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_WORKERS)


_WORKERS = _WorkerPool()
atexit.register(_WORKERS.close)
os.register_at_fork(after_in_child=_WORKERS.forget)


# ------------------------------------------------------------------------------------------------ scorers


def _numbers_equal(gold: str, answer: str, allow_units: bool = False) -> bool:
    g, a = normalize_number(gold, allow_units), normalize_number(answer, allow_units)
    return g is not None and a is not None and g == a


def _strings_equal(gold: str, answer: str) -> bool:
    g, a = _canonical_string(gold), _canonical_string(answer)
    return bool(g) and g == a


def _exact_math(gold: str, answer: str) -> bool:
    """Competition maths before the symbolic check: plain numbers, then the exact string."""
    return _numbers_equal(gold, answer) or _strings_equal(gold, answer)


def _exact_gsm(gold: str, answer: str) -> bool:
    """Grade-school arithmetic: the number decides ("1,000" = "1000" = "$1,000.00"), units dropped."""
    return _numbers_equal(gold, answer, allow_units=True) or _strings_equal(gold, answer)


_CHOICE = re.compile(
    r"^(?:(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is)?\s*:?\s*)?"
    r"[(\[]?\s*([A-Za-z])\s*(?:[)\]]\s*[.:]?|[.:])?(?:(?<=[.:)\]])\s*.*)?$",
    re.IGNORECASE | re.DOTALL,
)


def choice_letter(answer: str) -> str | None:
    """The option letter of ``B``, ``(B)``, ``B)``, ``B. text``, ``\\text{B}``, ``Option B``; None otherwise.

    A lower-case letter counts only on its own, so ``\\boxed{a dog}`` is not option A.
    """
    s = _strip_wrappers(answer).strip()
    if not s or len(s) > 300:
        return None
    m = _CHOICE.match(s)
    if m is None:
        return None
    letter = m.group(1)
    if letter.islower() and len(s.strip("()[]. ")) > 1:
        return None
    return letter.upper()


def score_multiple_choice(gold: str, answer: str) -> bool:
    """Multiple choice (cQA, tQA, MMLU, the mini "mc" split): the option letters must agree."""
    g, a = choice_letter(gold), choice_letter(answer)
    if g is not None:
        return a == g
    return _strings_equal(gold, answer)


@dataclass(frozen=True)
class Scorer:
    """A scorer family: cheap exact comparisons, then (if ``symbolic``) math-verify's equivalence.

    Split in two so that one call tries the cheap part against every ground-truth entry before spending
    its time budget on the symbolic one.
    """

    exact: Callable[[str, str], bool]
    symbolic: bool
    numbers_final: bool = False
    """When both sides read as plain numbers, ``exact``'s verdict is final: no symbolic check (it costs
    milliseconds per call and cannot disagree with a comparison of two numbers)."""

    def needs_symbolic(self, gold: str, answer: str) -> bool:
        if not self.symbolic:
            return False
        return not (self.numbers_final and normalize_number(gold, True) is not None
                    and normalize_number(answer, True) is not None)

    def __call__(self, gold: str, answer: str) -> bool:
        return self.exact(gold, answer) or (self.needs_symbolic(gold, answer) and symbolic_equal(gold, answer))


# Named scorers, chosen by data_source (the same idea as verl's registries: one entry per family).
SCORERS: dict[str, Scorer] = {
    "math": Scorer(_exact_math, symbolic=True),
    "gsm": Scorer(_exact_gsm, symbolic=True, numbers_final=True),
    "mc": Scorer(score_multiple_choice, symbolic=False),
}

# data_source values of the released CLIPO files and the mini track, mapped to their scorer.
DATA_SOURCES: dict[str, str] = {
    "conrl/gsm8k": "gsm",
    "conrl/gsm_symbolic": "gsm",
    "conrl/gsm_p1": "gsm",
    "conrl/gsm_p2": "gsm",
    "conrl/math": "math",
    "conrl/math75": "math",
    "conrl/math_perturb_simple": "math",
    "conrl/math_perturb_hard": "math",
    "conrl/aime": "math",
    "conrl/aime2025": "math",
    "conrl/amc": "math",
    "conrl/theoremqa": "math",
    "conrl/mmlu": "mc",
    "conrl/mmlu2k": "mc",
    "conrl/commonsense_qa": "mc",
    "conrl/truthfulqa": "mc",
    **{f"clipo/mini/{split}": "gsm" for split in ("train", "test", "sym", "p1", "p2")},
    "clipo/mini/mc": "mc",
}

_MC_FRAGMENTS = ("mmlu", "commonsense", "csqa", "truthful", "multiple_choice", "multiplechoice")
_GSM_FRAGMENTS = ("gsm", "clipo/mini")


def scorer_name(data_source: object) -> str:
    """The scorer family for a data_source; unknown names are matched by fragments, default maths."""
    name = (_as_text(data_source) or "").strip().lower()
    if name in DATA_SOURCES:
        return DATA_SOURCES[name]
    tokens = set(re.split(r"[/_\-.\s]+", name))
    if "mc" in tokens or any(f in name for f in _MC_FRAGMENTS):
        return "mc"
    if any(f in name for f in _GSM_FRAGMENTS):
        return "gsm"
    return "math"


def _gold_answer(ground_truth: object) -> str | None:
    """The reference answer: the boxed answer of a full worked solution (MATH train) or the text itself."""
    if isinstance(ground_truth, numbers.Real) and not math.isfinite(ground_truth):
        return None  # a missing value (NaN) is no answer: its text "nan" would match \boxed{nan}
    text = _as_text(ground_truth)
    if text is None:
        return None
    boxed = extract_boxed(text) if "\\boxed" in text or "\\fbox" in text else None
    if boxed is None and "####" in text:  # GSM8K's original "solution #### answer" form
        boxed = text.rsplit("####", 1)[1].strip()
    answer = boxed if boxed is not None else text.strip()
    if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
        answer = answer.strip("$").strip()
    if answer.lower() == "nan":  # how pandas writes a missing value as text
        return None
    return answer or None


def _gold_answers(ground_truth: object) -> list[str]:
    """Every acceptable answer: the exact comparisons are cheap and the symbolic ones share one budget, so
    a long list costs no more time than a short one and none of its entries is dropped."""
    if isinstance(ground_truth, (list, tuple)) or type(ground_truth).__name__ == "ndarray":
        items = list(ground_truth)
    else:
        items = [ground_truth]
    return [g for g in (_gold_answer(item) for item in items) if g is not None]


def extract_answer(data_source: object, text: object) -> str | None:
    """The answer the scorer reads from a response: the option letter for multiple choice, else the box."""
    boxed = extract_boxed(text)
    if boxed is None:
        return None
    if scorer_name(data_source) == "mc":
        return choice_letter(boxed) or boxed
    return boxed


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float:
    """1.0 when the last boxed answer of ``solution_str`` matches ``ground_truth``, else 0.0.

    verl's custom reward signature; verl's reward loop may add keyword arguments (``reward_kwargs`` from the
    config, reward-router settings) and calls it from a thread pool, where the symbolic comparison runs in
    a worker process under the same deadline. Never raises; anything unparseable, and a call whose
    symbolic comparisons run out of ``CALL_BUDGET_S``, scores 0.0. ``ground_truth`` may be a bare answer, a
    full solution containing ``\\boxed{}``, or a list of acceptable answers (one budget for all of them).
    """
    del extra_info, kwargs  # part of verl's signature; the answer alone decides
    try:
        answer = extract_boxed(solution_str)
        if answer is None:
            return 0.0
        scorer = SCORERS[scorer_name(data_source)]
        golds = _gold_answers(ground_truth)
        if any(scorer.exact(gold, answer) for gold in golds):
            return 1.0
        golds = [gold for gold in golds if scorer.needs_symbolic(gold, answer)]
        return 1.0 if golds and _symbolic_bounded(golds, answer, CALL_BUDGET_S) else 0.0
    except Exception:  # noqa: BLE001 - untrusted input must never raise
        logger.debug("compute_score failed", exc_info=True)
        return 0.0
