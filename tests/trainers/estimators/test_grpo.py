"""GRPO: hand-worked advantages, edge cases, and the vectorised estimator against a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentgym.core import AgentGymError
from agentgym.trainers import compute_advantages

EPS = 1e-6

# group "a": R(τ0) = 1 + 2 = 3, R(τ1) = 0, R(τ2) = 0
#   mean = 1, unbiased var = (2² + 1² + 1²) / 2 = 3, std = √3
#   A(τ0) = 2 / (√3 + ε) ≈ 1.1547, A(τ1) = A(τ2) = -1 / (√3 + ε) ≈ -0.5774
# group "b": a single trajectory, R = 0.5 + 0.5 = 1: mean 0, std 1, A = 1 / (1 + ε)
# group "c": R = 1 and 1: all equal, A = 0
TABLE = [
    ("a", 0, 0, "s0", "x", 1.0, True),
    ("a", 0, 1, "s1", "x", 2.0, True),
    ("a", 1, 0, "s0", "y", 0.0, True),
    ("a", 1, 1, "s0", "y", 0.0, False),
    ("a", 1, 2, "s2", "y", 0.0, True),
    ("a", 2, 0, "s0", "z", 0.0, True),
    ("b", 0, 0, "s0", "x", 0.5, True),
    ("b", 0, 1, "s1", "x", 0.5, True),
    ("c", 0, 0, "s0", "x", 1.0, True),
    ("c", 1, 0, "s0", "y", 0.0, True),
    ("c", 1, 1, "s1", "y", 1.0, True),
]
EXPECTED_STD = (
    [2 / (math.sqrt(3) + EPS)] * 2 + [-1 / (math.sqrt(3) + EPS)] * 4 + [1 / (1 + EPS)] * 2 + [0.0] * 3
)
# norm="mean" (Dr. GRPO): R - mean, a single trajectory keeps R
EXPECTED_MEAN = [2.0] * 2 + [-1.0] * 4 + [1.0] * 2 + [0.0] * 3


def test_golden_values_std(steps_from):
    np.testing.assert_allclose(compute_advantages("grpo", steps_from(TABLE)), EXPECTED_STD, atol=1e-12)


def test_golden_values_mean(steps_from):
    np.testing.assert_allclose(compute_advantages("grpo", steps_from(TABLE), norm="mean"), EXPECTED_MEAN)


def test_rows_in_any_order_get_their_own_values(steps_from):
    order = np.random.default_rng(0).permutation(len(TABLE))
    A = compute_advantages("grpo", steps_from([TABLE[i] for i in order]))
    np.testing.assert_allclose(A, np.asarray(EXPECTED_STD)[order], atol=1e-12)


def test_all_equal_returns_give_exactly_zero(steps_from):
    # 0.1 + 0.1 + 0.1 is not 0.3 in floating point; the advantage must still be exactly 0
    table = [("g", i, 0, "s", "a", 0.1, True) for i in range(3)]
    assert np.all(compute_advantages("grpo", steps_from(table)) == 0.0)


def test_groups_never_mix(steps_from):
    # the same trajectory ids in two groups: each group is normalised on its own
    group_a = [row for row in TABLE if row[0] == "a"]
    both = group_a + [("other", traj, t, s, a, 10 * r, v) for (_, traj, t, s, a, r, v) in group_a]
    A = compute_advantages("grpo", steps_from(both))
    # scaling a group's returns by 10 leaves its normalised advantages unchanged (up to ε)
    np.testing.assert_allclose(A[: len(group_a)], EXPECTED_STD[: len(group_a)], atol=1e-12)
    np.testing.assert_allclose(A[len(group_a) :], EXPECTED_STD[: len(group_a)], atol=1e-5)


def test_truncated_episode_uses_the_rewards_it_saw(steps_from):
    # τ1 was cut off (its last step is not terminal): no bootstrap, its return is what it collected
    table = [
        ("g", 0, 0, "s", "a", 1.0, True),
        ("g", 1, 0, "s", "a", 0.0, True),
        ("g", 1, 1, "s", "a", 0.0, True),
    ]
    A = compute_advantages("grpo", steps_from(table, done=[True, False, False]))
    # R = 1, 0: mean 0.5, unbiased std √0.5 = 0.7071, A = ±0.5 / (0.7071 + ε)
    a = 0.5 / (math.sqrt(0.5) + EPS)
    np.testing.assert_allclose(A, [a, -a, -a])


def test_invalid_actions_do_not_change_grpo(steps_from):
    flipped = [(*row[:6], not row[6]) for row in TABLE]
    np.testing.assert_array_equal(
        compute_advantages("grpo", steps_from(TABLE)), compute_advantages("grpo", steps_from(flipped))
    )


def test_unknown_norm_is_rejected(steps_from):
    with pytest.raises(AgentGymError, match="norm must be one of 'std', 'mean'; got 'z'"):
        compute_advantages("grpo", steps_from(TABLE), norm="z")


@pytest.mark.parametrize("norm", ["std", "mean"])
def test_matches_reference_loop(random_steps, reference, norm):
    np.testing.assert_allclose(
        compute_advantages("grpo", random_steps, norm=norm), reference.grpo(random_steps, norm), atol=1e-9
    )
