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


def _check_names(name: str, params: dict[str, Any]) -> None:
    """Fails, with the accepted names, on parameters that estimator ``name`` does not take (any name
    passes when it takes ``**kwargs``)."""
    accepted = estimator_parameters(name)
    signature = inspect.signature(get_estimator(name))
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        hints = [f"{m[0]!r} for {u!r}" for u in unknown if (m := difflib.get_close_matches(u, accepted, n=1))]
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise AgentGymError(
            f"estimator {name!r} got unknown parameter(s) {', '.join(map(repr, unknown))}.{hint} "
            f"Accepted: {', '.join(f'{k}={v!r}' for k, v in accepted.items()) or 'none'}."
        )


def _check_batch() -> StepBatch:
    """Two task groups of two-step trajectories that share anchors, with an invalid step: enough for
    every built-in estimator to use each of its parameters. The group returns {0, 1, 2} (unbiased
    std 1) and {0, 2} (population std 1) make ``epsilon=-1`` divide by zero whichever std is used."""
    records = [
        {"group": g, "traj": i, "t": t, "anchor": f"s{t}", "action": f"a{i}", "reward": r if t else 0.0}
        for g, returns in enumerate(((0.0, 1.0, 2.0), (0.0, 2.0)))
        for i, r in enumerate(returns)
        for t in range(2)
    ]
    records[0]["valid"] = False
    return StepBatch.from_records(records)


def _failure(name: str, params: dict[str, Any]) -> Exception | None:
    try:
        compute_advantages(name, _check_batch(), **params)
    except Exception as error:  # whatever the estimator raises is the answer
        return error
    return None


def check_parameters(name: str, params: dict[str, Any]) -> None:
    """Fails early, naming the culprit, on parameters that estimator ``name`` does not take or cannot
    run with: it runs once on a small synthetic batch. A value that this batch cannot judge passes,
    and so does everything for an estimator that does not run on it even with its defaults (a plugin
    that needs more columns); :func:`compute_advantages` still checks its output during training."""
    _check_names(name, params)
    error = _failure(name, params) if params else None
    if error is None or _failure(name, {}) is not None:
        return
    culprits = [key for key in params if _failure(name, {key: params[key]}) is not None] or list(params)
    values = ", ".join(f"{key}={params[key]!r}" for key in culprits)
    raise AgentGymError(f"estimator {name!r} cannot run with {values}: {error}")


def compute_advantages(name: str, steps: StepBatch, **params: Any) -> np.ndarray:
    """(rows,) float64 advantages of the estimator ``name``, one per row of ``steps``, in row order.

    Rows may come in any order; a trajectory is the pair (group, traj) and estimators never mix rows
    of different groups. Unknown names and parameters fail with the accepted ones, and so does output
    that is not finite (e.g. a negative ``epsilon`` dividing by zero).
    """
    fn = get_estimator(name)
    _check_names(name, params)
    if len(steps) == 0:
        return np.zeros(0)
    bad = np.flatnonzero(~np.isfinite(steps.reward))
    if len(bad):
        row = int(bad[0])
        raise AgentGymError(
            f"reward of row {row} (group={steps.group[row]!r}, traj={steps.traj[row]!r}, t={steps.t[row]}) "
            f"is {steps.reward[row]}: rewards must be finite"
        )
    with np.errstate(divide="ignore", invalid="ignore"):  # non-finite output fails below, more clearly
        advantages = np.asarray(fn(steps, **params), dtype=np.float64)
    if advantages.shape != (len(steps),):
        raise AgentGymError(f"estimator {name!r} returned shape {advantages.shape}, expected ({len(steps)},)")
    bad = np.flatnonzero(~np.isfinite(advantages))
    if len(bad):
        row = int(bad[0])
        raise AgentGymError(
            f"estimator {name!r} returned {advantages[row]} for row {row} (group={steps.group[row]!r}, "
            f"traj={steps.traj[row]!r}, t={steps.t[row]}) with parameters {params}: advantages must be finite"
        )
    return advantages


__all__ = [
    "ESTIMATORS",
    "Estimator",
    "check_parameters",
    "compute_advantages",
    "estimator",
    "estimator_parameters",
    "get_estimator",
    "register_estimator",
]
