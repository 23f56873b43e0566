"""Shared pieces of the advantage estimators: the trajectory layout of a batch, grouped statistics and
discounted returns, all vectorised with numpy.

Rows of a :class:`~agentgym.trajectory.StepBatch` may come in any order. :class:`Layout` sorts them once
by (trajectory, t): a trajectory is the pair (group, traj), its steps are ordered by ``t``, and ``pos``
is a row's place inside its trajectory (0 for its first step in the batch). Discounting counts those
places, so the steps of a trajectory are taken to be consecutive. Estimators then work on integer codes
(group, trajectory, anchor, ...) and never loop over rows in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from agentgym.core import AgentGymError
from agentgym.trajectory import StepBatch

Norm = Literal["std", "mean"]
NORMS: tuple[str, ...] = ("std", "mean")


class Estimator(Protocol):
    """An advantage estimator: ``fn(steps, **params) -> (rows,) float64``, one value per row in row order.

    ``requires`` names the :class:`StepBatch` columns the training loop must fill before the call beyond
    the ones every rollout has (group, traj, t, anchor, action, reward, valid); e.g. IGPO declares
    ``("info_gain", "outcome")`` so that the loop probes the policy for information gain.
    """

    requires: tuple[str, ...]

    def __call__(self, steps: StepBatch, **params: Any) -> np.ndarray: ...


F = TypeVar("F", bound=Callable[..., np.ndarray])
_COLUMNS = {f.name for f in fields(StepBatch) if not f.name.startswith("_")}


def estimator(*, requires: Sequence[str] = ()) -> Callable[[F], F]:
    """Marks a function as an advantage estimator and declares the columns it needs (see :class:`Estimator`)."""
    unknown = sorted(set(requires) - _COLUMNS)
    if unknown:
        raise AgentGymError(
            f"requires names unknown StepBatch column(s) {unknown}; columns: {sorted(_COLUMNS)}"
        )

    def mark(fn: F) -> F:
        fn.requires = tuple(requires)  # type: ignore[attr-defined]
        return fn

    return mark


def check_choice(estimator_name: str, parameter: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        accepted = ", ".join(repr(choice) for choice in choices)
        raise AgentGymError(f"{estimator_name}: {parameter} must be one of {accepted}; got {value!r}")


def factorize(values: Sequence[Hashable]) -> tuple[np.ndarray, list[Hashable]]:
    """(n,) int64 codes of ``values`` in order of first appearance, and the distinct values."""
    distinct = list(dict.fromkeys(values))  # one pass that hashes every value, at C speed
    code = {value: i for i, value in enumerate(distinct)}
    return np.fromiter(map(code.__getitem__, values), dtype=np.int64, count=len(values)), distinct


def combine(*codes: np.ndarray) -> np.ndarray:
    """Compact int64 codes of the tuples ``(codes[0][i], codes[1][i], ...)``: equal tuples, equal codes."""
    key = np.unique(codes[0], return_inverse=True)[1]
    for other in codes[1:]:
        key = key * (int(other.max(initial=0)) + 1) + other
        key = np.unique(key, return_inverse=True)[1]  # re-compact so that the next product cannot overflow
    return key.astype(np.int64, copy=False)


def group_stats(x: np.ndarray, codes: np.ndarray, ddof: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation (``ddof`` 0: population, 1: unbiased) and size of the group of equal
    ``codes`` each element belongs to, returned per element.

    The mean is taken around one member of the group, so a group of equal values has exactly that value
    as mean and exactly 0 as std: a plain sum / n can be one ulp off and would turn "all returns equal"
    into tiny non-zero advantages. The std of a group of one is 0 for either ``ddof``.
    """
    n = int(codes.max(initial=-1)) + 1
    size = np.bincount(codes, minlength=n)
    anchor = np.zeros(n)
    anchor[codes] = x  # any member will do
    mean = anchor + np.bincount(codes, x - anchor[codes], minlength=n) / np.maximum(size, 1)
    deviation = x - mean[codes]
    var = np.bincount(codes, deviation * deviation, minlength=n) / np.maximum(size - ddof, 1)
    return mean[codes], np.sqrt(var)[codes], size[codes]


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray, norm: str, epsilon: float) -> np.ndarray:
    """(x - mean) / (std + epsilon) for ``norm="std"``, x - mean for ``norm="mean"``."""
    return x - mean if norm == "mean" else (x - mean) / (std + epsilon)


@dataclass(frozen=True)
class Layout:
    """Where each row of a batch sits. Arrays indexed by row follow the batch's row order."""

    group: np.ndarray  # (rows,) group code, by first appearance
    traj: np.ndarray  # (rows,) trajectory code, one per (group, traj) pair, grouped by group
    pos: np.ndarray  # (rows,) place of the row inside its trajectory, 0 = first step
    order: np.ndarray  # (rows,) row indices sorted by (trajectory, t): each trajectory is contiguous
    length: np.ndarray  # (trajs,) rows per trajectory
    traj_group: np.ndarray  # (trajs,) group code of each trajectory

    @classmethod
    def of(cls, steps: StepBatch) -> Layout:
        group = steps.group_index()
        # the (group, traj) pairs as integers: much faster than hashing tuples row by row
        traj = combine(group, factorize(steps.traj.tolist())[0])
        order = np.lexsort((steps.t, traj))
        traj_sorted, t_sorted = traj[order], steps.t[order]
        duplicate = (traj_sorted[1:] == traj_sorted[:-1]) & (t_sorted[1:] == t_sorted[:-1])
        if duplicate.any():
            row = order[1:][duplicate][0]
            raise AgentGymError(
                f"two rows share group={steps.group[row]!r}, traj={steps.traj[row]!r}, t={steps.t[row]}: "
                "each step of a trajectory must appear once"
            )
        length = np.bincount(traj, minlength=int(traj.max(initial=-1)) + 1)
        start = np.cumsum(length) - length  # sorted position of each trajectory's first row
        pos = np.empty(len(traj), dtype=np.int64)
        pos[order] = np.arange(len(traj)) - start[traj_sorted]
        traj_group = np.zeros(len(length), dtype=np.int64)
        traj_group[traj] = group
        return cls(group=group, traj=traj, pos=pos, order=order, length=length, traj_group=traj_group)

    def rows_by_place(self) -> list[np.ndarray]:
        """For each step place p = 0, 1, ...: the positions, in (trajectory, t) order, of the rows at p."""
        pos_sorted = self.pos[self.order]
        by_place = np.argsort(pos_sorted, kind="stable")
        bounds = np.searchsorted(pos_sorted[by_place], np.arange(int(pos_sorted.max(initial=-1)) + 2))
        return [by_place[bounds[p] : bounds[p + 1]] for p in range(len(bounds) - 1)]

    @property
    def is_last(self) -> np.ndarray:
        """(rows,) whether the row is the last step of its trajectory in the batch."""
        return self.pos == self.length[self.traj] - 1


def episode_returns(reward: np.ndarray, layout: Layout) -> np.ndarray:
    """(trajs,) R(τ) = Σ_t r_t, undiscounted."""
    return np.bincount(layout.traj, weights=reward, minlength=len(layout.length))


def discounted_returns(reward: np.ndarray, layout: Layout, gamma: float) -> np.ndarray:
    """(rows,) R_t = Σ_{k≥t} γ^(k-t) r_k inside each trajectory.

    A backward sweep over step places: one vectorised update per place (≈ the longest trajectory), not
    one per row. A trajectory that was cut off (its last step not terminal) is not bootstrapped.
    """
    n = len(reward)
    R = np.asarray(reward, dtype=np.float64)[layout.order]  # (rows,) in (trajectory, t) order
    traj_sorted = layout.traj[layout.order]
    has_next = np.zeros(n, dtype=bool)
    has_next[:-1] = traj_sorted[1:] == traj_sorted[:-1]
    for rows in reversed(layout.rows_by_place()):
        rows = rows[has_next[rows]]
        R[rows] += gamma * R[rows + 1]  # the next step of a trajectory sits right after it
    returns = np.empty(n)
    returns[layout.order] = R
    return returns


def anchor_codes(steps: StepBatch, estimator_name: str) -> tuple[np.ndarray, list[Hashable]]:
    """(rows,) codes of the ``anchor`` column and the distinct anchors; a missing anchor is an error
    because grouping every anchor-less step together would compare unrelated states."""
    codes, anchors = factorize(steps.anchor.tolist())
    if None in anchors:
        row = int(np.flatnonzero(codes == anchors.index(None))[0])
        raise AgentGymError(
            f"{estimator_name} groups steps by their anchor (the environment state), but row {row} "
            f"(group={steps.group[row]!r}, traj={steps.traj[row]!r}, t={steps.t[row]}) has none: "
            "record info['anchor'] or the observation as the step's anchor"
        )
    return codes, anchors
