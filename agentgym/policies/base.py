"""The policy interface: chat prompts in, completions with token ids and log-probs out.

Every backend implements::

    completions = policy.generate(prompts, SamplingParams(temperature=1.0, max_tokens=64))

where ``prompts`` is a list of chat conversations (``[{"role": "user", "content": "..."}]``).
Scripted policies (the environment's expert, a random agent) act from the environment's state
instead of from text: they implement :class:`ScriptedPolicy` and the rollout engine runs them next
to the environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import gymnasium
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

Message = dict[str, str]


class SamplingParams(BaseModel):
    """How to sample a completion."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=1.0, ge=0.0, description="0 means greedy decoding")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, description="sample among the k most likely tokens")
    max_tokens: int = Field(default=256, ge=1, description="most tokens generated per completion")
    stop: list[str] = Field(default_factory=list, description="strings that end a completion (kept in it)")
    seed: int | None = Field(default=None, description="seed for reproducible sampling")

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, stop: list[str]) -> list[str]:
        if "" in stop:  # it matches everywhere: every completion would end after its first token
            raise ValueError("an empty stop string would end every completion at once")
        return stop


@dataclass
class Completion:
    """One generated answer.

    ``logprobs`` holds each generated token's log-probability under the model's distribution at the
    sampling temperature (before top-p/top-k truncation; the raw distribution when greedy). Under
    constrained decoding, ``allowed_token_ids[i]`` lists the tokens that were allowed at position i
    (None where generation was free) and ``logprobs[i]`` is taken over those tokens alone.
    ``token_ids`` and ``logprobs`` are empty for backends that cannot report them.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    finish_reason: str = "stop"
    allowed_token_ids: list[list[int] | None] | None = None


@runtime_checkable
class Policy(Protocol):
    """A text policy: batched generation over chat prompts."""

    def generate(self, prompts: Sequence[list[Message]], sampling: SamplingParams) -> list[Completion]: ...


class ScriptedPolicy:
    """A policy that acts from the environment itself; runs where the environment lives.

    ``act`` must be picklable with its instance, since process-based environments run it in their
    worker process.
    """

    def act(self, env: gymnasium.Env, info: dict[str, Any], rng: np.random.Generator) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass
