"""The shared numpy pieces: trajectory layout, grouped statistics, discounted returns."""

from __future__ import annotations

import numpy as np

from agentgym.trainers.estimators.common import Layout, combine, discounted_returns, group_stats
from agentgym.trajectory import StepBatch


def test_layout_orders_shuffled_rows_and_counts_places():
    # trajectory (g, 0) has t = 5, 2, 9 (gaps allowed): places 1, 0, 2
    steps = StepBatch.from_records(
        [
            {"group": "g", "traj": 0, "t": 5, "reward": 0.0},
            {"group": "h", "traj": 0, "t": 0, "reward": 0.0},
            {"group": "g", "traj": 0, "t": 2, "reward": 0.0},
            {"group": "g", "traj": 0, "t": 9, "reward": 0.0},
        ]
    )
    layout = Layout.of(steps)
    np.testing.assert_array_equal(layout.pos, [1, 0, 0, 2])
    np.testing.assert_array_equal(layout.traj, [0, 1, 0, 0])
    np.testing.assert_array_equal(layout.length, [3, 1])
    np.testing.assert_array_equal(layout.traj_group, [0, 1])
    np.testing.assert_array_equal(layout.is_last, [False, True, False, True])


def test_discounted_returns_walk_each_trajectory_backwards():
    # (g, 0): rewards by t = 1, 0, 2 -> R = 1 + 0.5·(0 + 0.5·2) = 1.5, 0 + 0.5·2 = 1, 2;  (g, 1): 3
    steps = StepBatch.from_records(
        [
            {"group": "g", "traj": 0, "t": 2, "reward": 2.0},
            {"group": "g", "traj": 1, "t": 0, "reward": 3.0},
            {"group": "g", "traj": 0, "t": 0, "reward": 1.0},
            {"group": "g", "traj": 0, "t": 1, "reward": 0.0},
        ]
    )
    np.testing.assert_allclose(discounted_returns(steps.reward, Layout.of(steps), 0.5), [2.0, 3.0, 1.5, 1.0])


def test_group_stats_are_exact_for_equal_values():
    x = np.array([0.1, 0.1, 0.1, 0.7, 1.0, 2.0])
    codes = np.array([0, 0, 0, 1, 2, 2])
    mean, std, size = group_stats(x, codes, ddof=1)
    assert np.all(mean[:3] == 0.1) and np.all(std[:3] == 0.0)  # plain sum / n gives 0.10000000000000002
    np.testing.assert_allclose(mean[4:], 1.5)
    np.testing.assert_allclose(std[4:], np.std([1.0, 2.0], ddof=1))
    np.testing.assert_array_equal(size, [3, 3, 3, 1, 2, 2])
    assert std[3] == 0.0  # a group of one


def test_combine_gives_equal_codes_to_equal_tuples_only():
    a = np.array([0, 0, 1, 1, 0])
    b = np.array([2, 2, 2, 0, 0])
    codes = combine(a, b)
    assert codes[0] == codes[1]
    assert len(set(codes.tolist())) == 4
