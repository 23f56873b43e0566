"""IGPO: turn rewards from information gain, the outcome on the final turn, normalised apart and summed.

Wang et al., "Information Gain-based Policy Optimization: A Simple and Effective Approach for Multi-Turn
LLM Agents" (arXiv:2510.14967).

The training loop probes the policy (this estimator declares ``requires=("info_gain", "outcome")``):
p_t is the policy's probability of the gold answer given the context after turn t, and the turn reward
of a non-final turn is its information gain r_t = p_t - p_(t-1) (column ``info_gain``). The final turn T
of a trajectory (its last row) gets the outcome reward r_T (column ``outcome``: F1 or EM, negative for a
malformed answer). Where a column is missing (NaN) the env reward of that turn stands in.

Within one task group the two kinds of reward are z-normalised separately, each over its pool (all
non-final turns of all trajectories; all final turns), with the population std:

    r~_t = (r_t - mean_pool) / (std_pool + ε),   ε = 1e-6   (a pool of one value normalises to 0)

and a turn's advantage is the discounted sum of the normalised rewards from that turn to the end of its
trajectory (γ = 1 by default), broadcast to the turn's tokens:

    A_t = Σ_{k≥t} γ^(k-t) r~_k
"""

from __future__ import annotations

import numpy as np

from agentgym.trainers.estimators.common import Layout, combine, discounted_returns, estimator, group_stats
from agentgym.trajectory import StepBatch


@estimator(requires=("info_gain", "outcome"))
def igpo(steps: StepBatch, *, gamma: float = 1.0, epsilon: float = 1e-6) -> np.ndarray:
    """(rows,) IGPO advantages; see the module docstring."""
    layout = Layout.of(steps)
    final = layout.is_last  # (rows,)
    r = np.where(final, steps.outcome, steps.info_gain)
    r = np.where(np.isnan(r), steps.reward, r)
    pool = combine(layout.group, final.astype(np.int64))  # (group, is final turn)
    mean, std, _ = group_stats(r, pool, ddof=0)
    r_tilde = (r - mean) / (std + epsilon)
    return discounted_returns(r_tilde, layout, gamma)
