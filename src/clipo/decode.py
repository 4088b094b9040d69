"""One-token decoding steps of a Qwen2 model without the per-call machinery of HF ``forward``.

At the mini model's size (4 layers × 128) a decoding step is a few hundred small tensor ops, and
HF's generic forward (attention-mask construction, rotary recomputation, cache classes, kwargs
plumbing) costs more than the arithmetic. This module runs the same computation as
``Qwen2ForCausalLM`` for one new token per row: RMSNorm → fused q/k/v projection → rotary position
embedding → attention over the cached keys/values → o-projection → RMSNorm → fused gate/up SwiGLU
MLP, then the final norm and the (tied) output embedding. The weights are the model's own, read
when the decoder is built (once per ``generate`` call, so a policy updated between calls is seen).
``tests/test_mini_model.py`` checks its logits against HF's forward position by position.

The prompt itself is still encoded by HF's forward into the same cache buffers; only the
one-token steps take this path, and only for models it covers (``supports``).
"""

from __future__ import annotations


def supports(model) -> bool:
    """Qwen2 causal LMs with full attention in eval mode (the mini track's policy); others use HF's forward.

    Position embeddings come from the model's own rotary module, so any rope type it supports is covered.
    """
    return (type(model).__name__ == "Qwen2ForCausalLM" and not getattr(model.config, "use_sliding_window", False)
            and not model.training)


class Qwen2Decoder:
    """Fused weights of one model snapshot and a ``step`` that appends one token per row to a cache."""

    def __init__(self, model, max_positions: int):
        import torch

        config = model.config
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = config.rms_norm_eps
        self.layers = []
        for layer in model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append((
                layer.input_layernorm.weight,
                torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]),
                torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]),
                attn.o_proj.weight,
                layer.post_attention_layernorm.weight,
                torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
                mlp.down_proj.weight,
            ))
        self.embed = model.model.embed_tokens.weight
        self.final_norm = model.model.norm.weight
        self.lm_head = model.get_output_embeddings().weight
        positions = torch.arange(max_positions, device=self.embed.device)[None]
        cos, sin = model.model.rotary_emb(self.embed[None, :1], positions)
        self.cos, self.sin = cos[0], sin[0]  # [max_positions, head_dim]

    def _norm(self, x, weight):
        import torch

        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def _rotate(self, x, cos, sin):
        import torch

        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def step(self, token, position, attention_mask, cache):
        """Logits [B, vocab] of the next token after feeding ``token`` [B] at ``position`` [B, 1].

        ``attention_mask`` [B, L] covers the cached positions plus this one; ``cache`` holds the
        preallocated layers of ``clipo.generation`` and receives this token's keys and values.
        """
        import torch.nn.functional as F

        allowed = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, L]

        def attend(q, k, v, layer_cache):
            keys, values = layer_cache.update(k, v)
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed,
                                                  enable_gqa=self.kv_heads != self.heads)[:, :, 0]

        return self.forward_token(token, position, attend, cache.layers)

    def forward_token(self, token, position, attend, layer_states):
        """Logits after one token per row; ``attend(q, k, v, state)`` [B, H, 1, D] → [B, H, D] is the only
        part that differs between cache layouts (one ``state`` per layer)."""
        import torch.nn.functional as F

        batch = token.shape[0]
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        cos, sin = self.cos[position][:, None], self.sin[position][:, None]  # [B, 1, 1, head_dim]
        x = F.embedding(token, self.embed)  # [B, D]
        for (norm1, qkv_w, qkv_b, o_w, norm2, gate_up_w, down_w), state in zip(self.layers, layer_states,
                                                                              strict=True):
            q, k, v = F.linear(self._norm(x, norm1), qkv_w, qkv_b).split([q_size, kv_size, kv_size], dim=-1)
            q = self._rotate(q.view(batch, self.heads, 1, self.head_dim), cos, sin)
            k = self._rotate(k.view(batch, self.kv_heads, 1, self.head_dim), cos, sin)
            out = attend(q, k, v.view(batch, self.kv_heads, 1, self.head_dim), state)
            x = x + F.linear(out.reshape(batch, q_size), o_w)
            gate, up = F.linear(self._norm(x, norm2), gate_up_w).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, down_w)
        return F.linear(self._norm(x, self.final_norm), self.lm_head)


class SharedPrefixDecoder:
    """One-token steps for ``repeats`` rows per prompt that read each prompt's cached keys/values once.

    Decoding attention is bound by reading the cache, and the prompt is most of it: with the prompt
    cache repeated per row (the plain path), a group of G rows reads the same prompt keys G times.
    Here the prompt keys/values stay one copy per prompt ([prompts, H, P, D], from the prefill) and only
    the response tokens get a cache per row; a step scores each row's query against its prompt (the
    queries of a prompt's rows batched together) and against its own response so far, under one softmax.
    Rows that stopped leave the response cache (``keep``); the prompt copies stay.
    """

    def __init__(self, decoder: Qwen2Decoder, cache, prompt_mask, repeats: int, max_new_tokens: int):
        import torch

        self.decoder, self.repeats = decoder, repeats
        self.prompts = prompt_mask.shape[0]
        self.prefix = [(layer.keys, layer.values) for layer in cache.layers]  # [prompts, H, P, D] each
        bias = torch.zeros(prompt_mask.shape, dtype=self.prefix[0][0].dtype)
        self.prefix_bias = bias.masked_fill(prompt_mask == 0, float("-inf"))[:, None, None, :]  # [prompts,1,1,P]
        rows, (_, heads, _, dim) = self.prompts * repeats, self.prefix[0][0].shape
        self.response = [(self.prefix[0][0].new_empty(rows, heads, max_new_tokens, dim),
                          self.prefix[0][0].new_empty(rows, heads, max_new_tokens, dim)) for _ in self.prefix]
        self.rows = torch.arange(rows)  # original row index (prompt · repeats + slot) of each live row
        self.length = 0

    def keep(self, indices) -> None:
        """Drop the rows not in ``indices`` (positions among the live rows)."""
        self.rows = self.rows[indices]
        self.response = [(_take(k, indices, self.length), _take(v, indices, self.length)) for k, v in self.response]

    def step(self, token, position):
        """Logits [live rows, vocab] of the next token after feeding ``token`` at ``position`` [rows, 1]."""
        import torch
        import torch.nn.functional as F

        d, t = self.decoder, self.length
        scale = d.head_dim ** -0.5
        slots = self.prompts * self.repeats

        def attend(q, k, v, state):
            (keys_p, values_p), (keys_r, values_r) = state
            prompt_len = keys_p.shape[2]
            keys_r[:, :, t], values_r[:, :, t] = k[:, :, 0], v[:, :, 0]
            # the prompt part: every prompt's queries at once, [prompts, H, repeats, D] against [prompts, H, P, D]
            grouped = q.new_zeros(slots, d.heads, d.head_dim)
            grouped[self.rows] = q[:, :, 0]
            grouped = grouped.view(self.prompts, self.repeats, d.heads, d.head_dim).transpose(1, 2)
            prefix_scores = torch.matmul(grouped, keys_p.transpose(-1, -2)).mul_(scale).add_(self.prefix_bias)
            prefix_scores = prefix_scores.transpose(1, 2).reshape(slots, d.heads, prompt_len)[self.rows]
            own_scores = torch.matmul(q, keys_r[:, :, :t + 1].transpose(-1, -2))[:, :, 0].mul_(scale)
            weights = torch.softmax(torch.cat([prefix_scores, own_scores], dim=-1), dim=-1)
            prefix_weights = weights.new_zeros(slots, d.heads, prompt_len)
            prefix_weights[self.rows] = weights[..., :prompt_len]
            prefix_weights = prefix_weights.view(self.prompts, self.repeats, d.heads, -1).transpose(1, 2)
            out = torch.matmul(prefix_weights, values_p).transpose(1, 2).reshape(slots, d.heads, d.head_dim)
            return out[self.rows] + torch.matmul(weights[:, :, None, prompt_len:], values_r[:, :, :t + 1])[:, :, 0]

        logits = d.forward_token(token, position, attend, list(zip(self.prefix, self.response, strict=True)))
        self.length = t + 1
        return logits


def _take(buffer, indices, length):
    """Rows ``indices`` of a response buffer; only the ``length`` filled positions are copied."""
    selected = buffer.new_empty(len(indices), *buffer.shape[1:])
    selected[:, :, :length] = buffer[indices, :, :length]
    return selected
