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

Importing this module also registers the project's policy losses (``clipo.verl.losses``): verl imports
``external_lib`` wherever it builds the model config, so every worker and the trainer process have them.
"""

from __future__ import annotations

import functools

import torch
from verl.utils import tensordict_utils as tu
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

import clipo.verl.losses  # noqa: F401  (registers geo_mean_global in every worker and the trainer)
from clipo.verl import HIDDEN_FIELD, HIDDEN_FLAG, HIDDEN_SHIFT
from clipo.verl.pooling import capture_pooled, pooling_index


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
        with capture_pooled(self.module, request) as captured:
            loss, output = forward_step(self, micro_batch, loss_function, forward_only)
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
