"""IGPO's probing: how much each turn raised the policy's belief in the gold answer.

For a trajectory with turns 0..T-1, let c_k be the context the agent was shown before turn k (the
prompt of step k, which holds what earlier turns retrieved). The policy's belief in the gold answer
g after the turns before k is

    p_k = exp( (1/|g|) Σ_i log π(g_i | c_k, prefix, g_<i) )

the geometric mean of the probabilities of g's tokens when the response is scored as
``prefix + g + suffix`` (Search-R1's ``<answer>g</answer>``, a fixed answer-closing continuation),
taking the most likely of several gold answers. Turn t < T-1 earns its information gain
r_t = p_{t+1} - p_t; the final turn earns the outcome instead (the environment's reward for an
answer, ``malformed`` when the episode ended without a well-formed answer). Probing needs no
gradient and runs batched on the same data path as the update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agentgym.policies.hf import render_chat
from agentgym.trainers.data import TurnRows, current_log_probs
from agentgym.trajectory import Trajectory


@torch.no_grad()
def answer_beliefs(
    model: torch.nn.Module,
    tokenizer: Any,
    trajectories: Sequence[Trajectory],
    *,
    prefix: str = "<answer>",
    suffix: str = "</answer>",
    temperature: float = 1.0,
    micro_batch_tokens: int = 16384,
) -> list[list[float]]:
    """p_k for every step k of every trajectory (steps must carry their recorded prompts)."""
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prefix_ids, suffix_ids = encode(prefix), encode(suffix)
    prompts, responses, owners = [], [], []  # owners[row] = (trajectory, step)
    spans = []  # (start, length) of the gold tokens inside the response
    for i, trajectory in enumerate(trajectories):
        golds = trajectory.gold or []
        for k, step in enumerate(trajectory.steps):
            if step.prompt is None:
                raise ValueError("probing needs recorded prompts: RolloutEngine(record_prompts=True)")
            prompt_ids = encode(render_chat(tokenizer, step.prompt))
            for gold in golds:
                gold_ids = encode(gold)
                prompts.append(prompt_ids)
                responses.append([*prefix_ids, *gold_ids, *suffix_ids])
                spans.append((len(prefix_ids), len(gold_ids)))
                owners.append((i, k))
    beliefs = [[0.0] * len(t.steps) for t in trajectories]
    if not prompts:
        return beliefs
    rows = TurnRows(prompts, responses)
    log_probs = current_log_probs(model, rows, temperature, tokenizer.pad_token_id, micro_batch_tokens)
    for (start, length), (i, k), values in zip(spans, owners, log_probs, strict=True):
        gold = torch.tensor(values[start : start + length])  # float32, as the model computed them
        p = math.exp(float(gold.mean())) if length else 0.0
        beliefs[i][k] = max(beliefs[i][k], p)
    return beliefs


def information_gain(beliefs: Sequence[Sequence[float]]) -> list[list[float]]:
    """r_t = p_{t+1} - p_t for every turn but the last, which gets NaN (it earns the outcome)."""
    return [[p[t + 1] - p[t] for t in range(len(p) - 1)] + [math.nan] if p else [] for p in beliefs]


def outcomes(
    trajectories: Sequence[Trajectory], malformed: float = -1.0, rewards: Sequence[float] | None = None
) -> list[list[float]]:
    """The outcome column: the final turn's reward when it ended the episode with a valid answer,
    ``malformed`` when the episode ended otherwise (an invalid answer, or the turns ran out); NaN
    on the other turns. ``rewards`` (rows, in ``StepBatch.from_trajectories`` order) are the ones the
    estimator trains on, e.g. ``success_rewards``; default: the environment's."""
    columns, end = [], 0
    for trajectory in trajectories:
        column = [math.nan] * len(trajectory.steps)
        end += len(column)
        if column:
            last = trajectory.steps[-1]
            reward = last.reward if rewards is None else float(rewards[end - 1])
            column[-1] = reward if last.terminated and last.valid else malformed
        columns.append(column)
    return columns


def flatten(columns: Sequence[Sequence[float]]) -> np.ndarray:
    """Per-trajectory columns in the row order of ``StepBatch.from_trajectories``."""
    return np.asarray([value for column in columns for value in column], dtype=np.float64)
