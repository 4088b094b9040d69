"""`clipo evaluate`: prompts that do not fit, unusable devices and concurrent runs fail with one line (issue 22)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from clipo.cli import main as cli_main

RUN_ID = "mini_mini-base_grpo_none_tau-_g8_s0_mini"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Mini data and an untrained tiny model folder with the mini track's 256 positions."""
    from clipo.data.synthetic import write_mini
    from clipo.hf import save
    from clipo.mini.model import new_model
    from clipo.mini.tokenizer import build_tokenizer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("reliab_eval")
    paths = write_mini(root / "data", seed=0, n_train=60, n_eval=4)
    train = pd.read_parquet(paths["train"])
    tokenizer = build_tokenizer([p[0]["content"] for p in train["prompt"]] +
                                [e["solution"] for e in train["extra_info"]])
    model = new_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    assert model.config.max_position_embeddings == 256
    save(model, tokenizer, root / "model")
    return root


def _args(root, out, *extra):
    return ["evaluate", "--model", str(root / "model"), "--run-id", RUN_ID, "--source", "mini",
            "--data-dir", str(root / "data"), "--out", str(out), "--limit", "2", "--max-new-tokens", "4",
            "--benchmarks", "Test", *extra]


def _with_prompt(root, tmp_path, content: str):
    """A copy of the data folder whose Test file has ``content`` as the prompt of row 1."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    test = data / "mini" / "test.parquet"
    df = pd.read_parquet(test)
    df.at[1, "prompt"] = [{"role": "user", "content": content}]
    df.to_parquet(test)
    return data


@pytest.mark.parametrize("content, needle", [
    ("What is 1 + 2? " * 180, "tokens, but the model has room for 252 prompt tokens"),  # ~2,700 tokens
    ("9" * 10_000_000, "10,000,000 characters"),  # 10 MB: refused before tokenizing
])
def test_a_prompt_longer_than_the_model_fits_is_refused_naming_its_row(tiny, tmp_path, capsys, content, needle):
    data = _with_prompt(tiny, tmp_path, content)
    argv = _args(tiny, tmp_path / "out")
    argv[argv.index("--data-dir") + 1] = str(data)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{data / 'mini' / 'test.parquet'}: row 1: the prompt is" in err and needle in err, err
    assert not (tmp_path / "out" / "scores.csv").exists()


def test_max_new_tokens_leaving_no_room_for_the_prompt_is_refused(tiny, tmp_path, capsys):
    argv = _args(tiny, tmp_path / "out")
    argv[argv.index("--max-new-tokens") + 1] = "250"  # the shortest prompt has more than 6 tokens
    assert cli_main(argv) == 2
    assert "row 0: the prompt is" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["bogus", "cuda:7" if torch.cuda.is_available() else "cuda"])
def test_an_unusable_device_is_one_line(tiny, tmp_path, capsys, device):
    assert cli_main(_args(tiny, tmp_path / "out", "--device", device)) == 2
    err = capsys.readouterr().err
    assert f"--device {device!r} cannot be used here" in err and "Traceback" not in err


def test_a_second_evaluation_into_the_same_folder_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from clipo.lock import run_folder_lock
            with run_folder_lock({str(out)!r}, activity="evaluated"):
                print("held", flush=True)
                time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli_main(_args(tiny, out)) == 2
        err = capsys.readouterr().err
        assert f"{out}: already being evaluated by" in err and f"pid {holder.pid}" in err
        assert not (out / "scores.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    assert cli_main(_args(tiny, out)) == 0
    assert (out / "scores.csv").exists() and (out / "samples.parquet").exists()


def test_evaluating_a_verl_run_without_sglang_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sglang", None)  # what `import sglang` meets where it is not installed
    run_id = "I_qwen2.5-3b-instruct_grpo_none_tau-_g8_s0_verl"
    argv = ["evaluate", "--model", "Qwen/Qwen2.5-3B-Instruct", "--run-id", run_id, "--source", "verl",
            "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert f"evaluating verl run {run_id} needs SGLang" in err and "Traceback" not in err


def test_max_new_tokens_beyond_the_model_positions_is_refused(tiny, tmp_path, capsys):
    argv = _args(tiny, tmp_path / "out")
    argv[argv.index("--max-new-tokens") + 1] = "300"
    assert cli_main(argv) == 2
    assert "--max-new-tokens=300 leaves no room for a prompt in the 256 positions" in capsys.readouterr().err
