"""Training rewards derived from finished trajectories (pure functions).

The environment's own reward is what an estimator sees by default. ``success_rewards`` replaces it by
the outcome alone, 1 on the last step of a won episode and 0 everywhere else, for benchmarks whose
metric is success while their reward gives partial credit (WebShop's score): episodes that fail with
different partial scores then tie, and only the difference between winning and losing is learned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from agentgym.trajectory import Trajectory

RewardSource = Literal["env", "success"]


def success_rewards(trajectories: Sequence[Trajectory]) -> np.ndarray:
    """(rows,) in ``StepBatch.from_trajectories`` row order: 1.0 on the last step of each won
    trajectory, 0.0 elsewhere."""
    rewards = []
    for trajectory in trajectories:
        rewards += [0.0] * len(trajectory.steps)
        if trajectory.won and trajectory.steps:
            rewards[-1] = 1.0
    return np.asarray(rewards, dtype=np.float64)
