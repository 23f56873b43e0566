"""A policy served by any OpenAI-compatible endpoint (vLLM serve, SGLang, hosted APIs) over httpx.

Example::

    policy = OpenAIPolicy("http://localhost:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")
    policy.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=16))

Requests of one batch run concurrently; each has a timeout and is retried with exponential backoff
on connection errors, 429 and 5xx answers (waiting at least what a ``Retry-After`` header asks, up
to a minute). A seeded batch sends its i-th prompt a seed drawn from ``(seed, i)``, so that
repeated prompts (a group's members) are not all sampled alike, nor prompts of batches whose seeds
are consecutive (the rollout engine's turns). The API key comes from ``api_key`` or
``OPENAI_API_KEY``.

Completions carry text only: the API names tokens by their text, which does not map back to token
ids, and log-probs without their token ids would not line up with anything (see ``Completion``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

from agentgym.core import AgentGymError
from agentgym.policies.base import Completion, Message, SamplingParams

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIPolicy:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        concurrency: int = 32,
        backoff: float = 0.5,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = concurrency
        key = api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def generate(self, prompts: Sequence[list[Message]], sampling: SamplingParams) -> list[Completion]:
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda job: self._complete(*job, sampling), enumerate(prompts)))

    def _complete(self, index: int, messages: list[Message], sampling: SamplingParams) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.stop:
            body["stop"] = sampling.stop
        if sampling.seed is not None:
            # One seed per prompt of the batch: the server seeds each request alone, and one seed
            # for all would make the samples of a repeated prompt (a group, pass@k) all the same.
            # Drawn rather than seed + index, which batch seed + 1 would repeat one prompt later.
            body["seed"] = int(np.random.SeedSequence([sampling.seed % 2**64, index]).generate_state(1)[0])
        if sampling.top_k is not None:
            body["top_k"] = sampling.top_k  # an extension that vLLM and SGLang accept
        answer = self._post("/chat/completions", body)
        try:
            choice = answer["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError) as error:
            raise AgentGymError(
                f"{self.base_url}: unexpected chat completion answer {str(answer)[:200]}"
            ) from error
        finish_reason = choice.get("finish_reason") or "stop"
        if finish_reason == "stop":
            text = _restore_stop(text, choice, sampling.stop)
        return Completion(text=text, finish_reason=finish_reason)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last_error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.post(path, json=body)
                if response.status_code not in RETRY_STATUS:
                    if response.status_code >= 400:
                        raise AgentGymError(
                            f"{self.base_url}{path} answered {response.status_code}: {response.text[:300]}"
                        )
                    try:
                        return response.json()
                    except ValueError:  # a web page, say: retrying would get the same
                        raise AgentGymError(
                            f"{self.base_url}{path} did not answer JSON: {response.text[:300]}"
                        ) from None
                last_error = AgentGymError(f"{self.base_url}{path} answered {response.status_code}")
                wait = max(self.backoff * 2**attempt, _retry_after(response))
            except httpx.TransportError as error:
                last_error = error
                wait = self.backoff * 2**attempt
            if attempt < self.max_retries:
                time.sleep(wait)
        raise AgentGymError(f"{self.base_url}{path} failed after {self.max_retries + 1} tries: {last_error}")

    def close(self) -> None:
        self.client.close()


def _retry_after(response: httpx.Response, limit: float = 60.0) -> float:
    """The seconds a 429 or 503 answer's ``Retry-After`` header asks to wait (0 without one, at most
    ``limit``): a rate-limited API refuses every retry sent sooner."""
    try:
        return min(max(float(response.headers.get("retry-after", 0)), 0.0), limit)
    except ValueError:  # an HTTP date: rare for APIs, and the backoff applies
        return 0.0


def _restore_stop(text: str, choice: dict[str, Any], stop: list[str]) -> str:
    """Puts back the stop string that ended ``text``: servers strip it, while ``SamplingParams.stop``
    keeps it in the completion (as the hf and vllm backends do), where the action parser expects it.

    vLLM names the matched string in ``stop_reason``, SGLang in ``matched_stop`` (None or a token
    id when the completion ended otherwise). A server that does not say (OpenAI's own) is taken to
    have stopped at the stop string when only one was given: it cannot be told from an
    end-of-sequence token there.
    """
    named = [choice[key] for key in ("stop_reason", "matched_stop") if key in choice]
    if named:
        matched = next((value for value in named if isinstance(value, str)), None)
    else:
        matched = stop[0] if len(stop) == 1 else None
    if matched and not text.endswith(matched):
        return text + matched
    return text
