"""`clipo sft` on a tiny config: loss masking, learning, checkpoint/resume equality, clear errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from clipo.cli import main as cli_main
from clipo.data.synthetic import write_mini
from clipo.errors import ConfigError
from clipo.methods import MiniSFT
from clipo.mini import sft

TINY = MiniSFT(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_position_embeddings=192,
               steps=6, batch_size=8, lr=3e-3, warmup_steps=1, checkpoint_every=3)


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    torch.set_num_threads(1)
    data_dir = tmp_path_factory.mktemp("data")
    return write_mini(data_dir, seed=0, n_train=120, n_eval=5)["train"]


def _weights(folder):
    return load_file(folder / "model.safetensors")


def test_collate_trains_on_solution_tokens_only():
    examples = [([2, 10, 11], [20, 21, 1]), ([2, 12], [22, 1])]
    input_ids, attention_mask, labels = sft.collate(examples, pad_id=0)
    assert input_ids.tolist() == [[2, 10, 11, 20, 21, 1], [2, 12, 22, 1, 0, 0]]
    assert attention_mask.tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 20, 21, 1], [-100, -100, 22, 1, -100, -100]]


def test_batch_order_is_a_pure_function_of_seed_and_step():
    steps = [sft.batch_indices(10, 4, s, seed=1) for s in range(5)]  # 20 draws = two full epochs
    assert np.array_equal(steps[3], sft.batch_indices(10, 4, 3, seed=1))
    flat = np.concatenate(steps)
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))
    assert not np.array_equal(flat[:10], flat[10:])  # a fresh permutation per epoch
    assert not np.array_equal(sft.batch_indices(10, 4, 0, seed=2), steps[0])


def test_examples_render_prompts_like_generation(train_file):
    from clipo.generation import encode_prompts
    from clipo.mini.tokenizer import build_tokenizer

    prompts, solutions = sft.load_examples(train_file)
    tokenizer = build_tokenizer([m["content"] for p in prompts for m in p] + solutions)
    (prompt_ids, solution_ids), = sft.tokenize_examples(tokenizer, prompts[:1], solutions[:1])
    input_ids, _ = encode_prompts(tokenizer, prompts[:1])
    assert input_ids[0].tolist() == prompt_ids
    assert solution_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(solution_ids[:-1]) == solutions[0]


def test_bare_answers_cut_a_seeded_share_of_demonstrations_to_their_final_sentence(train_file):
    """The cut rows keep only "The answer is \\boxed{N}." of their own solution; the others are untouched;
    which rows are cut depends on the seed only."""
    _, solutions = sft.load_examples(train_file)
    cut = sft.bare_answers(solutions, 0.5, seed=0)
    bare = [new != old for new, old in zip(cut, solutions)]
    assert 0.35 < np.mean(bare) < 0.65
    for new, old, is_bare in zip(cut, solutions, bare):
        if is_bare:
            assert new.startswith("The answer is \\boxed{") and old.endswith(new) and "=" not in new
        else:
            assert new == old
    assert sft.bare_answers(solutions, 0.5, seed=0) == cut
    assert sft.bare_answers(solutions, 0.5, seed=1) != cut
    assert sft.bare_answers(solutions, 0.0, seed=0) == solutions


def test_a_solution_without_its_final_sentence_cannot_be_cut():
    from clipo.errors import SchemaError

    with pytest.raises(SchemaError, match="training row 1 has no final sentence"):
        sft.bare_answers(["x. The answer is \\boxed{3}.", "3 + 4 = 7."], 0.999, seed=0)


def test_sft_learns_and_writes_an_hf_folder(tmp_path, train_file):
    cfg = replace(TINY, steps=12, checkpoint_every=100)
    info = sft.run_sft(train_file, tmp_path / "base-model", cfg=cfg, seed=0, progress=False)
    assert np.mean(info["losses"][-3:]) < np.mean(info["losses"][:3]) - 0.5
    out = tmp_path / "base-model"
    assert json.loads((out / "training_info.json").read_text())["steps"] == 12
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert not sft.default_checkpoint_dir(out).exists()  # removed once the output is complete
    from clipo.hf import load

    model, tokenizer = load(out)
    assert model.config.num_hidden_layers == 1 and len(tokenizer) == model.config.vocab_size


def test_micro_batches_give_the_whole_batch_gradient(tmp_path, train_file):
    """Length-sorted micro-batches are an optimisation only: the same training up to float rounding."""
    whole = replace(TINY, micro_batches=1)
    sft.run_sft(train_file, tmp_path / "whole", whole, progress=False)
    sft.run_sft(train_file, tmp_path / "micro", replace(TINY, micro_batches=4), progress=False)
    first_loss = [json.loads((tmp_path / run / "training_info.json").read_text())["losses"][0]
                  for run in ("whole", "micro")]
    assert first_loss[0] == pytest.approx(first_loss[1], abs=1e-4)  # the batch's token mean, not a sum of means
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "micro")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_kill_and_resume_gives_identical_weights(tmp_path, train_file):
    straight = tmp_path / "straight"
    sft.run_sft(train_file, straight, cfg=TINY, seed=0, progress=False)
    chunked = tmp_path / "chunked"
    assert sft.run_sft(train_file, chunked, cfg=TINY, seed=0, stop_after=3, progress=False) is None
    assert not chunked.exists() and (sft.default_checkpoint_dir(chunked) / sft.CHECKPOINT_FILE).exists()
    info = sft.run_sft(train_file, chunked, cfg=TINY, seed=0, progress=False)
    a, b = _weights(straight), _weights(chunked)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert info["losses"] == json.loads((straight / "training_info.json").read_text())["losses"]


def test_checkpoint_from_other_settings_is_not_resumed(tmp_path, train_file, capsys):
    out = tmp_path / "m"
    sft.run_sft(train_file, out, cfg=TINY, seed=0, stop_after=3, progress=False)
    info = sft.run_sft(train_file, out, cfg=replace(TINY, steps=4, lr=1e-3), seed=0, progress=False)
    assert "ignoring checkpoint" in capsys.readouterr().out
    assert len(info["losses"]) == 4


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["sft", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    assert "no such dataset file" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="sft.steps=0"):
        MiniSFT(steps=0)
    with pytest.raises(ConfigError, match=r"sft.bare_answer_share=1.0 must be in \[0, 1\)"):
        MiniSFT(bare_answer_share=1.0)
