"""Pooling of response-token hidden states in a packed (remove-padding) batch — torch only.

Used by the verl worker patch (``clipo.verl.worker_patch``) inside verl's FSDP engine and by the
standalone GPU check (``clipo.verl.gpu_check``), which must run where verl is not installed.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

_WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def pooling_index(
    cu_seqlens: torch.Tensor, prompt_lengths: torch.Tensor, response_masks: list[torch.Tensor], shift: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packed positions to pool, the row each belongs to, and the number of positions per row.

    ``cu_seqlens`` [B+1] are the packed offsets of prompt+response rows; ``response_masks`` holds one
    [R_i] mask per row (multi-turn tool tokens are 0 and not pooled).
    """
    if shift not in (0, 1):
        raise ValueError(f"clipo.hidden_shift={shift!r}; valid: 0, 1")
    positions, rows = [], []
    for i, mask in enumerate(response_masks):
        offsets = torch.nonzero(mask.reshape(-1) > 0).reshape(-1)
        positions.append(int(cu_seqlens[i]) + int(prompt_lengths[i]) - shift + offsets)
        rows.append(torch.full_like(offsets, i))
    counts = torch.tensor([len(p) for p in positions], dtype=torch.long)
    if not positions:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, counts
    return torch.cat(positions).long(), torch.cat(rows).long(), counts


def pool_packed(
    hidden: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Mean over the listed positions of a packed [T, H] tensor, per row → [B, H] float32 (zeros if empty)."""
    device = hidden.device
    pooled = torch.zeros(len(counts), hidden.shape[-1], dtype=torch.float32, device=device)
    pooled.index_add_(0, rows.to(device), hidden[positions.to(device)].float())
    return pooled / counts.to(device).clamp(min=1).unsqueeze(1).float()


def final_norm(model: torch.nn.Module) -> torch.nn.Module:
    """The decoder's final norm (``model.norm`` of Qwen2/Llama), seen through FSDP/checkpoint wrappers."""
    found = []
    for name, module in model.named_modules():
        for prefix in _WRAPPER_PREFIXES:
            name = name.replace(prefix, "")
        if name == "model.norm" or name.endswith(".model.norm"):
            found.append(module)
    if not found:
        raise RuntimeError(
            f"clipo.verl.worker_patch: no final norm 'model.norm' in {type(model).__name__}; "
            "CLIPO's hidden-state hook supports decoder-only HF models (Qwen2, Llama)"
        )
    return found[-1]


@contextmanager
def capture_pooled(model: torch.nn.Module, request: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
    """While active, every forward pools the ``request`` positions (``pooling_index``) of the final norm's
    packed output into ``captured["pooled"]`` [B, H] — the [T, H] output itself is not kept."""
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        captured["pooled"] = pool_packed(hidden.detach().reshape(-1, hidden.shape[-1]), *request)

    handle = final_norm(model).register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
