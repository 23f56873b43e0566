"""RLOO: REINFORCE with a leave-one-out baseline inside the task group, broadcast to every step.

Kool et al., "Buy 4 REINFORCE Samples, Get a Baseline for Free!" (ICLR 2019 workshop); Ahmadian et al.,
"Back to Basics" (arXiv:2402.14740).

For the G trajectories of one group with episode returns R(τ_i) = Σ_t r_t:

    A(τ_i) = R(τ_i) - 1/(G-1) Σ_{j≠i} R(τ_j) = G/(G-1) · (R(τ_i) - mean_j R(τ_j))

Each trajectory counts once; every step of τ_i gets A(τ_i). A group of one trajectory has nobody to
leave out: its baseline is 0 and A = R, as in verl's ``compute_rloo_outcome_advantage``.
"""

from __future__ import annotations

import numpy as np

from agentgym.trainers.estimators.common import Layout, episode_returns, estimator, group_stats
from agentgym.trajectory import StepBatch


def leave_one_out_advantage(R: np.ndarray, traj_group: np.ndarray) -> np.ndarray:
    """(trajs,) A(τ) from the episode returns ``R`` (trajs,) and each trajectory's group code."""
    mean, _, G = group_stats(R, traj_group, ddof=0)
    return np.where(G > 1, G / np.maximum(G - 1, 1) * (R - mean), R)


@estimator()
def rloo(steps: StepBatch) -> np.ndarray:
    """(rows,) RLOO advantages; see the module docstring."""
    layout = Layout.of(steps)
    R = episode_returns(steps.reward, layout)  # (trajs,)
    return leave_one_out_advantage(R, layout.traj_group)[layout.traj]
