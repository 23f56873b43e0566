"""Advantage estimators: pure numpy functions over a :class:`~agentgym.trajectory.StepBatch`, by name.

Example::

    from agentgym import StepBatch
    from agentgym.trainers import compute_advantages

    steps = StepBatch.from_records([
        {"group": 0, "traj": 0, "t": 0, "anchor": "s0", "action": "go", "reward": 0.0, "valid": True},
        {"group": 0, "traj": 0, "t": 1, "anchor": "s1", "action": "take", "reward": 1.0, "valid": True},
        {"group": 0, "traj": 1, "t": 0, "anchor": "s0", "action": "wait", "reward": 0.0, "valid": True},
    ])
    A = compute_advantages("gigpo", steps, gamma=0.95)   # (3,) float64, in row order

Built in: ``grpo``, ``rloo``, ``gigpo``, ``hgpo``, ``salt``, ``igpo`` (one module each, math in its
docstring). Other packages add estimators through the ``agentgym.estimators`` entry-point group, whose
hooks call :func:`register_estimator`. An estimator declares what the training loop must provide in
its ``requires`` attribute (see :class:`~agentgym.trainers.estimators.common.Estimator`), so the loop
never checks names.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import numpy as np

from agentgym.core import AgentGymError
from agentgym.plugins import Registry
from agentgym.trainers.estimators.common import Estimator, estimator
from agentgym.trajectory import StepBatch

#: name -> estimator function (or a lazy ``"module:function"`` reference)
ESTIMATORS: Registry[Estimator] = Registry(
    "advantage estimator",
    entry_point_group="agentgym.estimators",
    listing_hint=" Estimators come from agentgym.trainers.estimators and the agentgym.estimators entry points.",
)
for _name in ("grpo", "rloo", "gigpo", "hgpo", "salt", "igpo"):
    ESTIMATORS.register(_name, f"agentgym.trainers.estimators.{_name}:{_name}")


def register_estimator(name: str, implementation: Estimator | str, *, override: bool = False) -> None:
    """Registers ``implementation`` (a function or ``"module:function"``) under ``name``."""
    ESTIMATORS.register(name, implementation, override=override)


def get_estimator(name: str) -> Estimator:
    """The estimator registered as ``name``; one registered without ``@estimator`` requires nothing."""
    fn = ESTIMATORS.get(name)
    if not hasattr(fn, "requires"):
        fn.requires = ()
    return fn


def estimator_parameters(name: str) -> dict[str, Any]:
    """The keyword parameters of an estimator and their defaults, e.g. ``{"gamma": 0.95, ...}``."""
    parameters = list(inspect.signature(get_estimator(name)).parameters.values())[1:]
    return {p.name: p.default for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def compute_advantages(name: str, steps: StepBatch, **params: Any) -> np.ndarray:
    """(rows,) float64 advantages of the estimator ``name``, one per row of ``steps``, in row order.

    Rows may come in any order; a trajectory is the pair (group, traj) and estimators never mix rows
    of different groups. Unknown names and parameters fail with the accepted ones.
    """
    fn = get_estimator(name)
    accepted = estimator_parameters(name)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        hints = [f"{m[0]!r} for {u!r}" for u in unknown if (m := difflib.get_close_matches(u, accepted, n=1))]
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise AgentGymError(
            f"estimator {name!r} got unknown parameter(s) {', '.join(map(repr, unknown))}.{hint} "
            f"Accepted: {', '.join(f'{k}={v!r}' for k, v in accepted.items()) or 'none'}."
        )
    if len(steps) == 0:
        return np.zeros(0)
    bad = np.flatnonzero(~np.isfinite(steps.reward))
    if len(bad):
        row = int(bad[0])
        raise AgentGymError(
            f"reward of row {row} (group={steps.group[row]!r}, traj={steps.traj[row]!r}, t={steps.t[row]}) "
            f"is {steps.reward[row]}: rewards must be finite"
        )
    advantages = np.asarray(fn(steps, **params), dtype=np.float64)
    if advantages.shape != (len(steps),):
        raise AgentGymError(f"estimator {name!r} returned shape {advantages.shape}, expected ({len(steps)},)")
    return advantages


__all__ = [
    "ESTIMATORS",
    "Estimator",
    "compute_advantages",
    "estimator",
    "estimator_parameters",
    "get_estimator",
    "register_estimator",
]
