"""The CPU pieces of the verl backend (``clipo.verl.cpu``) without Ray: the platform, the ``hf_cpu``
rollout server as verl's agent loop and trainer call it, the CPU override list composed into verl's
config, the platform check of the entry point, and the head checkpoint's safe loading.

The whole trainer on CPU (Ray, TransferQueue, FSDP, checkpoints, merger) is ``test_verl_cpu_train.py``.
"""

import asyncio
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip(
    "transfer_queue", reason="verl's v1 trainer needs TransferQueue (requirements/test-extra.lock)"
)

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import clipo.verl  # noqa: E402
from clipo.contrastive import ClipoHeadTrainer  # noqa: E402
from clipo.errors import ConfigError  # noqa: E402
from clipo.methods import Clipo  # noqa: E402
from clipo.mini.model import new_model  # noqa: E402
from clipo.mini.tokenizer import _seed_texts, build_tokenizer  # noqa: E402
from clipo.verl import cpu  # noqa: E402
from clipo.verl.cpu.platform import PlatformCPU  # noqa: E402
from clipo.verl.cpu.rollout import HFRolloutServer, request_seed  # noqa: E402
from clipo.verl.overrides import build_overrides, plan_run  # noqa: E402
from clipo.verl.trainer import load_head_state  # noqa: E402

CONFIG_DIR = str(Path(clipo.verl.__file__).parent / "config")


# ------------------------------------------------------------------------------------- platform
def test_cpu_platform_is_gloo_on_the_host_and_never_auto_detected():
    p = PlatformCPU()
    assert (p.device_name, p.communication_backend_name(), p.ray_resource_name()) == ("cpu", "gloo", "GPU")
    assert not p.is_platform_available(use_smi_check=True)  # a GPU machine must not pick it by itself
    # verl passes the current device as a device argument: it must name the CPU, not index cuda:N
    assert torch.zeros(1).to(p.current_device()).device.type == "cpu"
    module = p.device_module
    module.manual_seed(3)
    a = torch.rand(2)
    module.manual_seed(3)
    assert torch.equal(a, torch.rand(2))
    assert module.memory_allocated() == 0 and module.get_device_name() == "CPU"
    free, total = module.mem_get_info()
    assert 0 < free <= total


# ------------------------------------------------------------------------------------- rollout server
@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    """A tiny random Qwen2 with the mini tokenizer, saved as an HF folder."""
    tokenizer = build_tokenizer(_seed_texts(2))
    model = new_model(tokenizer, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                      max_position_embeddings=64)
    path = tmp_path_factory.mktemp("policy")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _server(policy_dir, seed=0):
    config = OmegaConf.create({"prompt_length": 8, "response_length": 12, "seed": seed})
    return HFRolloutServer(config, policy_dir, replica_rank=0)


def _generate(server, prompt, **params):
    sampling = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True, **params}
    return asyncio.run(server.generate(prompt_ids=prompt, sampling_params=sampling, request_id="r"))


def test_server_samples_reproducibly_whatever_the_request_order(policy_dir):
    a, b = _server(policy_dir), _server(policy_dir)
    p, q = [1, 5, 6, 7], [1, 8, 9]
    first = [_generate(a, p).token_ids, _generate(a, q).token_ids, _generate(a, p).token_ids]
    # another order: q first; the two requests of p still get the first and second draw of p
    second = [_generate(b, q).token_ids, _generate(b, p).token_ids, _generate(b, p).token_ids]
    assert first[0] == second[1] and first[2] == second[2] and first[1] == second[0]
    assert first[0] != first[2], "two rollouts of one prompt must be different draws"
    out = _generate(a, p)
    assert 1 <= len(out.token_ids) <= 12 and len(out.log_probs) == len(out.token_ids)
    assert all(lp <= 0 for lp in out.log_probs) and out.extra_fields["global_steps"] == 0
    assert request_seed(0, 1, p, 0) != request_seed(0, 2, p, 0) != request_seed(1, 1, p, 0)


def test_server_response_budget_and_greedy_decoding(policy_dir):
    server = _server(policy_dir)
    assert len(_generate(server, [1, 5, 6, 7], max_tokens=3).token_ids) <= 3
    # prompt 8 + response 12 tokens: a 10-token prompt leaves 10
    assert len(_generate(server, list(range(1, 11)), ignore_eos=True).token_ids) <= 10
    greedy = [_generate(server, [1, 5, 6], temperature=0).token_ids for _ in range(2)]
    assert greedy[0] == greedy[1]


def test_server_takes_the_actors_weights_and_refuses_wrong_ones(policy_dir):
    server = _server(policy_dir)
    state = {k: torch.randn_like(v) for k, v in server.model.state_dict().items()}
    asyncio.run(server.update_weights(state, global_steps=4))
    assert server.global_steps == 4
    assert torch.equal(server.model.state_dict()["model.norm.weight"], state["model.norm.weight"])
    with pytest.raises(RuntimeError, match="unexpected \\['extra.weight'\\]"):
        asyncio.run(server.update_weights({**state, "extra.weight": torch.zeros(1)}, global_steps=5))
    with pytest.raises(RuntimeError, match="missing \\['model.norm.weight'\\]"):
        asyncio.run(server.update_weights({k: v for k, v in state.items() if k != "model.norm.weight"}, 5))


def test_server_refuses_to_generate_asleep(policy_dir):
    server = _server(policy_dir)
    asyncio.run(server.sleep())
    with pytest.raises(RuntimeError, match="asleep"):
        _generate(server, [1, 5])
    asyncio.run(server.wake_up())
    assert _generate(server, [1, 5]).stop_reason in ("completed", "length")


# ------------------------------------------------------------------------------------- overrides
def test_cpu_run_composes_into_verls_config(tmp_path):
    run = plan_run("mini", "grpo", "infonce", model_path=str(tmp_path), data_dir=str(tmp_path), steps=3,
                   train_batch_size=4, group_size=4, out=str(tmp_path / "run"))
    assert run.on_cpu and run.steps_per_epoch is None
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("clipo_trainer", overrides=build_overrides(run))
    arr = cfg.actor_rollout_ref
    assert cfg.trainer.device == "cpu" and arr.rollout.name == cpu.ROLLOUT_NAME
    assert arr.actor.strategy == "fsdp2" and arr.model.override_config.attn_implementation == "sdpa"
    assert arr.actor.fsdp_config.mixed_precision.param_dtype == "fp32"
    assert cfg.ray_kwargs.ray_init.num_gpus == cfg.trainer.n_gpus_per_node == 1
    # the mini spec: a step count (epochs only bound it), its checkpoint interval, validation rows
    assert (cfg.trainer.total_training_steps, cfg.trainer.total_epochs, cfg.trainer.save_freq) == (3, 3, 5)
    assert cfg.data.val_max_samples == 128 and len(cfg.data.val_files) == 1
    rollouts_per_update = arr.actor.ppo_mini_batch_size * 4
    assert rollouts_per_update % arr.actor.ppo_micro_batch_size_per_gpu == 0
    assert math.gcd(32, rollouts_per_update) == arr.actor.ppo_micro_batch_size_per_gpu
    gpu = plan_run("I", "grpo", "infonce", out=str(tmp_path / "gpu"))
    assert not gpu.on_cpu and "trainer.device=cpu" not in build_overrides(gpu)


def test_entry_point_refuses_a_cpu_run_without_the_cpu_platform(monkeypatch):
    from clipo.verl import main

    monkeypatch.setattr("verl.plugin.platform.get_platform", lambda: type("P", (), {"device_name": "cuda"})())
    config = OmegaConf.create({"trainer": {"device": "cpu"}})
    with pytest.raises(ConfigError, match="VERL_PLATFORM=cpu"):
        main.check_platform(config)
    main.check_platform(OmegaConf.create({"trainer": {"device": "cuda"}}))


# ------------------------------------------------------------------------------------- head checkpoint
class _Payload:
    def __reduce__(self):
        return (print, ("unpickled",))


def test_head_checkpoint_loads_tensors_only(tmp_path):
    head = ClipoHeadTrainer(8, Clipo(head_output_size=4), seed=0)
    head.step(torch.randn(6, 8), torch.tensor([1, 0, 1, 0, 1, 0]).bool(), torch.tensor([0, 0, 0, 1, 1, 1]))
    torch.save(head.state_dict(), tmp_path / "head.pt")
    restored = ClipoHeadTrainer(8, Clipo(head_output_size=4), seed=1)
    restored.load_state_dict(load_head_state(tmp_path / "head.pt"))
    x = torch.randn(3, 8)
    assert torch.equal(restored.embed(x), head.embed(x))
    assert restored.optimizer.state_dict()["state"][0]["step"] == head.optimizer.state_dict()["state"][0]["step"]
    torch.save({"head": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        load_head_state(tmp_path / "evil.pt")


def test_canonical_order_ignores_the_order_rollouts_finished_in():
    from clipo.verl.trainer import canonical_order

    index, responses = [7, 3, 7, 3, 3], [[5, 2], [9], [4, 4, 1], [1, 8], [9, 0]]
    ordered = [(index[i], responses[i]) for i in canonical_order(index, responses)]
    assert ordered == [(3, [1, 8]), (3, [9]), (3, [9, 0]), (7, [4, 4, 1]), (7, [5, 2])]
    shuffled = [4, 2, 0, 3, 1]
    again = canonical_order([index[i] for i in shuffled], [responses[i] for i in shuffled])
    assert [(index[shuffled[i]], responses[shuffled[i]]) for i in again] == ordered


def test_verl_gets_the_mini_tokenizer_as_saved(policy_dir):
    """verl's AutoTokenizer would spell numbers digit by digit with the mini tokenizer of a qwen2 folder."""
    from transformers import AutoTokenizer

    from clipo.hf import load
    from clipo.verl.cpu.plugin import tokenizer_as_saved

    text = "Vera has 14 stickers and 18 more."
    expected = load(policy_dir)[1](text)["input_ids"]
    assert tokenizer_as_saved(policy_dir)(text)["input_ids"] == expected
    assert AutoTokenizer.from_pretrained(policy_dir)(text)["input_ids"] != expected  # what it replaces
    assert _server(policy_dir).tokenizer(text)["input_ids"] == expected
