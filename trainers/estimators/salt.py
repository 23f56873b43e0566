"""SALT: step-level advantages from a trajectory graph; steps on a shared edge share their advantage.

Li et al., "SALT: Step-level Advantage Assignment for Long-horizon Agents via Trajectory Graph"
(arXiv:2510.20022).

Per task group, the trajectories are merged into a graph whose edges are transitions (s, a): the state
anchor a step acted in and its normalised action (case-folded, whitespace collapsed). First every
trajectory gets its outcome advantage A(τ) from ``base``: ``"grpo"`` (default; episode return normalised
by the group's mean and unbiased std, see ``grpo``) or ``"rloo"`` (leave-one-out, see ``rloo``). Then a
step on edge e gets

    A_t = mean of A(τ) over all step occurrences on e   (a trajectory that loops over e counts each time)

so a step shared by winners and losers moves toward 0 while a step only winners (or only losers) took
keeps its sign. ``merge`` decides when two steps share an edge:

* ``"edge"`` (default): same (anchor, action) anywhere in the group's trajectories, at any step: the
  graph merges states that different paths reach.
* ``"prefix"``: same (anchor, action) *and* the same sequence of (anchor, action) before it in the
  trajectory: the graph is a prefix tree, steps merge only until the trajectories first diverge.

A trajectory alone on all of its edges keeps its base advantage, so with one trajectory per edge SALT
equals its base estimator.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from agentgym.trainers.estimators.common import (
    NORMS,
    Layout,
    Norm,
    anchor_codes,
    check_choice,
    combine,
    episode_returns,
    estimator,
    factorize,
)
from agentgym.trainers.estimators.grpo import episode_advantage
from agentgym.trainers.estimators.rloo import leave_one_out_advantage
from agentgym.trajectory import StepBatch


def normalize_action(action: object) -> str:
    """The action text case-folded with runs of whitespace collapsed: ``" Go  North"`` -> ``"go north"``."""
    return " ".join(str(action).casefold().split())


@estimator()
def salt(
    steps: StepBatch,
    *,
    base: Literal["grpo", "rloo"] = "grpo",
    merge: Literal["edge", "prefix"] = "edge",
    norm: Norm = "std",
    epsilon: float = 1e-6,
) -> np.ndarray:
    """(rows,) SALT advantages; ``norm`` and ``epsilon`` apply to the GRPO base."""
    check_choice("salt", "base", base, ("grpo", "rloo"))
    check_choice("salt", "merge", merge, ("edge", "prefix"))
    check_choice("salt", "norm", norm, NORMS)
    layout = Layout.of(steps)
    R = episode_returns(steps.reward, layout)  # (trajs,)
    if base == "grpo":
        A_traj = episode_advantage(R, layout.traj_group, norm, epsilon)
    else:
        A_traj = leave_one_out_advantage(R, layout.traj_group)

    anchor, _ = anchor_codes(steps, "salt")
    raw_action, actions = factorize(steps.action.tolist())
    action = factorize([normalize_action(a) for a in actions])[0][raw_action]  # normalise each text once
    edge = combine(layout.group, anchor, action)
    if merge == "prefix":
        edge = _prefix_nodes(edge, layout)

    A = A_traj[layout.traj]  # (rows,)
    occurrences = np.bincount(edge)  # (edges,) zero for codes no row uses
    return (np.bincount(edge, A) / np.maximum(occurrences, 1))[edge]


def _prefix_nodes(edge: np.ndarray, layout: Layout) -> np.ndarray:
    """(rows,) node of the prefix tree: equal iff the (group, anchor, action) sequences up to the row are.

    Built one step place at a time (not one row at a time): node_t = (node_(t-1), edge_t).
    """
    rows = layout.order
    node = edge[rows]  # (rows,) in (trajectory, t) order; place 0 is its own edge
    offset = int(edge.max(initial=-1)) + 1  # codes of deeper places start after those already used
    for at_p in layout.rows_by_place()[1:]:
        local = combine(node[at_p - 1], edge[rows[at_p]])  # the parent node sits right before
        node[at_p] = offset + local
        offset += int(local.max(initial=-1)) + 1
    out = np.empty(len(rows), dtype=np.int64)
    out[rows] = node
    return out
