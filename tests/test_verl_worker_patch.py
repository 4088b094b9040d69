"""The hidden-state hook inside verl's own FSDP engine code path, on a tiny random Qwen2 (CPU).

verl's ``prepare_micro_batches`` (dynamic batch size: micro-batches reordered by token budget),
``FSDPEngineWithLMHead.forward_step`` (packed remove-padding inputs) and ``postprocess_batch_func``
(concatenation and reordering) run unmodified; only FSDP and the device lookup are stubbed out.
The pooled states must equal HF's ``output_hidden_states[-1]`` averaged over response tokens.
Signature pins make a verl upgrade that moves these seams fail here first.
"""

import inspect

import pytest
import torch

pytest.importorskip(
    "transfer_queue", reason="verl's v1 trainer needs TransferQueue (requirements/test-extra.lock)"
)

from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

import clipo.verl.pooling as pooling  # noqa: E402
import clipo.verl.worker_patch as wp  # noqa: E402
from clipo.verl import HIDDEN_FIELD, HIDDEN_FLAG, HIDDEN_SHIFT  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    return Qwen2ForCausalLM(cfg).eval()


@pytest.fixture
def engine(model, monkeypatch):
    """verl's engine object without FSDP: the wrapped HF model and the attributes forward_step reads."""
    import verl.workers.engine.fsdp.transformer_impl as impl
    from verl.utils.torch_functional import entropy_from_logits

    monkeypatch.setattr(impl, "get_device_id", lambda: "cpu")  # verl has no CPU platform
    monkeypatch.setattr(impl, "get_device_name", lambda: "cpu")
    eng = object.__new__(impl.FSDPEngineWithLMHead)
    eng.module, eng.use_ulysses_sp, eng.pad_to_length, eng._autocast_dtype = (
        model,
        False,
        False,
        torch.float32,
    )
    eng.engine_config = type(
        "EngineConfig", (), {"entropy_checkpointing": False, "entropy_from_logits_with_chunking": False}
    )()
    eng.compute_entropy_from_logits = entropy_from_logits
    return eng


def _batch(n=7, seed=1, flag=True, shift=0, dynamic=True):
    from verl.utils import tensordict_utils as tu

    g = torch.Generator().manual_seed(seed)
    prompts = [int(x) for x in torch.randint(2, 8, (n,), generator=g)]
    responses = [int(x) for x in torch.randint(1, 10, (n,), generator=g)]
    seqs = [torch.randint(0, 97, (p + r,), generator=g) for p, r in zip(prompts, responses, strict=True)]
    masks = [torch.ones(r, dtype=torch.int64) for r in responses]
    masks[2][0] = 0  # a tool-output token of a multi-turn rollout is not pooled
    nested = lambda xs: torch.nested.as_nested_tensor(xs, layout=torch.jagged)  # noqa: E731
    extra = {
        "use_remove_padding": True,
        "use_dynamic_bsz": dynamic,
        "max_token_len_per_gpu": 24,
        "micro_batch_size_per_gpu": 1,
        "temperature": 1.0,
        "calculate_entropy": True,
    }
    if flag:
        extra.update({HIDDEN_FLAG: True, HIDDEN_SHIFT: shift})
    data = tu.get_tensordict(
        {
            "input_ids": nested(seqs),
            "position_ids": nested([torch.arange(len(s)) for s in seqs]),
            "prompts": nested([s[:p] for s, p in zip(seqs, prompts, strict=True)]),
            "response_mask": nested(masks),
            "loss_mask": nested(masks),
        },
        non_tensor_dict=extra,
    )
    return data, seqs, prompts, masks


def _run_engine(engine, data, forward_only=True):
    from verl.workers.engine.utils import postprocess_batch_func, prepare_micro_batches

    micro_batches, indices = prepare_micro_batches(data)
    with torch.no_grad():
        outputs = [
            engine.forward_step(mb, loss_function=None, forward_only=forward_only)[1] for mb in micro_batches
        ]
    return postprocess_batch_func(outputs, indices, data)["model_output"], micro_batches, indices


def _reference(model, seqs, prompts, masks, shift=0):
    rows = []
    with torch.no_grad():
        for s, p, m in zip(seqs, prompts, masks, strict=True):
            hidden = model(s[None], output_hidden_states=True).hidden_states[-1][0]  # post-norm, as the hook
            resp = hidden[p - shift : p - shift + len(m)]
            rows.append((resp * m[:, None]).sum(0) / m.sum().clamp(min=1))
    return torch.stack(rows)


@pytest.mark.parametrize("shift", [0, 1])
def test_pooled_states_equal_hf_hidden_states_through_verls_micro_batching(engine, model, shift):
    data, seqs, prompts, masks = _batch(shift=shift)
    out, micro_batches, indices = _run_engine(engine, data)
    assert len(micro_batches) > 1 and indices is not None  # dynamic bsz really reordered rows
    assert sorted(i for mb in indices for i in mb) == list(range(len(seqs)))
    assert any(mb != sorted(mb) for mb in indices) or [i for mb in indices for i in mb] != list(
        range(len(seqs))
    )
    pooled = torch.stack(out[HIDDEN_FIELD].unbind())
    assert pooled.shape == (len(seqs), 32) and pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, _reference(model, seqs, prompts, masks, shift), atol=1e-5, rtol=1e-5)
    assert out["log_probs"].shape[0] == len(seqs)  # verl's own outputs are untouched


def test_fixed_micro_batches_give_the_same_result(engine, model):
    data, seqs, prompts, masks = _batch(n=6, dynamic=False)
    out, _, indices = _run_engine(engine, data)
    assert indices is None
    torch.testing.assert_close(
        torch.stack(out[HIDDEN_FIELD].unbind()), _reference(model, seqs, prompts, masks), atol=1e-5, rtol=1e-5
    )


def test_no_pooling_without_the_flag_or_when_training(engine):
    out, _, _ = _run_engine(engine, _batch(flag=False)[0])
    assert HIDDEN_FIELD not in out and "log_probs" in out
    data = _batch()[0]
    from verl.workers.engine.utils import prepare_micro_batches

    mb = prepare_micro_batches(data)[0][0]
    assert wp._pooling_request(mb) is not None  # the flag is set, but this is a training pass
    engine.get_data_parallel_group = lambda: None
    with torch.no_grad():
        _, meta = engine.forward_step(
            mb, loss_function=lambda **kw: (torch.tensor(0.0), {}), forward_only=False
        )
    assert HIDDEN_FIELD not in meta["model_output"]  # actor update passes never pool


def test_pooling_index_and_empty_responses():
    cu = torch.tensor([0, 5, 9, 12])
    pos, rows, counts = pooling.pooling_index(
        cu, torch.tensor([3, 2, 3]), [torch.tensor([1, 1]), torch.tensor([0, 1]), torch.zeros(0)]
    )
    assert pos.tolist() == [3, 4, 8] and rows.tolist() == [0, 0, 1] and counts.tolist() == [2, 1, 0]
    pooled = pooling.pool_packed(torch.arange(24.0).view(12, 2), pos, rows, counts)
    assert pooled.tolist() == [[7.0, 8.0], [16.0, 17.0], [0.0, 0.0]]  # an empty response pools to zeros
    with pytest.raises(ValueError, match="hidden_shift"):
        pooling.pooling_index(cu, torch.tensor([3, 2, 3]), [torch.ones(1)] * 3, shift=2)


def test_final_norm_is_found_through_wrappers(model):
    assert pooling.final_norm(model) is model.model.norm
    with pytest.raises(RuntimeError, match="final norm"):
        pooling.final_norm(torch.nn.Linear(2, 2))


def test_patch_is_installed_once():
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

    before = FSDPEngineWithLMHead.forward_step
    wp.apply()
    assert FSDPEngineWithLMHead.forward_step is before


def test_signatures_the_integration_relies_on():
    """A verl upgrade that changes one of these seams must fail here, not on a GPU cluster."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer, register_trainer
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead
    from verl.workers.engine.utils import postprocess_batch_func, prepare_micro_batches
    from verl.workers.utils.padding import response_to_nested

    def params(fn):
        return list(inspect.signature(inspect.unwrap(fn)).parameters)

    assert params(FSDPEngineWithLMHead.forward_step) == [
        "self",
        "micro_batch",
        "loss_function",
        "forward_only",
    ]
    assert params(FSDPEngineWithLMHead.prepare_model_inputs) == ["self", "micro_batch"]
    assert params(postprocess_batch_func) == ["output_lst", "indices", "data"]
    assert params(prepare_micro_batches)[:1] == ["data"]
    for name in ("_compute_old_log_prob", "_compute_advantage"):
        assert params(getattr(PPOTrainer, name)) == ["self", "batch", "metrics"]
    assert params(PPOTrainer._compute_metrics) == [
        "self",
        "batch",
        "metrics",
        "timing_raw",
        "global_steps",
        "epoch",
    ]
    assert params(PPOTrainer._save_checkpoint) == ["self"] and params(PPOTrainer._load_checkpoint) == ["self"]
    assert params(PPOTrainer.__init__) == ["self", "config"]
    assert params(TaskRunnerV1.__ray_actor_class__.run)[:2] == ["self", "config"]  # Ray appends a trace arg
    assert params(run_ppo) == ["config", "task_runner_class"]
    assert params(register_trainer) == ["name"]
    assert params(response_to_nested) == ["tensor", "response_mask"]
    # the base class branches on this literal; ClipoTrainerSync reports it (see trainer.py)
    assert 'self.trainer_mode == "sync"' in inspect.getsource(PPOTrainer._build_replay_buffer)
