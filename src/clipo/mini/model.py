"""The mini track's policy: a tiny ``Qwen2ForCausalLM`` saved as an ordinary HF folder.

Same architecture family as the paper's Qwen2.5 models, so the training and evaluation code paths
(and verl's hidden-state hook tests) see no difference; only the size is CPU-friendly (design note:
4 layers × hidden 128 ≈ 1.1 M parameters, ~0.7 s per SFT step of 64 sequences on 2 cores). Eager
attention: as fast as sdpa at this size, and bit-reproducible on CPU.
"""

from __future__ import annotations

from clipo.methods import MiniSFT


def new_model(tokenizer, hidden_size: int = MiniSFT.hidden_size, num_layers: int = MiniSFT.num_layers,
              num_heads: int = MiniSFT.num_heads, intermediate_size: int = MiniSFT.intermediate_size,
              max_position_embeddings: int = MiniSFT.max_position_embeddings, seed: int = 0):
    """A freshly initialised Qwen2 whose vocabulary and special ids match ``tokenizer`` (sizes: MiniSFT)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",
    )
    # Seed a private generator state only: initialisation must not move the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model
