"""RLOO: hand-worked leave-one-out advantages, edge cases, and the estimator against a plain loop."""

from __future__ import annotations

import numpy as np

from agentgym.trainers import compute_advantages

# group "a": R = 3, 0, 0 (τ0 has two steps)
#   A(τ0) = 3 - (0 + 0)/2 = 3,  A(τ1) = A(τ2) = 0 - (3 + 0)/2 = -1.5
# group "b": a single trajectory, R = 1: no baseline, A = 1
# group "c": R = 1, 1: A = 0
TABLE = [
    ("a", 0, 0, "s0", "x", 1.0, True),
    ("a", 0, 1, "s1", "x", 2.0, True),
    ("a", 1, 0, "s0", "y", 0.0, False),
    ("a", 2, 0, "s0", "z", 0.0, True),
    ("b", 0, 0, "s0", "x", 1.0, True),
    ("c", 0, 0, "s0", "x", 1.0, True),
    ("c", 1, 0, "s0", "y", 1.0, True),
]
EXPECTED = [3.0, 3.0, -1.5, -1.5, 1.0, 0.0, 0.0]


def test_golden_values(steps_from):
    np.testing.assert_allclose(compute_advantages("rloo", steps_from(TABLE)), EXPECTED)


def test_rows_in_any_order(steps_from):
    order = np.random.default_rng(1).permutation(len(TABLE))
    A = compute_advantages("rloo", steps_from([TABLE[i] for i in order]))
    np.testing.assert_allclose(A, np.asarray(EXPECTED)[order])


def test_all_equal_returns_give_exactly_zero(steps_from):
    table = [("g", i, 0, "s", "a", 0.1, True) for i in range(3)]
    assert np.all(compute_advantages("rloo", steps_from(table)) == 0.0)


def test_truncated_and_mixed_groups(steps_from):
    # same ids in two groups; τ1 of "q" was cut off after one step
    table = [
        ("p", 0, 0, "s", "a", 1.0, True),
        ("p", 1, 0, "s", "a", 0.0, True),
        ("q", 0, 0, "s", "a", 0.0, True),
    ]
    table += [("q", 1, 0, "s", "a", 2.0, True)]
    A = compute_advantages("rloo", steps_from(table, done=[True, True, True, False]))
    np.testing.assert_allclose(A, [1.0, -1.0, -2.0, 2.0])


def test_matches_reference_loop(random_steps, reference):
    np.testing.assert_allclose(
        compute_advantages("rloo", random_steps), reference.rloo(random_steps), atol=1e-9
    )
