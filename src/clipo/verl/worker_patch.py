"""Actor-side patch: mean-pooled last hidden states of the response tokens from the old-log-prob forward.

Loaded in every actor worker through ``actor_rollout_ref.model.external_lib=clipo.verl.worker_patch``
(verl imports it when it builds the model config). It wraps
``FSDPEngineWithLMHead.forward_step``: when the batch carries the flag ``clipo.verl.HIDDEN_FLAG`` and the
pass is forward-only, a forward hook on the model's final norm pools the response positions of the
packed (remove-padding) sequence into ``model_output[HIDDEN_FIELD]`` of shape [B, H] (float32). verl's
post-processing concatenates and reorders every model_output key across micro-batches (dynamic batch
size included) and the v1 worker writes it to TransferQueue, so the trainer reads it like ``log_probs``.

Why here: the old-log-prob forward already runs the policy on every rollout, so CLIPO costs no extra
forward pass, and pooling inside the hook keeps only B·H floats instead of the [T, H] norm output.
SGLang would need internal patches and ships per-token states (hundreds of GB per step at paper scale).

Positions: response token j of a row sits at packed position ``start + prompt_len + j``; its hidden
state is the one the mini trainer and eq. 9 pool (``shift=0``). ``shift=1`` pools the states one
token to the left, i.e. the decode-time states SGLang returns for each generated token.
Limits (checked): remove-padding on, Ulysses sequence parallel size 1.
"""

from __future__ import annotations

import functools

import torch

from clipo.verl import HIDDEN_FIELD, HIDDEN_FLAG, HIDDEN_SHIFT
from verl.utils import tensordict_utils as tu
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

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
        raise RuntimeError(f"clipo.verl.worker_patch: no final norm 'model.norm' in {type(model).__name__}; "
                           "CLIPO's hidden-state hook supports decoder-only HF models (Qwen2, Llama)")
    return found[-1]


def _pooling_request(micro_batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The pooling index of a micro-batch, or None when the trainer did not ask for hidden states."""
    if not tu.get_non_tensor_data(data=micro_batch, key=HIDDEN_FLAG, default=False):
        return None
    if not tu.get_non_tensor_data(data=micro_batch, key="use_remove_padding", default=True):
        raise RuntimeError("CLIPO needs actor_rollout_ref.model.use_remove_padding=true (packed sequences)")
    shift = int(tu.get_non_tensor_data(data=micro_batch, key=HIDDEN_SHIFT, default=0))
    input_ids = micro_batch["input_ids"]
    return pooling_index(
        input_ids.offsets().cpu(),
        micro_batch["prompts"].offsets().diff().cpu(),
        list(micro_batch["response_mask"].unbind()),
        shift,
    )


def _with_pooled_hidden(forward_step):
    @functools.wraps(forward_step)
    def wrapper(self, micro_batch, loss_function, forward_only):
        request = _pooling_request(micro_batch) if forward_only else None
        if request is None:
            return forward_step(self, micro_batch, loss_function, forward_only)
        if getattr(self, "use_ulysses_sp", False):
            raise RuntimeError("CLIPO's hidden-state hook needs ulysses_sequence_parallel_size=1")
        captured: dict[str, torch.Tensor] = {}

        def hook(_module, _inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            captured["pooled"] = pool_packed(hidden.detach().reshape(-1, hidden.shape[-1]), *request)

        handle = final_norm(self.module).register_forward_hook(hook)
        try:
            loss, output = forward_step(self, micro_batch, loss_function, forward_only)
        finally:
            handle.remove()
        if "pooled" not in captured:
            raise RuntimeError("CLIPO's hidden-state hook did not fire: the final norm was not called")
        output["model_output"][HIDDEN_FIELD] = captured["pooled"]
        return loss, output

    wrapper.__clipo_patched__ = True
    return wrapper


def apply() -> None:
    """Install the wrapper once per process (importing this module calls it)."""
    if not getattr(FSDPEngineWithLMHead.forward_step, "__clipo_patched__", False):
        FSDPEngineWithLMHead.forward_step = _with_pooled_hidden(FSDPEngineWithLMHead.forward_step)


apply()
