"""Batches for the estimator tests (hand-written tables, random batches) and the plain reference loops
that the vectorised estimators are compared with."""

from __future__ import annotations

import statistics
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest

from agentgym.trajectory import StepBatch

COLUMNS = ("group", "traj", "t", "anchor", "action", "reward", "valid")


def steps_from_table(table: list[tuple], **extra_columns: list) -> StepBatch:
    """A batch from rows (group, traj, t, anchor, action, reward, valid) plus optional extra columns."""
    records = [dict(zip(COLUMNS, row, strict=True)) for row in table]
    for name, values in extra_columns.items():
        for record, value in zip(records, values, strict=True):
            record[name] = value
    return StepBatch.from_records(records)


def random_records(seed: int, groups: int = 6, max_group: int = 5, max_len: int = 7) -> list[dict]:
    """Shuffled records with singleton groups, repeated anchors, looping edges, invalid and truncated steps.

    Trajectory ids restart at 0 in every group, so rows of different groups only differ by ``group``.
    """
    rng = np.random.default_rng(seed)
    actions = ["go north", "Go  North", "take key", "open door", "look"]
    records = []
    for g in range(groups):
        for traj in range(int(rng.integers(1, max_group + 1))):
            length = int(rng.integers(1, max_len + 1))
            for t in range(length):
                records.append(
                    {
                        "group": f"task-{g}",
                        "traj": traj,
                        "t": t,
                        "anchor": f"room {rng.integers(4)}",
                        "action": actions[rng.integers(len(actions))],
                        "reward": float(rng.choice([0.0, 0.0, 0.0, 1.0, 0.5])),
                        "valid": bool(rng.random() > 0.2),
                        "info_gain": float(rng.normal()) if t < length - 1 else None,
                        "outcome": float(rng.choice([0.0, 1.0])) if t == length - 1 else None,
                        "done": t == length - 1 and rng.random() > 0.3,  # some episodes were cut off
                    }
                )
    return [records[i] for i in rng.permutation(len(records))]


def by_trajectory(steps: StepBatch) -> dict[tuple, list[int]]:
    """(group, traj) -> the row indices of that trajectory, ordered by t."""
    trajectories: dict[tuple, list[int]] = defaultdict(list)
    for i in range(len(steps)):
        trajectories[(steps.group[i], steps.traj[i])].append(i)
    return {key: sorted(rows, key=lambda i: steps.t[i]) for key, rows in trajectories.items()}


def reference_step_returns(steps: StepBatch, gamma: float) -> np.ndarray:
    """R_t = r_t + γ R_(t+1), walking each trajectory backwards."""
    R = np.zeros(len(steps))
    for rows in by_trajectory(steps).values():
        running = 0.0
        for i in reversed(rows):
            running = steps.reward[i] + gamma * running
            R[i] = running
    return R


def reference_grpo(steps: StepBatch, norm: str = "std", epsilon: float = 1e-6) -> np.ndarray:
    """GRPO advantage of each row's trajectory: one trajectory at a time, with the statistics module."""
    trajs = by_trajectory(steps)
    R = {key: sum(steps.reward[i] for i in rows) for key, rows in trajs.items()}
    A = np.full(len(steps), np.nan)
    for key, rows in trajs.items():
        returns = [R[other] for other in R if other[0] == key[0]]
        mean, std = (0.0, 1.0) if len(returns) == 1 else (statistics.mean(returns), statistics.stdev(returns))
        A[rows] = R[key] - mean if norm == "mean" else (R[key] - mean) / (std + epsilon)
    return A


def reference_rloo(steps: StepBatch) -> np.ndarray:
    """R minus the mean return of the other trajectories of the group (0 when there are none)."""
    trajs = by_trajectory(steps)
    R = {key: sum(steps.reward[i] for i in rows) for key, rows in trajs.items()}
    A = np.full(len(steps), np.nan)
    for key, rows in trajs.items():
        others = [R[other] for other in R if other[0] == key[0] and other != key]
        A[rows] = R[key] - (sum(others) / len(others) if others else 0.0)
    return A


@pytest.fixture
def reference():
    return SimpleNamespace(
        trajectories=by_trajectory,
        step_returns=reference_step_returns,
        grpo=reference_grpo,
        rloo=reference_rloo,
    )


@pytest.fixture
def steps_from():
    return steps_from_table


@pytest.fixture(params=range(8))
def random_steps(request) -> StepBatch:
    return StepBatch.from_records(random_records(request.param))
