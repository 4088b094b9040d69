"""Mini track tokenizer, tiny Qwen2 save/load and the shared generation helpers (tiny sizes, CPU)."""

from __future__ import annotations

import pytest
import torch

from clipo import generation, hf
from clipo.data.synthetic import generate as synthesise
from clipo.mini import model as mini_model
from clipo.mini.tokenizer import MAX_SINGLE_TOKEN_NUMBER, build_tokenizer

TINY = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_position_embeddings=192)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    train = synthesise(seed=0, n_train=200, n_eval=5)["train"]
    return [p[0]["content"] for p in train["prompt"]] + [e["solution"] for e in train["extra_info"]]


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return build_tokenizer(corpus)


@pytest.fixture(scope="module")
def tiny(tokenizer):
    torch.set_num_threads(1)
    return mini_model.new_model(tokenizer, seed=0, **TINY)


def test_tokenizer_is_deterministic(corpus, tokenizer):
    again = build_tokenizer(corpus)
    assert again.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()
    assert build_tokenizer(corpus[:50]).backend_tokenizer.to_str() != tokenizer.backend_tokenizer.to_str()


def test_every_small_number_is_one_token(tokenizer):
    for n in range(MAX_SINGLE_TOKEN_NUMBER + 1):
        for text in (str(n), f" {n}"):
            assert len(tokenizer.encode(text, add_special_tokens=False)) == 1, repr(text)
    # inside a solution, as the model sees them
    tokens = tokenizer.tokenize("Tom starts with 18. 18 - 7 = 11. The answer is \\boxed{11}.")
    assert "Ġ18" in tokens and "11" in tokens and "Ġ11" in tokens


def test_tokenizer_special_tokens_round_trip_and_padding(tokenizer, corpus):
    ids = {tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id}
    assert len(ids) == 3 and None not in ids
    assert tokenizer.padding_side == "left"
    text = corpus[-1]
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    # untrusted text outside the corpus still encodes (byte level: no unknown token)
    weird = "ß∑ 10**10**10 \\boxed{{"
    assert tokenizer.decode(tokenizer.encode(weird, add_special_tokens=False)) == weird


def test_tokenizer_too_small_for_numbers_is_a_clear_error(corpus):
    with pytest.raises(ValueError, match="vocab_size=300"):
        build_tokenizer(corpus, vocab_size=300)


def test_prompt_rendering_is_bos_content_newline(tokenizer):
    assert generation.render_prompt(tokenizer, "What is 2 + 3?") == "<|bos|>What is 2 + 3?\n"
    messages = [{"role": "user", "content": "Hi"}]
    assert generation.render_prompt(tokenizer, messages) == "<|bos|>Hi\n"


def test_save_load_round_trip(tmp_path, tokenizer, tiny):
    out = hf.save(tiny, tokenizer, tmp_path / "m", extra_files={"note.json": "{}"})
    model2, tok2 = hf.load(out)
    assert model2.config.tie_word_embeddings and model2.config._attn_implementation == "eager"
    a, b = tiny.state_dict(), model2.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert tok2.get_vocab() == tokenizer.get_vocab()
    text = "Tom has 18 apples.\nTom starts with 18. 18 * 2 = 36. The answer is \\boxed{36}."
    assert tok2(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert tok2.padding_side == "left" and tok2.chat_template == tokenizer.chat_template
    assert (out / "note.json").read_text() == "{}"
    # saving again replaces the folder atomically and leaves no temporary folders behind
    hf.save(tiny, tokenizer, out)
    assert not (out / "note.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hf.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        hf.load(tmp_path / "empty")


def test_new_model_leaves_the_global_rng_alone(tokenizer):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mini_model.new_model(tokenizer, seed=7, **TINY)
    assert torch.equal(torch.rand(3), expected)


def test_encode_prompts_left_pads(tokenizer):
    ids, mask = generation.encode_prompts(tokenizer, ["Tom has 5 apples.", "Hi"])
    assert ids.shape == mask.shape and ids.shape[0] == 2
    assert mask[0].all() and not mask[1, 0] and mask[1, -1]
    assert ids[1, 0] == tokenizer.pad_token_id
    assert (ids[:, :][mask.bool()] == tokenizer.bos_token_id).sum() == 2  # one bos each, from the template


def test_response_mask_cuts_after_first_stop():
    ids = torch.tensor([[5, 6, 1, 7, 1], [5, 5, 5, 5, 5], [1, 0, 0, 0, 0]])
    mask = generation.response_mask_from_ids(ids, [1])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_generate_shapes_masks_and_determinism(tokenizer, tiny):
    ids, mask = generation.encode_prompts(tokenizer, ["Tom has 5 apples.", "Ann has 12 coins. She sells 3."])
    kw = dict(max_new_tokens=12, do_sample=True, temperature=1.0, top_p=1.0)
    r1, m1 = generation.generate(tiny, tokenizer, ids, mask, seed=3, **kw)
    r2, m2 = generation.generate(tiny, tokenizer, ids, mask, seed=3, **kw)
    assert torch.equal(r1, r2) and torch.equal(m1, m2)
    assert r1.shape == m1.shape and r1.shape[0] == 2 and 1 <= r1.shape[1] <= 12
    assert (r1[m1 == 0] == tokenizer.pad_token_id).all()
    # under the global seed too, and a private seed leaves the global stream untouched
    torch.manual_seed(11)
    g1, _ = generation.generate(tiny, tokenizer, ids, mask, **kw)
    torch.manual_seed(11)
    generation.generate(tiny, tokenizer, ids, mask, seed=99, **kw)
    g2, _ = generation.generate(tiny, tokenizer, ids, mask, **kw)
    assert torch.equal(g1, g2)
    # greedy decoding equals the argmax continuation of a plain forward pass (KV cache changes nothing)
    greedy, gmask = generation.generate(tiny, tokenizer, ids, mask, max_new_tokens=4, do_sample=False)
    seq, att = ids.clone(), mask.clone()
    for _ in range(4):
        pos = (att.cumsum(-1) - 1).clamp(min=0)
        nxt = tiny(input_ids=seq, attention_mask=att, position_ids=pos).logits[:, -1].argmax(-1, keepdim=True)
        seq, att = torch.cat([seq, nxt], 1), torch.cat([att, torch.ones_like(nxt)], 1)
    expected = seq[:, ids.shape[1]:][:, :greedy.shape[1]]
    assert torch.equal(greedy[gmask.bool()], expected[gmask.bool()])


def test_generate_matches_hf_generate_when_rows_stop_at_different_steps(tokenizer, tiny):
    """The decoding loop drops stopped rows from batch and cache: greedy output must equal HF ``generate``."""
    import copy

    from transformers import GenerationConfig

    # Raw texts with different last tokens (a chat template would end every prompt alike, and an untrained
    # model would then continue every row identically).
    prompts = ["Tom has 5", "Ann sells 3 coins", "Hi", "Leo gets 2 more cards", "Mia keeps half"]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    model = copy.deepcopy(tiny)
    # Make one token the untrained model emits also end a response, chosen so rows stop at different steps.
    free, _ = generation.generate(tiny, tokenizer, ids, mask, max_new_tokens=16, do_sample=False)

    def first_positions(token):
        return {row.tolist().index(token) if token in row.tolist() else 16 for row in free}

    stop_token = next(t for t in free.flatten().tolist() if len(first_positions(t)) > 1)
    model.generation_config.eos_token_id = sorted({tokenizer.eos_token_id, stop_token})
    stops = generation.stop_token_ids(model, tokenizer)
    ours, ours_mask = generation.generate(model, tokenizer, ids, mask, max_new_tokens=16, do_sample=False)
    hf = model.generate(input_ids=ids, attention_mask=mask, generation_config=GenerationConfig(
        max_new_tokens=16, do_sample=False, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id))
    hf = hf[:, ids.shape[1]:]
    hf_mask = generation.response_mask_from_ids(hf, stops)
    lengths = ours_mask.sum(-1)
    assert lengths.tolist() == hf_mask.sum(-1).tolist()
    assert len(set(lengths.tolist())) > 1, "the fixture should make rows stop at different steps"
    for row in range(len(prompts)):
        n = int(lengths[row])
        assert ours[row, :n].tolist() == hf[row, :n].tolist()


def test_generate_top_p_keeps_the_nucleus(tokenizer, tiny):
    ids, mask = generation.encode_prompts(tokenizer, ["Tom has 5 apples.", "Hi"])
    greedy, _ = generation.generate(tiny, tokenizer, ids, mask, max_new_tokens=6, do_sample=False)
    nucleus, _ = generation.generate(tiny, tokenizer, ids, mask, max_new_tokens=6, do_sample=True,
                                     top_p=1e-6, seed=5)
    assert torch.equal(nucleus, greedy)  # a vanishing nucleus is the single most likely token


def test_generate_repeats_share_the_prompt_encoding(tokenizer, tiny):
    """``repeats`` continuations of each prompt equal generating from the prompts repeated row by row."""
    ids, mask = generation.encode_prompts(tokenizer, ["Tom has 5 apples.", "Ann has 12 coins. She sells 3."])
    shared, shared_mask = generation.generate(tiny, tokenizer, ids, mask, max_new_tokens=8, do_sample=False,
                                              repeats=3)
    rows, rows_mask = generation.generate(tiny, tokenizer, ids.repeat_interleave(3, 0),
                                          mask.repeat_interleave(3, 0), max_new_tokens=8, do_sample=False)
    assert torch.equal(shared, rows) and torch.equal(shared_mask, rows_mask)
    sampled, _ = generation.generate(tiny, tokenizer, ids, mask, max_new_tokens=8, do_sample=True, seed=1,
                                     repeats=3)
    assert sampled.shape[0] == 6


def test_shared_prefix_decoding_equals_repeated_rows_when_rows_stop_at_different_steps(tokenizer, tiny):
    """The repeats path reads each prompt's keys once (decode.SharedPrefixDecoder); with rows leaving at
    different steps, greedy and sampled output equal decoding the repeated prompts row by row."""
    import copy

    from clipo import decode

    ids, mask = generation.encode_prompts(tokenizer, ["Tom has 5", "Ann sells 3 coins", "Hi"])
    free, _ = generation.generate(tiny, tokenizer, ids, mask, max_new_tokens=16, do_sample=True, seed=7,
                                  repeats=4)

    def first_positions(token):
        return {row.tolist().index(token) if token in row.tolist() else 16 for row in free}

    stop_token = next(t for t in free.flatten().tolist() if len(first_positions(t)) > 2)
    model = copy.deepcopy(tiny)
    model.generation_config.eos_token_id = sorted({tokenizer.eos_token_id, stop_token})
    assert decode.supports(model.eval())
    for sample in (False, True):
        shared, shared_mask = generation.generate(model, tokenizer, ids, mask, max_new_tokens=16,
                                                  do_sample=sample, seed=7, repeats=4)
        rows, rows_mask = generation.generate(model, tokenizer, ids.repeat_interleave(4, 0),
                                              mask.repeat_interleave(4, 0), max_new_tokens=16,
                                              do_sample=sample, seed=7)
        assert torch.equal(shared_mask, rows_mask) and torch.equal(shared, rows)
    assert len(set(shared_mask.sum(-1).tolist())) > 2, "the fixture should make rows stop at different steps"


def test_lean_decoder_logits_equal_hf_forward_at_every_position(tokenizer, tiny):
    """clipo.decode computes what Qwen2ForCausalLM computes, on left-padded rows of different lengths."""
    from clipo import decode

    ids, mask = generation.encode_prompts(tokenizer, ["Tom has 5 apples.", "Ann has 12 coins. She sells 3."])
    follow = torch.randint(5, len(tokenizer) - 5, (2, 6), generator=torch.Generator().manual_seed(0))
    full_ids, full_mask = torch.cat([ids, follow], 1), torch.cat([mask, torch.ones_like(follow)], 1)
    tiny.eval()
    assert decode.supports(tiny)
    with torch.no_grad():
        expected = tiny(input_ids=full_ids, attention_mask=full_mask,
                        position_ids=(full_mask.cumsum(-1) - 1).clamp(min=0)).logits
        cache = generation._preallocated_cache(tiny, full_ids.shape[1])
        position = (mask.cumsum(-1) - 1).clamp(min=0)
        tiny(input_ids=ids, attention_mask=mask, position_ids=position, past_key_values=cache, use_cache=True)
        decoder = decode.Qwen2Decoder(tiny, full_ids.shape[1])
        position, step_mask = position[:, -1:], mask
        for t in range(follow.shape[1]):
            step_mask, position = torch.cat([step_mask, torch.ones(2, 1, dtype=mask.dtype)], 1), position + 1
            logits = decoder.step(follow[:, t], position, step_mask, cache)
            torch.testing.assert_close(logits, expected[:, ids.shape[1] + t], rtol=1e-4, atol=1e-5)


def test_sampling_draws_tokens_with_their_probabilities():
    logits = torch.log(torch.tensor([[0.5, 0.0, 0.3, 0.2], [0.1, 0.1, 0.1, 0.7]]))
    draws = torch.stack([generation._next_token(logits, True, 1.0, 1.0, torch.Generator().manual_seed(i))
                         for i in range(4000)])
    freq = torch.stack([torch.bincount(draws[:, row], minlength=4) for row in range(2)]).float() / 4000
    torch.testing.assert_close(freq, logits.exp(), rtol=0, atol=0.03)
    assert (draws[:, 0] != 1).all()  # a zero-probability token is never drawn
    nucleus = torch.stack([generation._next_token(logits, True, 1.0, 0.6, torch.Generator().manual_seed(i))
                           for i in range(2000)])
    assert set(nucleus[:, 0].tolist()) == {0, 2} and set(nucleus[:, 1].tolist()) == {3}
