"""A transformers policy: batched, left-padded generation that reports token ids and log-probs.

Example::

    policy = HFPolicy.from_pretrained("path/to/model")           # a local directory or a hub id
    [completion] = policy.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=8))
    completion.text, completion.token_ids, completion.logprobs
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agentgym.config import CpuKernels
from agentgym.core import AgentGymError
from agentgym.policies.base import Completion, Message, SamplingParams
from agentgym.policies.constraints import AllowedCompletions, TokenTrie, TrieBuilder, allowed_token_mask


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def mixed_precision(model: Any) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU (fp32 weights train, bf16 matrix products run); nothing on a CPU."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pin_cpu_arithmetic(threads: int | None, kernels: CpuKernels | None) -> None:
    """Fixes what decides the sums a CPU computes: torch's thread count and, on x86, the instruction
    set of torch's own kernels and of MKL's (its conditional-reproducibility branch).

    With ``kernels="avx2"`` every Intel CPU with AVX2 gives the same results as any other at the same
    thread count, where the widest instructions of each CPU (AVX-512 on one, AVX2 on another) would
    round differently and send a small model's training elsewhere. The kernels are chosen at a
    process's first torch computation: a later call cannot change them and warns.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if kernels is None or platform.machine().lower() not in ("x86_64", "amd64"):
        return
    # Read by torch and MKL when first needed; processes started from here inherit them.
    os.environ["ATEN_CPU_CAPABILITY"] = kernels
    os.environ["MKL_CBWR"] = kernels.upper()
    in_use = torch.backends.cpu.get_cpu_capability()
    if in_use != kernels.upper():
        warnings.warn(
            f"this process already computes with {in_use} kernels, not {kernels}: set model.cpu_kernels "
            "before the first torch computation (its results may differ from the recipe's)",
            RuntimeWarning,
            stacklevel=2,
        )


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The tokenizer saved at ``name_or_path``, with its own normalizer and pre-tokenizer.

    transformers' ``AutoTokenizer`` rebuilds a tokenizer from the model type's code (for a Qwen2
    model, Qwen2's split pattern and NFC) and drops a custom pipeline saved in ``tokenizer.json``;
    tokenizers saved as a plain tokenizers backend are therefore loaded as they are.

    A directory without tokenizer files is an error: transformers would build an empty tokenizer
    (special tokens only, every text encoded to nothing) rather than fail.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config = Path(name_or_path) / "tokenizer_config.json"
    if config.exists() and json.loads(config.read_text()).get("tokenizer_class") in (
        "TokenizersBackend",
        "PreTrainedTokenizerFast",
    ):
        tokenizer = PreTrainedTokenizerFast.from_pretrained(name_or_path)
    else:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise AgentGymError(
            f"cannot load model {str(name_or_path)!r}: it has no tokenizer (tokenizer.json, "
            "tokenizer.model or vocab.json); save the model's tokenizer into its directory"
        )
    return tokenizer


def render_chat(tokenizer: Any, messages: list[Message]) -> str:
    """The prompt text for ``messages``: the tokenizer's chat template, or a plain fallback."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
    return text + "<|assistant|>\n"


def encode_chats(tokenizer: Any, prompts: Sequence[list[Message]]) -> list[list[int]]:
    """The token ids of each prompt as the model reads it (its chat template applied)."""
    texts = [render_chat(tokenizer, messages) for messages in prompts]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


class HFPolicy:
    """Generation with a ``transformers`` causal LM held in memory (CPU or GPU).

    The trainer updates ``self.model`` in place, so generation always uses the latest weights.
    ``generate(..., allowed=...)`` restricts each prompt's completion to the texts it allows
    (constrained decoding, see :mod:`agentgym.policies.constraints`).
    """

    supports_allowed_completions = True

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self._tries = TrieBuilder(tokenizer, tokenizer.eos_token_id)

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str | None = None, **model_kwargs: Any) -> HFPolicy:
        from transformers import AutoModelForCausalLM

        device_obj = torch.device(device) if device else default_device()
        # float32 on a CPU whatever dtype the checkpoint was saved in (transformers loads it as saved),
        # as the trainer's models and the vLLM backend compute there
        model_kwargs.setdefault("dtype", torch.bfloat16 if device_obj.type == "cuda" else torch.float32)
        tokenizer = load_tokenizer(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **model_kwargs).to(device_obj)
        return cls(model, tokenizer)

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[list[Message]],
        sampling: SamplingParams,
        allowed: Sequence[AllowedCompletions | None] | None = None,
    ) -> list[Completion]:
        """One completion per prompt; ``allowed[i]`` (when given and not None) constrains prompt i's."""
        specs = self._tries.token_specs(allowed, len(prompts), sampling.max_tokens)
        tries = [TokenTrie(**spec) if spec is not None else None for spec in specs]
        prompt_ids = encode_chats(self.tokenizer, prompts)
        # Sorting by length keeps padding inside each micro-batch small.
        order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
        results: list[Completion | None] = [None] * len(prompt_ids)
        generator = None
        if sampling.seed is not None:
            # Seeded on the model's device, so that sampling never copies the distribution to the CPU.
            device = next(self.model.parameters()).device
            generator = torch.Generator(device=device).manual_seed(sampling.seed)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            completions = self._generate_batch(
                [prompt_ids[i] for i in chunk], sampling, generator, [tries[i] for i in chunk]
            )
            for i, completion in zip(chunk, completions, strict=True):
                results[i] = completion
        return results  # type: ignore[return-value]

    def _generate_batch(
        self,
        prompt_ids: list[list[int]],
        sampling: SamplingParams,
        generator: torch.Generator | None,
        tries: list[TokenTrie | None],
    ) -> list[Completion]:
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), pad, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, ids in enumerate(prompt_ids):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)

        with mixed_precision(self.model):
            generated, logprobs, allowed = sample_tokens(
                self.model, input_ids, attention, sampling, self._eos_ids(), generator, tries
            )
        completions = []
        stops = sampling.stop
        for row, ids in enumerate(prompt_ids):
            tokens, token_logprobs = generated[row], logprobs[row]
            finish = "length"
            if len(tokens) < sampling.max_tokens or (tokens and tokens[-1] in self._eos_ids()):
                finish = "stop"
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            if stops:
                tokens, token_logprobs, text, stopped = cut_at_stop(
                    self.tokenizer, tokens, token_logprobs, text, stops
                )
                finish = "stop" if stopped else finish
            row_allowed = allowed[row][: len(tokens)] if tries[row] is not None else None
            completions.append(Completion(text, tokens, token_logprobs, list(ids), finish, row_allowed))
        return completions

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, list) else [ids]
        return {i for i in [*ids, self.tokenizer.eos_token_id] if i is not None}

    def sync_weights(self, model: Any) -> None:
        """Nothing to copy: generation runs on the trainer's own model."""

    def close(self) -> None:
        """Nothing to release: the model belongs to its caller."""


def cut_at_stop(
    tokenizer: Any, tokens: list[int], logprobs: list[float], text: str, stops: list[str]
) -> tuple[list[int], list[float], str, bool]:
    """A completion cut after its first stop string: the shortest token prefix whose text covers
    it, that prefix's log-probs, the text up to the stop string's end, and whether one was found."""
    positions = [text.find(s) + len(s) for s in stops if s in text]
    if not positions:
        return tokens, logprobs, text, False
    end = min(positions)
    for n in range(1, len(tokens) + 1):
        # text, not length: half a multi-byte character decodes to one replacement character
        if tokenizer.decode(tokens[:n], skip_special_tokens=True).startswith(text[:end]):
            return tokens[:n], logprobs[:n], text[:end], True
    return tokens, logprobs, text[:end], True


def sample_tokens(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    sampling: SamplingParams,
    eos_ids: set[int],
    generator: torch.Generator | None = None,
    tries: Sequence[TokenTrie | None] | None = None,
) -> tuple[list[list[int]], list[list[float]], list[list[list[int] | None]]]:
    """Autoregressive sampling with a KV cache; returns per row the new tokens, their log-probs and
    the tokens that were allowed at each position (None where free).

    A row stops at its first EOS token (kept) or after ``max_tokens``; finished rows stop counting.
    The loop is written out rather than using ``model.generate`` so that the log-probs are exactly
    those of the distribution sampled from (temperature applied, before top-k/top-p truncation).
    ``tries[row]`` (optional) limits a row to the tokens its trie allows: the row samples from the
    model's distribution renormalised over them, and that is the distribution its log-probs are
    taken from (the trainer renormalises over the same tokens when it recomputes them).
    """
    batch = input_ids.shape[0]
    device = input_ids.device
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True)
    cache_key = _cache_key(out)
    logits = out.logits[:, -1, :]
    tokens: list[list[int]] = [[] for _ in range(batch)]
    token_logprobs: list[list[float]] = [[] for _ in range(batch)]
    allowed_tokens: list[list[list[int] | None]] = [[] for _ in range(batch)]
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    eos = torch.tensor(sorted(eos_ids), device=device) if eos_ids else None
    next_position = position_ids[:, -1] + 1
    states = [trie.root if trie is not None else None for trie in tries] if tries else [None] * batch
    for _ in range(sampling.max_tokens):
        logits = logits.float()
        if sampling.temperature > 0:
            logits = logits / sampling.temperature
        log_probs = torch.log_softmax(logits, dim=-1)  # (B, V)
        allowed = [TokenTrie.allowed(state) for state in states]
        log_probs = _restrict(log_probs, allowed)
        if sampling.temperature == 0:
            chosen = log_probs.argmax(-1)
        else:
            chosen = _sample(log_probs, sampling.top_k, sampling.top_p, generator)
        chosen_logprob = log_probs.gather(-1, chosen[:, None])[:, 0]
        chosen_list, logprob_list = chosen.tolist(), chosen_logprob.tolist()
        for row in torch.nonzero(alive).flatten().tolist():
            tokens[row].append(chosen_list[row])
            token_logprobs[row].append(logprob_list[row])
            allowed_tokens[row].append(allowed[row])
            states[row] = TokenTrie.advance(states[row], chosen_list[row])
        if eos is not None:
            alive &= ~torch.isin(chosen, eos)
        if not bool(alive.any()):
            break
        attention_mask = torch.cat(
            [attention_mask, torch.ones((batch, 1), dtype=attention_mask.dtype, device=device)], 1
        )
        out = model(
            input_ids=chosen[:, None],
            attention_mask=attention_mask,
            position_ids=next_position[:, None],
            use_cache=True,
            **{cache_key: out[cache_key]},
        )
        logits = out.logits[:, -1, :]
        next_position = next_position + 1
    return tokens, token_logprobs, allowed_tokens


def _cache_key(output: Any) -> str:
    """Where a forward pass returns its KV cache, which is also the argument that takes it back:
    ``cache`` in transformers 5.24 and later, ``past_key_values`` before."""
    return "cache" if "cache" in output else "past_key_values"


def _restrict(log_probs: torch.Tensor, allowed: Sequence[list[int] | None]) -> torch.Tensor:
    """``log_probs`` (B, V) renormalised over each row's allowed tokens (-inf elsewhere)."""
    if all(tokens is None for tokens in allowed):
        return log_probs
    keep = allowed_token_mask(allowed, log_probs.shape, log_probs.device)
    return torch.log_softmax(log_probs.masked_fill(~keep, float("-inf")), dim=-1)


def _sample(
    log_probs: torch.Tensor, top_k: int | None, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Draws one token per row from ``log_probs`` (B, V) truncated to top-k / nucleus top-p."""
    scores = log_probs
    if top_k is not None and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, sorted_index = torch.sort(scores, descending=True)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_scores.softmax(-1) > top_p  # keep the token that crosses top_p
        sorted_scores = sorted_scores.masked_fill(drop, float("-inf"))
        scores = torch.full_like(scores, float("-inf")).scatter(-1, sorted_index, sorted_scores)
    probs = scores.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
