import hashlib
import re
from collections import Counter

import pytest

from clipo.cli import main
from clipo.data import synthetic
from clipo.data.prompts import build_prompt
from clipo.data.schema import load_dataset
from clipo.errors import ConfigError

N_TRAIN, N_EVAL = 1500, 200

# An independent reading of the question text: sentence pattern -> operation on the running quantity.
OPERATIONS = [
    (re.compile(r"^\w+ (?:buys|finds|gets) (\d+) more$"), lambda a, k: a + k),
    (re.compile(r"^\w+ (?:gives away|loses|sells) (\d+)$"), lambda a, k: a - k),
    (re.compile(r"^\w+ doubles the \w+$"), lambda a, _: a * 2),
    (re.compile(r"^\w+ triples the \w+$"), lambda a, _: a * 3),
    (re.compile(r"^\w+ keeps (half|a third|a quarter|a fifth) of them$"),
     lambda a, k: divmod(a, {"half": 2, "a third": 3, "a quarter": 4, "a fifth": 5}[k])),
]


def solve(stem: str) -> tuple[str, str, int, int, list[int]]:
    """(name, item, answer, steps, every quantity) computed from the question text alone."""
    first, *ops, last = [s.strip() for s in stem.split(".") if s.strip()]
    name, start, item = re.fullmatch(r"(\w+) has (\d+) (\w+)", first).groups()
    assert last == f"How many {item} does {name} have now?"
    value, values = int(start), [int(start)]
    for sentence in ops:
        assert sentence.startswith(name + " ")
        for pattern, apply in OPERATIONS:
            m = pattern.match(sentence)
            if m:
                arg = m.group(1) if m.groups() else None
                value = apply(value, int(arg) if arg and arg.isdigit() else arg)
                if isinstance(value, tuple):
                    value, remainder = value
                    assert remainder == 0, f"inexact split in {stem!r}"
                break
        else:
            raise AssertionError(f"unrecognised sentence {sentence!r}")
        values.append(value)
    return name, item, value, len(ops), values


def split_question(content: str, split: str) -> tuple[str, list[str]]:
    """(stem, option lines) of a prompt, checking that it ends with the split's instruction."""
    question, _, _ = content.rpartition("\n")
    # the mc split, and a share of train, pose problems as multiple choice (with the MC instruction)
    choice = split == "mc" or (split == "train" and content.endswith(build_prompt("", "mini_mc")))
    assert content == build_prompt(question, "mini_mc" if choice else f"mini_{split}")
    if choice:
        question, options = question.split("\n")
        return question, re.findall(r"([ABCD])\) (\d+)", options)
    return question, []


@pytest.fixture(scope="module")
def frames():
    return synthetic.generate(seed=0, n_train=N_TRAIN, n_eval=N_EVAL)


def test_same_seed_gives_identical_files_and_another_seed_different_ones(tmp_path):
    digests = {}
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths = synthetic.write_mini(tmp_path / run, seed=seed, n_train=300, n_eval=40)
        digests[run] = {s: hashlib.sha256(p.read_bytes()).hexdigest() for s, p in paths.items()}
    assert digests["a"] == digests["b"]
    assert all(digests["a"][s] != digests["c"][s] for s in synthetic.SPLITS)


def test_split_sizes_and_verl_fields(frames):
    assert list(frames) == list(synthetic.SPLITS)
    for split, df in frames.items():
        assert len(df) == (N_TRAIN if split == "train" else N_EVAL)
        expected = {"clipo/mini/train", "clipo/mini/mc"} if split == "train" else {f"clipo/mini/{split}"}
        assert set(df["data_source"]) == expected
        assert set(df["ability"]) == {"math"}
        assert {r["style"] for r in df["reward_model"]} == {"rule"}
        assert [i["index"] for i in df["extra_info"]] == list(range(len(df)))
        assert {i["split"] for i in df["extra_info"]} == {split}
        assert all(len(p) == 1 and p[0]["role"] == "user" for p in df["prompt"])


def test_answers_follow_from_the_question_and_the_solution_is_correct_arithmetic(frames):
    for split, df in frames.items():
        for prompt, reward, info in zip(df["prompt"], df["reward_model"], df["extra_info"]):
            stem, options = split_question(prompt[0]["content"], split)
            name, _, answer, steps, values = solve(stem)
            assert all(0 < v <= synthetic.MAX_VALUE for v in values)
            assert info["steps"] == steps and info["answer"] == answer
            solution = info["solution"]
            equations = re.findall(r"(\d+) ([-+*/]) (\d+) = (\d+)\.", solution)
            assert solution.startswith(f"{name} starts with {values[0]}. ")
            assert [int(e[0]) for e in equations] == values[:-1]
            assert [int(e[3]) for e in equations] == values[1:]
            for a, op, b, c in equations:
                assert {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b),
                        "/": int(a) / int(b)}[op] == int(c)
            if options:
                choice = dict((letter, int(v)) for letter, v in options)
                assert list(choice) == list("ABCD") and len(set(choice.values())) == 4
                assert choice[reward["ground_truth"]] == answer
                assert solution.endswith(f"\\boxed{{{reward['ground_truth']}}}.")
            else:
                assert reward["ground_truth"] == str(answer)
                assert solution.endswith(f"The answer is \\boxed{{{answer}}}.")


def test_step_counts_per_split(frames):
    steps = {split: {i["steps"] for i in df["extra_info"]} for split, df in frames.items()}
    for split in ("train", "test", "sym", "mc"):
        assert steps[split] == set(synthetic.TRAIN_STEPS)
    assert steps["p1"] == {max(synthetic.TRAIN_STEPS) + 1}
    assert steps["p2"] == {max(synthetic.TRAIN_STEPS) + 2}


def test_sym_uses_held_out_names_and_items(frames):
    def pools(split):
        parsed = [solve(split_question(p[0]["content"], split)[0]) for p in frames[split]["prompt"]]
        return {n for n, *_ in parsed}, {i for _, i, *_ in parsed}

    train_names, train_items = pools("train")
    sym_names, sym_items = pools("sym")
    assert sym_names and sym_items
    assert not sym_names & train_names and not sym_items & train_items
    assert pools("test")[0] <= set(synthetic.TRAIN_NAMES)


def test_no_question_is_shared_between_or_within_splits(frames):
    stems = [split_question(p[0]["content"], split)[0] for split, df in frames.items() for p in df["prompt"]]
    assert len(stems) == len(set(stems))


def test_multiple_choice_letters_are_balanced(frames):
    counts = Counter(r["ground_truth"] for r in frames["mc"]["reward_model"])
    assert set(counts) == set("ABCD")
    assert all(0.15 * N_EVAL <= c <= 0.35 * N_EVAL for c in counts.values()), counts


def test_prompts_stay_short_for_the_tiny_model(frames):
    longest = max(len(p[0]["content"].split()) for df in frames.values() for p in df["prompt"])
    assert longest <= 60


def test_cli_writes_valid_files_and_corpus_has_every_training_text(tmp_path):
    assert main(["data", "synth", "--data-dir", str(tmp_path), "--seed", "1",
                 "--n-train", "50", "--n-eval", "10"]) == 0
    for split in synthetic.SPLITS:
        assert len(load_dataset(tmp_path / "mini" / f"{split}.parquet")) == (50 if split == "train" else 10)
    corpus = synthetic.mini_corpus(tmp_path)
    assert len(corpus) == 50
    assert all("\nLet's think step by step" in t and re.search(r"\\boxed\{(\d+|[ABCD])\}\.$", t) for t in corpus)
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_bad_sizes_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--n-eval 0"):
        synthetic.generate(n_train=10, n_eval=0)
    assert main(["data", "synth", "--data-dir", str(tmp_path), "--n-train", "-5"]) == 2
    assert not (tmp_path / "mini").exists()
