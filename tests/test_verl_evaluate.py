"""GPU evaluation's pure parts on CPU: prompts, SGLang request parameters, record assembly, Pass@1 —
and the whole ``evaluate`` orchestration against a stand-in SGLang engine (no GPU, no sglang install)."""

import sys
import types

import pandas as pd
import pytest

from clipo.data.registry import eval_files
from clipo.data.synthetic import generate_split
from clipo.evaluate import sampling_for
from clipo.scores import SAMPLE_COLUMNS, SCORE_COLUMNS, read_scores
from clipo.verl import evaluate as gpu_eval

RUN_ID = "I_qwen2.5-3b-instruct_grpo_infonce_tau0.05_g16_s0_verl"


class Tokenizer:
    """Records how prompts are rendered (verl renders with add_generation_prompt=True, untokenized) and
    tokenizes a text as its characters' code points."""

    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "|".join(f"{m['role']}:{m['content']}" for m in messages) + "|assistant:"

    def __call__(self, texts, add_special_tokens):
        assert add_special_tokens is False
        if isinstance(texts, str):
            return {"input_ids": [ord(c) for c in texts]}
        return {"input_ids": [[ord(c) for c in t] for t in texts]}

    def get_vocab(self):
        return {chr(i): i for i in range(128)}


def _model_config(monkeypatch, positions):
    """The model's config.json as AutoConfig would read it: only its number of positions matters here."""
    import transformers

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained",
                        staticmethod(lambda path: types.SimpleNamespace(max_position_embeddings=positions)))


def _text(ids):
    return "".join(map(chr, ids))


def bos_tokenizer():
    """A real fast tokenizer that, like Llama-3.1's and DeepSeek-R1-Distill's, adds BOS when asked to AND
    whose chat template starts with the BOS token."""
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<bos>", "<eos>", "<unk>", "user:", "assistant:", "what", "is", "2", "+", "?"]
    raw = RawTokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 0)])
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>")
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return tok


def _problems(n=4):
    return generate_split("test", n, seed=0, seen=set())


def _answer(problems, i):
    return problems["reward_model"].iloc[i]["ground_truth"]


def test_request_parameters_follow_the_tracks_protocol():
    assert gpu_eval.engine_sampling_params(sampling_for("I")) == {
        "max_new_tokens": 2048,
        "temperature": 0.0,
        "top_p": 1.0,
    }  # Table 8: greedy
    assert gpu_eval.engine_sampling_params(sampling_for("II")) == {
        "max_new_tokens": 4096,
        "temperature": 0.6,
        "top_p": 0.95,
    }
    assert sampling_for("II").n == 16


def test_prompts_records_and_pass_at_1():
    problems = _problems()
    prompts = gpu_eval.build_prompts(Tokenizer(), problems)
    assert _text(prompts[0]).startswith("user:") and _text(prompts[0]).endswith("|assistant:")
    flat = gpu_eval.expand(prompts, 2)
    assert flat[:2] == [prompts[0]] * 2 and len(flat) == 8
    # sample 0 of every problem is right, sample 1 only for problem 0 → Pass@1 = 5/8
    outputs = [
        {"text": f"so \\boxed{{{_answer(problems, i // 2) if i % 2 == 0 or i == 1 else 999}}}"}
        for i in range(len(flat))
    ]
    responses = gpu_eval.regroup(outputs, 2)
    samples = gpu_eval.score_samples(RUN_ID, "GSM8K", problems, responses)
    assert list(samples.columns) == list(SAMPLE_COLUMNS)
    assert (
        samples["problem_id"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
        and samples["sample_id"].tolist() == [0, 1] * 4
    )
    assert samples["correct"].tolist() == [True, True, True, False, True, False, True, False]
    with pytest.raises(ValueError, match="multiple of n=3"):
        gpu_eval.regroup(outputs, 3)


def test_prompts_start_with_one_bos_where_the_template_holds_it():
    tok = bos_tokenizer()
    problems = pd.DataFrame({"prompt": [[{"role": "user", "content": "what is 2 + 2 ?"}]]})
    text = tok.apply_chat_template(problems["prompt"][0], tokenize=False, add_generation_prompt=True)
    assert tok(text)["input_ids"][:2] == [0, 0]  # what SGLang did with the text: two BOS
    (ids,) = gpu_eval.build_prompts(tok, problems)
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    # = the template tokenized in one call (tokenize=True), as verl's RL dataset measures prompts
    assert ids == tok.apply_chat_template(problems["prompt"][0], tokenize=True, add_generation_prompt=True)["input_ids"]


def test_evaluate_end_to_end_with_a_stand_in_engine(tmp_path, monkeypatch):
    problems = _problems(3)
    for f in eval_files("I"):
        path = tmp_path / "data" / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        problems.to_parquet(path)
    calls = []
    prompts = gpu_eval.build_prompts(Tokenizer(), problems)
    texts = {
        _text(prompts[0]): f"\\boxed{{{_answer(problems, 0)}}}",
        _text(prompts[1]): f"\\boxed{{{_answer(problems, 1)}}}",
        _text(prompts[2]): "no box",
    }

    class Engine:
        def __init__(self, **kwargs):
            calls.append(kwargs)

        def generate(self, input_ids, sampling_params):
            calls.append(len(input_ids))
            return [{"text": texts[_text(p)]} for p in input_ids]

        def shutdown(self):
            calls.append("shutdown")

    monkeypatch.setitem(sys.modules, "sglang", types.SimpleNamespace(Engine=Engine))
    import transformers

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", staticmethod(lambda path: Tokenizer()))
    _model_config(monkeypatch, 32768)
    scores = gpu_eval.evaluate(
        "/models/final",
        RUN_ID,
        "paper-gpu",
        str(tmp_path / "data"),
        str(tmp_path / "out"),
        tp_size=1,
        dp_size=8,
        batch_size=2,
    )
    assert calls[0]["dp_size"] == 8 and calls[0]["model_path"] == "/models/final" and calls[-1] == "shutdown"
    assert calls[1:3] == [2, 1]  # 3 problems × n=1 in requests of at most 2
    assert list(scores["benchmark"]) == [f.benchmark for f in eval_files("I")]
    assert scores["score"].tolist() == pytest.approx([200 / 3] * 8)  # the third problem has no boxed answer
    on_disk = read_scores(tmp_path / "out" / "scores.csv")
    assert list(on_disk.columns) == list(SCORE_COLUMNS) and set(on_disk["method"]) == {"grpo"}
    samples = pd.read_parquet(tmp_path / "out" / "samples.parquet")
    assert list(samples.columns) == list(SAMPLE_COLUMNS) and len(samples) == 3 * 8
    subset = gpu_eval.evaluate(
        "/models/final",
        RUN_ID,
        "paper-gpu",
        str(tmp_path / "data"),
        str(tmp_path / "o2"),
        benchmarks=["P1", "MMLU"],
    )
    assert list(subset["benchmark"]) == ["P1", "MMLU"]


def test_clipo_evaluate_is_one_parser_for_both_backends(tmp_path, monkeypatch, capsys):
    """`clipo evaluate` takes the backend from the run id; each backend refuses the other's options."""
    from clipo.cli import main as cli_main

    seen = {}

    def fake_evaluate(model, run_id, source, data_dir, out, **kwargs):
        seen.update(kwargs)
        return pd.DataFrame({"benchmark": [], "score": [], "n_problems": [], "n_samples": []})

    monkeypatch.setattr(gpu_eval, "evaluate", fake_evaluate)
    base = ["evaluate", "--model", "m", "--source", "s", "--data-dir", "d", "--out", str(tmp_path)]
    assert cli_main([*base, "--run-id", RUN_ID, "--backend", "verl"]) == 0
    assert (seen["batch_size"], seen["tp_size"], seen["dp_size"], seen["mem_fraction"]) == (1024, 1, 1, 0.85)
    assert cli_main([*base, "--run-id", RUN_ID, "--dp-size", "8", "--batch-size", "7"]) == 0
    assert (seen["batch_size"], seen["dp_size"]) == (7, 8)
    assert cli_main([*base, "--run-id", RUN_ID, "--device", "cpu"]) == 2
    assert "--device is an option of --backend mini" in capsys.readouterr().err
    assert cli_main([*base, "--run-id", RUN_ID, "--backend", "mini"]) == 2
    assert "names backend 'verl'" in capsys.readouterr().err
    mini_run = "mini_mini-base_grpo_none_tau-_g8_s0_mini"
    assert cli_main([*base, "--run-id", mini_run, "--tp-size", "2"]) == 2
    assert "--tp-size is an option of --backend verl" in capsys.readouterr().err


def test_a_prompt_beyond_the_models_positions_or_a_busy_folder_fails_before_the_engine_starts(tmp_path, monkeypatch):
    """The checks of the CPU evaluator hold here too: a prompt that leaves no room for the answer is refused
    naming file and row, and a second evaluation into a folder being evaluated is refused — both before
    SGLang takes the GPUs."""
    import transformers

    from clipo.errors import ConfigError
    from clipo.lock import RunFolderLocked, run_folder_lock

    problems = _problems(3)
    for f in eval_files("I"):
        path = tmp_path / "data" / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        problems.to_parquet(path)
    started = []
    monkeypatch.setitem(sys.modules, "sglang", types.SimpleNamespace(Engine=lambda **kw: started.append(kw)))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", staticmethod(lambda path: Tokenizer()))
    run = dict(model_path="/models/final", run_id=RUN_ID, source="paper-gpu", data_dir=str(tmp_path / "data"))
    longest = max(len(Tokenizer().apply_chat_template(p, False, True)) for p in problems["prompt"])
    _model_config(monkeypatch, sampling_for("I").max_new_tokens + longest - 1)
    with pytest.raises(ConfigError, match=r"row \d+: the prompt is \d+ tokens"):
        gpu_eval.evaluate(**run, out=str(tmp_path / "out"))
    _model_config(monkeypatch, 32768)
    with run_folder_lock(tmp_path / "busy", activity="evaluated"), pytest.raises(RunFolderLocked):
        gpu_eval.evaluate(**run, out=str(tmp_path / "busy"))
    assert started == []
