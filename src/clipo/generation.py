"""Prompt encoding and batched generation shared by SFT, RL rollouts and evaluation.

Prompts always go through the tokenizer's chat template (the mini tokenizer's is a minimal
``<|bos|>question\\n``; instruct models bring their own), so training and evaluation see the same
token sequence. Generation is a KV-cache decoding loop (``generate``); responses are cut at the first
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


def check_datasets_fit(tokenizer, positions: int | None, max_new_tokens: dict[str, int], datasets: dict,
                       paths: dict[str, str], model: str) -> None:
    """Every prompt of every benchmark must leave room for its ``max_new_tokens`` in the model's
    ``positions`` (``max_position_embeddings``; None: the model states no limit) — checked before any
    generation, so a bad row fails in seconds instead of after the engine started."""
    from clipo.errors import ConfigError

    for benchmark, df in datasets.items() if positions else ():
        room = positions - max_new_tokens[benchmark]
        if room < 1:
            raise ConfigError(f"evaluate: --max-new-tokens={max_new_tokens[benchmark]} leaves no room for a "
                              f"prompt in the {positions} positions of {model}")
        check_prompts_fit(tokenizer, df["prompt"], room, paths[benchmark])


def check_prompts_fit(tokenizer, prompts: Sequence[str | Messages], max_prompt_tokens: int, where: str) -> None:
    """Raise ConfigError naming the first row whose prompt exceeds ``max_prompt_tokens`` tokens.

    A model fed more positions than it was built for answers garbage without any error, and a prompt of
    megabytes exhausts memory. Characters are checked first, so such a prompt is never tokenized: no token
    of the vocabulary spells more characters than its longest entry, so a text longer than that many
    characters per allowed token cannot fit.
    """
    from clipo.errors import ConfigError

    longest_token = max(map(len, tokenizer.get_vocab()), default=1)
    for row, prompt in enumerate(prompts):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        chars = sum(len(m["content"]) for m in messages)
        if chars > max_prompt_tokens * longest_token:
            tokens = f"{chars:,} characters, more than {max_prompt_tokens} tokens can hold"
        else:
            n = len(tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])
            if n <= max_prompt_tokens:
                continue
            tokens = f"{n} tokens"
        raise ConfigError(f"{where}: row {row}: the prompt is {tokens}, but the model has room for "
                          f"{max_prompt_tokens} prompt tokens (its positions minus --max-new-tokens); shorten "
                          "or drop that row, or lower --max-new-tokens")


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
             temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None, repeats: int = 1):
    """Sample (or greedily decode) ``repeats`` continuations of each left-padded prompt.

    Returns ``(response_ids [B·repeats, T_resp], response_mask [B·repeats, T_resp])``, the continuations
    of one prompt in adjacent rows, with T_resp ≤ max_new_tokens;
    positions after a row's eos hold the pad id and mask 0. Sampling draws from torch's global RNG,
    so it is reproducible under ``torch.manual_seed``; ``seed`` instead uses a private stream and
    leaves the global one untouched.

    A plain KV-cache decoding loop rather than HF ``generate``: at this model size the per-token
    overhead of ``generate`` (logits processors, stopping criteria, cache bookkeeping) costs more than
    the model itself: one-token steps of Qwen2 models run through ``clipo.decode``, the same
    computation without that machinery. Each prompt is encoded once and its cache shared by its ``repeats`` continuations
    (prompts are most of the tokens of a rollout batch; on the lean path each step also reads a prompt's
    keys once for all its rows, ``decode.SharedPrefixDecoder``); the cache is preallocated, so a new token
    is written in place rather than concatenated; rows that have stopped leave the batch and the cache.
    """
    import torch
    from clipo import decode

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 1")
    if do_sample and not temperature > 0:
        raise ValueError(f"temperature={temperature} must be > 0 when sampling")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p} must be in (0, 1]")
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
    stop = torch.tensor(stop_token_ids(model, tokenizer), device=input_ids.device)
    pad_id = tokenizer.pad_token_id
    batch = input_ids.shape[0] * repeats
    response_ids = torch.full((batch, max_new_tokens), pad_id, dtype=input_ids.dtype, device=input_ids.device)
    generator = None
    if seed is not None and do_sample:
        generator = torch.Generator(device=input_ids.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            live = torch.arange(batch, device=input_ids.device)  # rows still decoding
            mask = attention_mask
            position = (mask.cumsum(-1) - 1).clamp(min=0)
            capacity = input_ids.shape[1] + max_new_tokens
            cache = _preallocated_cache(model, capacity)
            decoder = decode.Qwen2Decoder(model, capacity) if decode.supports(model) else None
            logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position,
                           past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
            shared = None
            if repeats > 1:
                if decoder is not None and decoder.kv_heads == decoder.heads:
                    shared = decode.SharedPrefixDecoder(decoder, cache, mask, repeats, max_new_tokens)
                else:
                    cache.batch_repeat_interleave(repeats)
                logits, mask = logits.repeat_interleave(repeats, 0), mask.repeat_interleave(repeats, 0)
                position = position.repeat_interleave(repeats, 0)
            position = position[:, -1:]
            length = 0
            done = torch.zeros(len(live), dtype=torch.bool, device=input_ids.device)
            for t in range(max_new_tokens):
                token = _next_token(logits.float(), do_sample, temperature, top_p, generator)
                response_ids[live, t] = token  # a stopped row's later tokens fall outside its mask
                length = t + 1
                done |= torch.isin(token, stop)
                if t + 1 == max_new_tokens or done.all():
                    break
                if 4 * int(done.sum()) >= len(live):  # a quarter has stopped: drop those rows and their cache
                    keep = (~done).nonzero().squeeze(1)
                    live, token, mask, position, done = live[keep], token[keep], mask[keep], position[keep], done[keep]
                    if shared is not None:
                        shared.keep(keep)
                    else:
                        cache.batch_select_indices(keep)
                mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
                position = position + 1
                if shared is not None:
                    logits = shared.step(token, position)
                elif decoder is not None:
                    logits = decoder.step(token, position, mask, cache)
                else:
                    logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                                   past_key_values=cache, use_cache=True).logits[:, -1]
    finally:
        model.train(was_training)
    response_ids = response_ids[:, :length]
    response_mask = response_mask_from_ids(response_ids, stop.tolist())
    response_ids = response_ids.masked_fill(response_mask == 0, pad_id)
    return response_ids, response_mask


def _preallocated_cache(model, capacity: int):
    """An HF cache whose layers write new keys/values into buffers of ``capacity`` positions."""
    from transformers.cache_utils import Cache, DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        """A DynamicLayer that appends in place: torch.cat of the whole cache per token dominated decoding."""

        def lazy_initialization(self, key_states, value_states):
            super().lazy_initialization(key_states, value_states)
            batch, heads, _, dim = key_states.shape
            self.key_buffer = key_states.new_empty(batch, heads, capacity, dim)
            self.value_buffer = value_states.new_empty(batch, heads, capacity, dim)
            self.length = 0

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            self.key_buffer[:, :, self.length:end] = key_states
            self.value_buffer[:, :, self.length:end] = value_states
            self.length = end
            return self._views()

        def _views(self):
            self.keys = self.key_buffer[:, :, :self.length]
            self.values = self.value_buffer[:, :, :self.length]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def batch_repeat_interleave(self, repeats: int) -> None:
            self.key_buffer = self.key_buffer.repeat_interleave(repeats, dim=0)
            self.value_buffer = self.value_buffer.repeat_interleave(repeats, dim=0)
            self._views()

        def batch_select_indices(self, indices) -> None:
            self.key_buffer = self._select(self.key_buffer, indices)
            self.value_buffer = self._select(self.value_buffer, indices)
            self._views()

        def _select(self, buffer, indices):
            """Rows ``indices`` of a buffer; only the filled positions are copied."""
            selected = buffer.new_empty(len(indices), *buffer.shape[1:])
            selected[:, :, :self.length] = buffer[indices, :, :self.length]
            return selected

    return Cache(layers=[PreallocatedLayer() for _ in range(model.config.num_hidden_layers)])


def _next_token(logits, do_sample: bool, temperature: float, top_p: float, generator):
    """Greedy argmax, or a draw at ``temperature`` from the smallest set of tokens holding ``top_p`` mass.

    Drawn by inverting the cumulative distribution with one uniform number per row (``multinomial``
    draws one exponential per vocabulary entry, which cost more than the rest of the sampling here).
    """
    import torch

    if not do_sample:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p  # mass before this token already ≥ top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    cdf = probs.cumsum(-1)
    u = torch.rand(len(probs), 1, generator=generator, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[-1] - 1).squeeze(1)


def decode_responses(tokenizer, response_ids, response_mask) -> list[str]:
    """Response texts without padding or special tokens (what the reward function scores)."""
    return [tokenizer.decode(ids[mask.bool()], skip_special_tokens=True)
            for ids, mask in zip(response_ids, response_mask, strict=True)]
