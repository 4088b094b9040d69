"""Prompt encoding and batched generation shared by SFT, RL rollouts and evaluation.

Prompts always go through the tokenizer's chat template (the mini tokenizer's is a minimal
``<|bos|>question\\n``; instruct models bring their own), so training and evaluation see the same
token sequence. Generation is HF ``generate`` with the KV cache; responses are cut at the first
end-of-sequence token, which stays inside the response mask (its log-prob is trained, as in verl).
"""

from __future__ import annotations

from collections.abc import Sequence

Messages = list[dict]


def render_prompt(tokenizer, prompt: str | Messages) -> str:
    """The model's input text for one prompt: a plain string is one user message."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if tokenizer.chat_template is None:  # a base LM without template: the raw contents
        return "\n".join(m["content"] for m in messages) + "\n"
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompts(tokenizer, prompts: Sequence[str | Messages]):
    """Left-padded ``(input_ids, attention_mask)`` [B, T_prompt] for a batch of prompts."""
    texts = [render_prompt(tokenizer, p) for p in prompts]
    # The template already holds any bos token; the tokenizer must not add a second one.
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False,
                    padding_side="left")
    return enc["input_ids"], enc["attention_mask"]


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a response: the tokenizer's eos plus any the model's generation config adds."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    if configured is not None:
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return sorted(i for i in ids if i is not None)


def response_mask_from_ids(response_ids, stop_ids: Sequence[int]):
    """1 for tokens up to and including the first stop token of each row, 0 after it."""
    import torch

    is_stop = torch.isin(response_ids, torch.tensor(list(stop_ids), dtype=response_ids.dtype))
    stopped_before = (torch.cumsum(is_stop.int(), dim=1) - is_stop.int()) > 0
    return (~stopped_before).long()


def generate(model, tokenizer, input_ids, attention_mask, max_new_tokens: int, do_sample: bool,
             temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None):
    """Sample (or greedily decode) continuations of left-padded prompts.

    Returns ``(response_ids [B, T_resp], response_mask [B, T_resp])`` with T_resp ≤ max_new_tokens;
    positions after a row's eos hold the pad id and mask 0. Sampling draws from torch's global RNG,
    so it is reproducible under ``torch.manual_seed``; ``seed`` instead uses a private stream and
    leaves the global one untouched.
    """
    import torch
    from transformers import GenerationConfig

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1")
    if do_sample and not temperature > 0:
        raise ValueError(f"temperature={temperature} must be > 0 when sampling")
    stop_ids = stop_token_ids(model, tokenizer)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_p=top_p if do_sample else None,
        top_k=0 if do_sample else None,  # no hidden top-k truncation: only T and top-p shape sampling
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                 generation_config=config)
    finally:
        model.train(was_training)
    response_ids = out[:, input_ids.shape[1]:]
    response_mask = response_mask_from_ids(response_ids, stop_ids)
    response_ids = response_ids.masked_fill(response_mask == 0, tokenizer.pad_token_id)
    return response_ids, response_mask


def decode_responses(tokenizer, response_ids, response_mask) -> list[str]:
    """Response texts without padding or special tokens (what the reward function scores)."""
    return [tokenizer.decode(ids[mask.bool()], skip_special_tokens=True)
            for ids, mask in zip(response_ids, response_mask, strict=True)]
