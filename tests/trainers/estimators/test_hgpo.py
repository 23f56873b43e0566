"""HGPO: hand-worked hierarchy-of-groups advantages, edge cases, and the estimator against a plain loop."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from agentgym.core import AgentGymError
from agentgym.trainers import compute_advantages

EPS = 1e-6

# Three trajectories reach state s from x or from y; only τ1 wins.
#   τ1: x -> s, rewards 0, 1  -> R_t (γ = 0.95) = 0.95, 1
#   τ2: y -> s, rewards 0, 0  -> R_t = 0, 0
#   τ3: x -> s, rewards 0, 0  -> R_t = 0, 0
TABLE = [
    ("g", 1, 0, "x", "go", 0.0, True),
    ("g", 1, 1, "s", "win", 1.0, True),
    ("g", 2, 0, "y", "go", 0.0, True),
    ("g", 2, 1, "s", "lose", 0.0, True),
    ("g", 3, 0, "x", "go", 0.0, True),
    ("g", 3, 1, "s", "lose", 0.0, True),
]
# t = 0 (one level, k = 1):  {x}: {0.95, 0} -> mean 0.475, population std 0.475 -> a = ±0.475/(0.475 + ε) ≈ ±1
#                            {y}: τ2 alone -> no level left -> A = 0
# t = 1, level k = 1 (w = 2), key (s):    {1, 0, 0}: mean 1/3, population std √(2/9) = 0.4714
#                                         a = (2/3)/(0.4714 + ε) ≈ √2 for τ1, (-1/3)/(0.4714 + ε) ≈ -1/√2 for τ2, τ3
#        level k = 2 (w = 3), key (x, s): {1, 0} -> a ≈ ±1;  key (y, s): τ2 alone -> dropped
#        level k = 3 would need a third step.
#   τ1, t1: (2·√2 + 3·1) / (2 + 3) = 1.1657;  τ3, t1: (2·(-1/√2) + 3·(-1)) / 5 = -0.8828;  τ2, t1: -1/√2
POP_STD = math.sqrt(2 / 9)
A_X = 0.475 / (0.475 + EPS)
A1_WIN, A1_LOSE = (2 / 3) / (POP_STD + EPS), (-1 / 3) / (POP_STD + EPS)
A2 = 0.5 / (0.5 + EPS)
EXPECTED = [A_X, (2 * A1_WIN + 3 * A2) / 5, 0.0, A1_LOSE, -A_X, (2 * A1_LOSE - 3 * A2) / 5]


def test_golden_values(steps_from):
    A = compute_advantages("hgpo", steps_from(TABLE))
    np.testing.assert_allclose(A, EXPECTED, atol=1e-12)
    np.testing.assert_allclose(A, [1.0, 1.16569, 0.0, -0.70711, -1.0, -0.88284], atol=1e-5)


def test_zero_advantages_are_dropped_from_the_weights(steps_from):
    # τ4 = y -> s losing too.  t = 1, level 1: {1, 0, 0, 0}: mean 0.25, population std √0.1875 = 0.4330
    #   a = 0.75/0.4330 = √3 for τ1 and -0.25/0.4330 = -1/√3 for the others
    # level 2: (x, s) {1, 0} -> ±1;  (y, s) {0, 0} -> a = 0 for τ2 and τ4: dropped, level 1 alone remains
    # t = 0: {y} = {0, 0} -> 0, dropped -> A = 0
    table = [*TABLE, ("g", 4, 0, "y", "go", 0.0, True), ("g", 4, 1, "s", "lose", 0.0, True)]
    std1 = math.sqrt(0.1875)
    win, lose = 0.75 / (std1 + EPS), -0.25 / (std1 + EPS)
    expected = [A_X, (2 * win + 3 * A2) / 5, 0.0, lose, -A_X, (2 * lose - 3 * A2) / 5, 0.0, lose]
    np.testing.assert_allclose(compute_advantages("hgpo", steps_from(table)), expected, atol=1e-12)
    np.testing.assert_allclose(expected[1], 1.29282, atol=1e-5)


def test_base_group_adds_the_episode_level_with_weight_one(steps_from):
    # level 0: R(τ) = 1, 0, 0 -> mean 1/3, population std √(2/9) -> a0 ≈ √2 for τ1, -1/√2 for τ2, τ3
    #   τ1, t0: (1·√2 + 2·1) / 3;  τ1, t1: (1·√2 + 2·√2 + 3·1) / 6;  τ2, t0: only level 0 -> -1/√2
    a0_win, a0_lose = A1_WIN, A1_LOSE  # same numbers: {1, 0, 0} again
    expected = [
        (a0_win + 2 * A_X) / 3,
        (a0_win + 2 * A1_WIN + 3 * A2) / 6,
        a0_lose,
        (a0_lose + 2 * A1_LOSE) / 3,
        (a0_lose - 2 * A_X) / 3,
        (a0_lose + 2 * A1_LOSE - 3 * A2) / 6,
    ]
    A = compute_advantages("hgpo", steps_from(TABLE), base_group=True)
    np.testing.assert_allclose(A, expected, atol=1e-12)
    np.testing.assert_allclose(A[:2], [1.13807, 1.20711], atol=1e-5)


def test_K_alpha_and_mean_norm(steps_from):
    steps = steps_from(TABLE)
    # K = 0: the current anchor only (level 1)
    np.testing.assert_allclose(
        compute_advantages("hgpo", steps, K=0), [A_X, A1_WIN, 0, A1_LOSE, -A_X, A1_LOSE]
    )
    # α = 0: levels weigh the same: τ1, t1 = (√2 + 1) / 2
    np.testing.assert_allclose(compute_advantages("hgpo", steps, alpha=0.0)[1], (A1_WIN + A2) / 2)
    # norm="mean": level 1 gives 2/3 and -1/3, level 2 gives ±0.5: τ1, t1 = (2·2/3 + 3·0.5) / 5 = 0.5667
    A = compute_advantages("hgpo", steps, norm="mean")
    np.testing.assert_allclose(
        A, [0.475, (4 / 3 + 1.5) / 5, 0.0, -1 / 3, -0.475, (-2 / 3 - 1.5) / 5], atol=1e-12
    )


def test_singleton_group_and_all_equal_returns(steps_from):
    # one trajectory revisiting s: level 1 {s} = {R_0, R_2}; nothing else has a peer
    # rewards 0, 0, 1 -> R_t = 0.9025, 0.95, 1.  {s}: t0 and t2: ∓0.04875/(0.04875 + ε) ≈ ∓1
    table = [
        ("g", 0, 0, "s", "a", 0.0, True),
        ("g", 0, 1, "u", "a", 0.0, True),
        ("g", 0, 2, "s", "a", 1.0, True),
    ]
    a = 0.04875 / (0.04875 + EPS)
    np.testing.assert_allclose(compute_advantages("hgpo", steps_from(table)), [-a, 0.0, a], atol=1e-9)
    equal = [("g", i, t, f"s{t}", "a", 0.1, True) for i in range(3) for t in range(3)]
    assert np.all(compute_advantages("hgpo", steps_from(equal), base_group=True) == 0.0)


def test_groups_never_mix_and_rows_in_any_order(steps_from):
    other = [("h", traj, t, s, a, 2 * r, v) for (_, traj, t, s, a, r, v) in TABLE]
    table = TABLE + other + [("h", 9, 0, "x", "go", 7.0, False)]
    order = np.random.default_rng(2).permutation(len(table))
    done = [True] * len(table)
    done[-1] = False  # a trajectory cut off after its first step
    A = compute_advantages("hgpo", steps_from([table[i] for i in order], done=[done[i] for i in order]))
    np.testing.assert_allclose(A[np.argsort(order)][:6], EXPECTED, atol=1e-12)


def test_bad_K_is_rejected(steps_from):
    with pytest.raises(AgentGymError, match="K"):
        compute_advantages("hgpo", steps_from(TABLE), K=-1)


def reference_hgpo(steps, reference, gamma=0.95, K=2, alpha=1.0, norm="std", base_group=False, epsilon=EPS):
    n = len(steps)
    R_t = reference.step_returns(steps, gamma)
    trajs = reference.trajectories(steps)
    R = {key: sum(steps.reward[i] for i in rows) for key, rows in trajs.items()}
    history = {}  # row -> its anchors up to and including its own, newest first
    for rows in trajs.values():
        for p, i in enumerate(rows):
            history[i] = tuple(steps.anchor[rows[q]] for q in range(p, -1, -1))

    def relative(x, peers):
        mean = statistics.mean(peers)
        return x - mean if norm == "mean" else (x - mean) / (statistics.pstdev(peers) + epsilon)

    A = np.zeros(n)
    for i in range(n):
        terms = []  # (w_k, a_k)
        key = (steps.group[i], steps.traj[i])
        if base_group:
            peers = [R[other] for other in R if other[0] == key[0]]
            if len(peers) > 1 and abs(a := relative(R[key], peers)) > 1e-9:
                terms.append((1.0, a))
        for k in range(1, min(K + 1, len(history[i])) + 1):
            peers = [
                R_t[j] for j in range(n) if steps.group[j] == key[0] and history[j][:k] == history[i][:k]
            ]
            if len(peers) > 1 and abs(a := relative(R_t[i], peers)) > 1e-9:
                terms.append(((k + 1) ** alpha, a))
        A[i] = sum(w * a for w, a in terms) / sum(w for w, _ in terms) if terms else 0.0
    return A


@pytest.mark.parametrize(
    "params", [{}, {"norm": "mean"}, {"K": 0}, {"K": 4, "alpha": 2.0, "gamma": 0.8}, {"base_group": True}]
)
def test_matches_reference_loop(random_steps, reference, params):
    np.testing.assert_allclose(
        compute_advantages("hgpo", random_steps, **params),
        reference_hgpo(random_steps, reference, **params),
        atol=1e-9,
    )
