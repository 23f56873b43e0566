"""SALT: hand-worked trajectory-graph advantages, edge cases, and the estimator against a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentgym.core import AgentGymError
from agentgym.trainers import compute_advantages
from agentgym.trainers.estimators.salt import normalize_action

EPS = 1e-6

# τ1 wins, τ2 and τ3 lose.  τ1 and τ2 share their first step (the actions differ only in case and
# spaces); τ1 and τ3 share their second step, reached by different paths.
TABLE = [
    ("g", 1, 0, "s0", "go north", 0.0, True),
    ("g", 1, 1, "s1", "take key", 1.0, True),
    ("g", 2, 0, "s0", " Go  North", 0.0, True),
    ("g", 2, 1, "s1", "open door", 0.0, True),
    ("g", 3, 0, "s0", "go south", 0.0, True),
    ("g", 3, 1, "s1", "take key", 0.0, True),
]
# GRPO base: R = 1, 0, 0 -> mean 1/3, unbiased std √(1/3) = 0.5774
#   A(τ1) = (2/3)/(0.5774 + ε) = 1.1547,  A(τ2) = A(τ3) = (-1/3)/(0.5774 + ε) = -0.5774
WIN, LOSE = (2 / 3) / (math.sqrt(1 / 3) + EPS), (-1 / 3) / (math.sqrt(1 / 3) + EPS)
SHARED = (WIN + LOSE) / 2  # 0.2887


def test_golden_values_edge_merge(steps_from):
    # (s0, go north): τ1, τ2 -> shared;  (s1, take key): τ1, τ3 -> shared;  the other edges keep their sign
    A = compute_advantages("salt", steps_from(TABLE))
    np.testing.assert_allclose(A, [SHARED, SHARED, SHARED, LOSE, LOSE, SHARED], atol=1e-12)
    np.testing.assert_allclose(A[0], 0.28868, atol=1e-5)


def test_golden_values_prefix_merge(steps_from):
    # the prefix tree merges τ1 and τ2 at the root only: (s1, take key) after different prefixes stays apart
    A = compute_advantages("salt", steps_from(TABLE), merge="prefix")
    np.testing.assert_allclose(A, [SHARED, WIN, SHARED, LOSE, LOSE, LOSE], atol=1e-12)


def test_rloo_base(steps_from):
    # RLOO: A = 1 - 0 = 1, 0 - 0.5 = -0.5, -0.5;  shared edges: (1 - 0.5)/2 = 0.25
    A = compute_advantages("salt", steps_from(TABLE), base="rloo")
    np.testing.assert_allclose(A, [0.25, 0.25, 0.25, -0.5, -0.5, 0.25])


def test_a_loop_counts_every_occurrence(steps_from):
    # τa looks twice then wins, τb looks once then quits: R = 1, 0 -> A = ±0.5/(√0.5 + ε) = ±a
    # (s, look) is traversed 3 times: (a + a - a)/3 = a/3
    table = [
        ("g", 0, 0, "s", "look", 0.0, True),
        ("g", 0, 1, "s", "look", 0.0, True),
        ("g", 0, 2, "s", "win", 1.0, True),
        ("g", 1, 0, "s", "look", 0.0, True),
        ("g", 1, 1, "s", "quit", 0.0, True),
    ]
    a = 0.5 / (math.sqrt(0.5) + EPS)
    np.testing.assert_allclose(compute_advantages("salt", steps_from(table)), [a / 3, a / 3, a, a / 3, -a])


def test_singleton_all_equal_and_separate_groups(steps_from):
    # group "h" repeats τ1's edges alone: its steps keep A = R/(1 + ε) and never mix with "g"
    table = [*TABLE, ("h", 1, 0, "s0", "go north", 0.0, True), ("h", 1, 1, "s1", "take key", 2.0, True)]
    A = compute_advantages("salt", steps_from(table))
    np.testing.assert_allclose(A, [SHARED, SHARED, SHARED, LOSE, LOSE, SHARED, 2 / (1 + EPS), 2 / (1 + EPS)])
    equal = [("g", i, 0, "s", "a", 0.1, True) for i in range(3)]
    assert np.all(compute_advantages("salt", steps_from(equal)) == 0.0)


def test_shuffled_rows_and_truncated_episode(steps_from):
    order = [5, 0, 3, 1, 4, 2]
    done = [True, True, True, True, True, False]  # τ3 was cut off after its second step
    A = compute_advantages("salt", steps_from([TABLE[i] for i in order], done=[done[i] for i in order]))
    np.testing.assert_allclose(A, np.asarray([SHARED, SHARED, SHARED, LOSE, LOSE, SHARED])[order], atol=1e-12)


def test_options_are_checked(steps_from):
    with pytest.raises(AgentGymError, match="merge must be one of 'edge', 'prefix'; got 'tree'"):
        compute_advantages("salt", steps_from(TABLE), merge="tree")
    with pytest.raises(AgentGymError, match="base must be one of"):
        compute_advantages("salt", steps_from(TABLE), base="ppo")


def test_normalize_action():
    assert normalize_action("  Click[Buy   Now]\n") == "click[buy now]"


def reference_salt(steps, reference, base="grpo", merge="edge", norm="std"):
    A_traj = reference.grpo(steps, norm) if base == "grpo" else reference.rloo(steps)
    key = {}
    for rows in reference.trajectories(steps).values():
        for p, i in enumerate(rows):
            edges = [(steps.anchor[j], " ".join(steps.action[j].lower().split())) for j in rows[: p + 1]]
            key[i] = (steps.group[i], *(edges if merge == "prefix" else edges[-1:]))
    A = np.zeros(len(steps))
    for i in range(len(steps)):
        on_edge = [A_traj[j] for j in range(len(steps)) if key[j] == key[i]]
        A[i] = sum(on_edge) / len(on_edge)
    return A


@pytest.mark.parametrize(
    "params",
    [{}, {"merge": "prefix"}, {"base": "rloo"}, {"base": "rloo", "merge": "prefix"}, {"norm": "mean"}],
)
def test_matches_reference_loop(random_steps, reference, params):
    np.testing.assert_allclose(
        compute_advantages("salt", random_steps, **params),
        reference_salt(random_steps, reference, **params),
        atol=1e-9,
    )
