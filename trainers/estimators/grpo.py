"""GRPO: each trajectory's episode return normalised within its task group, broadcast to its steps.

Shao et al., "DeepSeekMath" (arXiv:2402.03300), outcome supervision; ``norm="mean"`` is Dr. GRPO
(Liu et al., "Understanding R1-Zero-Like Training", arXiv:2503.20783).

For the trajectories τ_1..τ_G of one group, with episode returns R(τ_i) = Σ_t r_t:

    A(τ_i) = (R(τ_i) - mean_j R(τ_j)) / (std_j R(τ_j) + ε)    norm="std" (default), ε = 1e-6
    A(τ_i) =  R(τ_i) - mean_j R(τ_j)                          norm="mean"

``std`` is the unbiased sample standard deviation (Bessel-corrected, ddof=1), as in verl's
``compute_grpo_outcome_advantage`` and TRL's ``GRPOTrainer``, which both call ``torch.std``. Each
trajectory counts once, however many steps it has, and every step of τ_i gets A(τ_i). A group of one
trajectory has no baseline: mean 0 and std 1 (verl's convention), so A = R / (1 + ε) (``"std"``) or R.
A group whose returns are all equal gets exactly 0.
"""

from __future__ import annotations

import numpy as np

from agentgym.trainers.estimators.common import (
    NORMS,
    Layout,
    Norm,
    check_choice,
    episode_returns,
    estimator,
    group_stats,
    normalize,
)
from agentgym.trajectory import StepBatch


def episode_advantage(R: np.ndarray, traj_group: np.ndarray, norm: str, epsilon: float) -> np.ndarray:
    """(trajs,) A(τ) from the episode returns ``R`` (trajs,) and each trajectory's group code."""
    mean, std, size = group_stats(R, traj_group, ddof=1)
    alone = size == 1
    return normalize(R, np.where(alone, 0.0, mean), np.where(alone, 1.0, std), norm, epsilon)


@estimator()
def grpo(steps: StepBatch, *, norm: Norm = "std", epsilon: float = 1e-6) -> np.ndarray:
    """(rows,) GRPO advantages; see the module docstring."""
    check_choice("grpo", "norm", norm, NORMS)
    layout = Layout.of(steps)
    R = episode_returns(steps.reward, layout)  # (trajs,)
    return episode_advantage(R, layout.traj_group, norm, epsilon)[layout.traj]
