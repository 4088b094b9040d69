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
        import torch
        import torch.nn.functional as F

        batch = token.shape[0]
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        cos, sin = self.cos[position][:, None], self.sin[position][:, None]  # [B, 1, 1, head_dim]
        allowed = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, L]
        x = F.embedding(token, self.embed)  # [B, D]
        for (norm1, qkv_w, qkv_b, o_w, norm2, gate_up_w, down_w), layer in zip(self.layers, cache.layers,
                                                                               strict=True):
            q, k, v = F.linear(self._norm(x, norm1), qkv_w, qkv_b).split([q_size, kv_size, kv_size], dim=-1)
            q = self._rotate(q.view(batch, self.heads, 1, self.head_dim), cos, sin)
            k = self._rotate(k.view(batch, self.kv_heads, 1, self.head_dim), cos, sin)
            keys, values = layer.update(k, v.view(batch, self.kv_heads, 1, self.head_dim))
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed,
                                                 enable_gqa=self.kv_heads != self.heads)
            x = x + F.linear(out.reshape(batch, q_size), o_w)
            gate, up = F.linear(self._norm(x, norm2), gate_up_w).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, down_w)
        return F.linear(self._norm(x, self.final_norm), self.lm_head)
