"""IGPO: hand-worked information-gain advantages, edge cases, and the estimator against a plain loop."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from agentgym.trainers import compute_advantages, get_estimator

EPS = 1e-6

# τ1: three turns, information gains 0.2 and 0.4, then a correct answer (outcome 1)
# τ2: two turns, information gain -0.1, then a wrong answer (outcome 0)
TABLE = [
    ("g", 1, 0, "q", "search a", 0.0, True),
    ("g", 1, 1, "q", "search b", 0.0, True),
    ("g", 1, 2, "q", "answer", 1.0, True),
    ("g", 2, 0, "q", "search c", 0.0, True),
    ("g", 2, 1, "q", "answer", 0.0, True),
]
INFO_GAIN = [0.2, 0.4, None, -0.1, None]
OUTCOME = [None, None, 1.0, None, 0.0]
# IG pool {0.2, 0.4, -0.1}: mean 0.5/3 = 0.1667, population var = (0.0333² + 0.2333² + 0.2667²)/3 = 0.04222
#   std 0.2055 -> r~ = 0.1622, 1.1355, -1.2978
# outcome pool {1, 0}: mean 0.5, population std 0.5 -> r~ = ±0.5/(0.5 + ε) ≈ ±1
# γ = 1: τ1: A_2 = 1, A_1 = 1.1355 + 1 = 2.1355, A_0 = 0.1622 + 2.1355 = 2.2978
#        τ2: A_1 = -1, A_0 = -1.2978 - 1 = -2.2978
IG_MEAN = 0.5 / 3
IG_STD = math.sqrt(((0.2 - IG_MEAN) ** 2 + (0.4 - IG_MEAN) ** 2 + (-0.1 - IG_MEAN) ** 2) / 3)
R_TILDE = [(x - IG_MEAN) / (IG_STD + EPS) for x in (0.2, 0.4, -0.1)]
OUT = 0.5 / (0.5 + EPS)
EXPECTED = [R_TILDE[0] + R_TILDE[1] + OUT, R_TILDE[1] + OUT, OUT, R_TILDE[2] - OUT, -OUT]


def test_golden_values(steps_from):
    A = compute_advantages("igpo", steps_from(TABLE, info_gain=INFO_GAIN, outcome=OUTCOME))
    np.testing.assert_allclose(A, EXPECTED, atol=1e-12)
    np.testing.assert_allclose(A, [2.29777, 2.13555, 1.0, -2.29777, -1.0], atol=1e-5)


def test_discount(steps_from):
    # γ = 0.5: τ1: A_1 = 1.1355 + 0.5·1, A_0 = 0.1622 + 0.5·A_1
    A = compute_advantages("igpo", steps_from(TABLE, info_gain=INFO_GAIN, outcome=OUTCOME), gamma=0.5)
    A_1 = R_TILDE[1] + 0.5 * OUT
    np.testing.assert_allclose(A[:3], [R_TILDE[0] + 0.5 * A_1, A_1, OUT], atol=1e-12)


def test_env_reward_stands_in_for_a_missing_outcome(steps_from):
    # the final turns' env rewards are the outcomes here (1 and 0)
    A = compute_advantages("igpo", steps_from(TABLE, info_gain=INFO_GAIN))
    np.testing.assert_allclose(A, EXPECTED, atol=1e-12)


def test_single_turn_trajectories_and_a_singleton_group(steps_from):
    # group "a": answers only, outcomes 1, 0, 0: population std √(2/9) -> √2, -1/√2, -1/√2
    # group "b": one trajectory. IG pool {0.3, 0.1} -> ±0.1/(0.1 + ε) = ±a; outcome pool {1} -> 0
    #   A_2 = 0, A_1 = -a + 0, A_0 = a - a + 0 = 0
    table = [("a", i, 0, "q", "answer", r, True) for i, r in enumerate([1.0, 0.0, 0.0])]
    table += [("b", 0, t, "q", "x", 0.0, True) for t in range(3)]
    steps = steps_from(table, info_gain=[None] * 3 + [0.3, 0.1, None], outcome=[None] * 5 + [1.0])
    s = math.sqrt(2 / 9)
    a = 0.1 / (0.1 + EPS)
    expected = [(2 / 3) / (s + EPS), (-1 / 3) / (s + EPS), (-1 / 3) / (s + EPS), 0.0, -a, 0.0]
    np.testing.assert_allclose(compute_advantages("igpo", steps), expected, atol=1e-9)


def test_rows_in_any_order_and_truncated(steps_from):
    order = [4, 2, 0, 3, 1]
    steps = steps_from(
        [TABLE[i] for i in order],
        info_gain=[INFO_GAIN[i] for i in order],
        outcome=[OUTCOME[i] for i in order],
        done=[True, False, False, False, False],  # τ1 stopped at the turn limit
    )
    np.testing.assert_allclose(compute_advantages("igpo", steps), np.asarray(EXPECTED)[order], atol=1e-12)


def test_declares_what_the_loop_must_provide():
    assert get_estimator("igpo").requires == ("info_gain", "outcome")
    assert get_estimator("gigpo").requires == ()


def reference_igpo(steps, reference, gamma=1.0, epsilon=EPS):
    trajs = reference.trajectories(steps)
    final = {rows[-1] for rows in trajs.values()}
    r = {}
    for i in range(len(steps)):
        value = steps.outcome[i] if i in final else steps.info_gain[i]
        r[i] = steps.reward[i] if math.isnan(value) else value
    r_tilde = {}
    for i in range(len(steps)):
        pool = [
            r[j]
            for j in range(len(steps))
            if steps.group[j] == steps.group[i] and (j in final) == (i in final)
        ]
        r_tilde[i] = (r[i] - statistics.mean(pool)) / (statistics.pstdev(pool) + epsilon)
    A = np.zeros(len(steps))
    for rows in trajs.values():
        for p, i in enumerate(rows):
            A[i] = sum(gamma ** (q - p) * r_tilde[rows[q]] for q in range(p, len(rows)))
    return A


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_matches_reference_loop(random_steps, reference, gamma):
    np.testing.assert_allclose(
        compute_advantages("igpo", random_steps, gamma=gamma),
        reference_igpo(random_steps, reference, gamma),
        atol=1e-9,
    )
