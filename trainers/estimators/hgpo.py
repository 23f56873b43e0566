"""HGPO: hierarchy-of-groups advantages over steps that share their recent history of anchor states.

He et al., "Hierarchy-of-Groups Policy Optimization for Long-Horizon Agentic Tasks" (arXiv:2602.22817).
An agent that prompts with a memory of its last K steps sees different prompts in the same state when
the histories differ; HGPO compares a step with others whose recent anchors match too.

Within one task group, with step returns R_t = Σ_{k≥t} γ^(k-t) r_k (γ = 0.95) and K = 2 (the agent's
memory length):

* level k = 1..min(K+1, t+1): step t joins the group of the rows of its task group whose last k anchors
  (s_(t-k+1), ..., s_t), up to and including its own, are equal (any time step, any trajectory);
* each level group of size > 1 gives  a_k = (R_t - mean R) / (population std R + ε),  ε = 1e-6
  (``norm="mean"``: a_k = R_t - mean R); levels whose group has one member give nothing;
* zero values are dropped (|a_k| ≤ 1e-9, so that rounding noise does not count as a signal);
* A_t = Σ_k w_k a_k over the levels left, with w_k = (k+1)^α / Σ_k' (k'+1)^α, α = 1; A_t = 0 if none.

With ``base_group=True`` the episode level joins as level 0 (weight 1^α = 1): GRPO over the episode
returns R(τ) = Σ_t r_t of the group's trajectories, each counted once, under the same rules (population
std, a group of one trajectory gives nothing, zero dropped).

Levels are numbered by the number of anchors they share, as above; the authors' code numbers them by
history length h = k - 1 and weighs a group by the number of anchors it shares, (h+1)^α = k^α.
"""

from __future__ import annotations

import numpy as np

from agentgym.core import AgentGymError
from agentgym.trainers.estimators.common import (
    NORMS,
    Layout,
    Norm,
    anchor_codes,
    check_choice,
    combine,
    discounted_returns,
    episode_returns,
    estimator,
    group_stats,
    normalize,
)
from agentgym.trajectory import StepBatch

ZERO = 1e-9  # |a_k| at or below this counts as zero


@estimator()
def hgpo(
    steps: StepBatch,
    *,
    gamma: float = 0.95,
    K: int = 2,
    alpha: float = 1.0,
    norm: Norm = "std",
    base_group: bool = False,
    epsilon: float = 1e-6,
) -> np.ndarray:
    """(rows,) HGPO advantages A_t = Σ_k w_k a_k; see the module docstring."""
    check_choice("hgpo", "norm", norm, NORMS)
    if K < 0 or int(K) != K:
        raise AgentGymError(f"hgpo: K (memory length) must be a whole number >= 0; got {K!r}")
    layout = Layout.of(steps)
    n = len(steps)
    anchor, _ = anchor_codes(steps, "hgpo")

    def level(x: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """a_k of each element within its group of equal ``key``, and whether it is kept."""
        mean, std, size = group_stats(x, key, ddof=0)
        a = normalize(x, mean, std, norm, epsilon)
        return a, (size > 1) & (np.abs(a) > ZERO)

    weighted = np.zeros(n)  # (rows,) Σ w_k a_k over the levels kept
    weight = np.zeros(n)  # (rows,) Σ w_k over the levels kept
    if base_group:
        a, keep = level(episode_returns(steps.reward, layout), layout.traj_group)  # (trajs,)
        weighted += np.where(keep, a, 0.0)[layout.traj]
        weight += keep[layout.traj]  # w_0 = (0+1)^α = 1

    rows = layout.order  # work in (trajectory, t) order: step t-1 sits right before step t
    R_t = discounted_returns(steps.reward, layout, gamma)[rows]
    pos, s = layout.pos[rows], anchor[rows]
    history = layout.group[rows]  # level-k key: (group, s_t, s_(t-1), ..., s_(t-k+1))
    for k in range(1, int(K) + 2):
        has_k = pos >= k - 1  # the step has k anchors up to and including its own
        if not has_k.any():
            break
        back = np.zeros(n, dtype=np.int64)
        back[k - 1 :] = s[: n - k + 1] + 1  # s_(t-k+1), k-1 rows earlier; 0 marks "no such step"
        history = combine(history, np.where(has_k, back, 0))
        a, keep = level(R_t[has_k], history[has_k])
        kept = rows[has_k][keep]
        weighted[kept] += (k + 1) ** alpha * a[keep]
        weight[kept] += (k + 1) ** alpha
    return np.where(weight > 0, weighted / np.where(weight > 0, weight, 1.0), 0.0)
