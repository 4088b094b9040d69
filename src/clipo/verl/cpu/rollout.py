"""verl rollout ``hf_cpu``: a Hugging Face model generating on the CPU behind verl's server interface.

verl 0.9.1's v1 trainer generates only through rollout servers (vLLM, SGLang, TensorRT-LLM), none of
which runs on a CPU. This module supplies the three pieces verl's registries look up by
``actor_rollout_ref.rollout.name``:

- ``HFRolloutServer`` — the Ray actor verl's agent loop calls (``generate``: token ids in, token ids
  out) and the trainer puts to sleep and wakes;
- ``HFReplica`` — ``RolloutReplicaRegistry`` entry: launches one server per replica (hybrid mode: the
  rollout shares the actor workers' slots, as SGLang does on a GPU);
- ``HFServerAdapter`` — ``get_rollout_class`` entry: lives in each actor worker and receives verl's
  weight sync (``update_weights`` with the actor's full parameters), which the replica's leader rank
  ships to the server.

Sampling is reproducible: each request draws from its own generator, seeded by the rollout seed, the
weight version, the prompt tokens and how many requests with the same prompt came before it in this
version, so the rollouts do not depend on the order in which verl's agent loop sends them.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

from clipo.verl.cpu import ROLLOUT_NAME

SERVER_NAME = "clipo_hf_cpu_rollout_{rank}"


def request_seed(seed: int, version: int, prompt_ids: list[int], occurrence: int) -> int:
    """Seed of one request's sampling stream (63 bits, stable across processes and runs)."""
    text = f"{seed}|{version}|{occurrence}|{','.join(map(str, prompt_ids))}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def load_policy(path: str):
    """(model, tokenizer) of the initial policy on CPU, float32, SDPA attention; the tokenizer as saved
    (``clipo.hf``: ``AutoTokenizer`` would turn the mini tokenizer into Qwen2's)."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    from clipo.hf import _load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    return model.eval(), _load_tokenizer(Path(path))


class HFRolloutServer:
    """One rollout replica's model: token-in/token-out generation, weight updates, sleep and wake."""

    def __init__(self, config, model_path: str, replica_rank: int):
        self.config = config
        self.replica_rank = replica_rank
        self.model, self.tokenizer = load_policy(model_path)
        self.global_steps = 0
        self.awake = True
        self._seen: Counter = Counter()

    # ------------------------------------------------------------------ what verl's agent loop calls
    async def generate(self, prompt_ids, sampling_params: dict, request_id: str, image_data=None,
                       video_data=None, audio_data=None, **_ignored) -> TokenOutput:
        from clipo.generation import generate

        if image_data or video_data or audio_data:
            raise ValueError(f"{ROLLOUT_NAME} rollout: text-only; request {request_id} carries media")
        if not self.awake:
            raise RuntimeError(f"{ROLLOUT_NAME} rollout: generate called while asleep (request {request_id})")
        prompt = [int(t) for t in prompt_ids]
        params = dict(sampling_params)
        max_tokens = params.pop("max_tokens", params.pop("max_new_tokens", None))
        budget = self.config.prompt_length + self.config.response_length - len(prompt)
        limit = min(self.config.response_length, budget)
        max_tokens = max(1, min(limit, max_tokens) if max_tokens is not None else limit)
        temperature = float(params.get("temperature", 1.0))
        do_sample = temperature > 0
        key = (self.global_steps, tuple(prompt))
        occurrence = self._seen[key]
        self._seen[key] += 1
        input_ids = torch.tensor([prompt], dtype=torch.long)
        response, mask = generate(
            self.model, self.tokenizer, input_ids, torch.ones_like(input_ids), max_tokens, do_sample,
            temperature=temperature if do_sample else 1.0, top_p=float(params.get("top_p", 1.0)),
            seed=request_seed(self.config.seed, self.global_steps, prompt, occurrence),
        )
        tokens = response[0][mask[0].bool()]
        log_probs = self._log_probs(input_ids, tokens, temperature) if params.get("logprobs") else None
        finished = bool(len(tokens)) and int(tokens[-1]) in _stop_ids(self.model, self.tokenizer)
        return TokenOutput(
            token_ids=tokens.tolist(), log_probs=log_probs,
            stop_reason="completed" if finished else "length",
            extra_fields={"global_steps": self.global_steps},
        )

    def _log_probs(self, input_ids: torch.Tensor, tokens: torch.Tensor, temperature: float) -> list[float]:
        """Log-probabilities of the sampled tokens under the sampling distribution (as vLLM reports)."""
        full = torch.cat([input_ids[0], tokens]).unsqueeze(0)
        with torch.no_grad():
            logits = self.model(input_ids=full).logits[0, input_ids.shape[1] - 1 : -1].float()
        if temperature > 0:
            logits = logits / temperature
        return logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1).tolist()

    # ------------------------------------------------------------------ what verl's trainer calls
    async def update_weights(self, state: dict, global_steps: int | None) -> None:
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = {"lm_head.weight"} if self.model.config.tie_word_embeddings else set()
        if unexpected or set(missing) - tied:
            raise RuntimeError(f"{ROLLOUT_NAME} rollout: weight update does not match the model: missing "
                               f"{sorted(set(missing) - tied)}, unexpected {sorted(unexpected)}")
        self.global_steps = int(global_steps or 0)
        self._seen.clear()

    async def sleep(self) -> None:
        self.awake = False

    async def wake_up(self) -> None:
        self.awake = True

    async def abort_all_requests(self, reject_request: bool = False) -> None:
        return None  # requests run to completion one at a time: nothing is ever in flight here

    async def resume_generation(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None  # the KV cache lives only for the duration of one request

    release_kv_cache = clear_kv_cache
    resume_kv_cache = clear_kv_cache

    def get_global_steps(self) -> int:
        return self.global_steps


def _stop_ids(model, tokenizer) -> set[int]:
    from clipo.generation import stop_token_ids

    return set(stop_token_ids(model, tokenizer))


class HFReplica(RolloutReplica):
    """One ``HFRolloutServer`` per replica, named so the actor workers' adapters can find it."""

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self):
        name = SERVER_NAME.format(rank=self.replica_rank)
        server = ray.remote(HFRolloutServer).options(name=name, num_cpus=0, max_concurrency=self.max_concurrency)
        handle = server.remote(self.config, self.model_config.path, self.replica_rank)
        self.servers = [handle]
        self._server_handle = handle
        self._server_address = name


class HFServerAdapter(BaseRollout):
    """Actor-worker side of the ``hf_cpu`` rollout: ships verl's weight sync to this replica's server."""

    def __init__(self, config, model_config, device_mesh, *args, **kwargs):
        super().__init__(config, model_config, device_mesh, *args, **kwargs)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        world = self.config.tensor_model_parallel_size * self.config.data_parallel_size * (
            self.config.pipeline_model_parallel_size)
        self.replica_rank, self.is_leader_rank = rank // world, rank % world == 0
        self._server = None

    def _handle(self):
        if self._server is None:
            self._server = ray.get_actor(SERVER_NAME.format(rank=self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]):
        if self.is_leader_rank and "kv_cache" in tags:
            await self._handle().wake_up.remote()

    async def release(self):
        if self.is_leader_rank:
            await self._handle().sleep.remote()

    async def update_weights(self, weights, wire_format: str = "named_tensors", global_steps=None, **kwargs):
        if wire_format != "named_tensors":
            raise ValueError(f"{ROLLOUT_NAME} rollout: weight sync format {wire_format!r}; valid: named_tensors")
        if kwargs.get("peft_config") is not None:
            raise ValueError(f"{ROLLOUT_NAME} rollout: LoRA adapters are not supported")
        # every rank walks the generator: FSDP gathers each full tensor collectively
        state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights}
        if self.is_leader_rank:
            await self._handle().update_weights.remote(state, global_steps)
