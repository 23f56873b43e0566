"""Advantage estimators, policy losses and the SFT / RL training loops.

Example::

    from agentgym import StepBatch
    from agentgym.trainers import compute_advantages

    A = compute_advantages("gigpo", StepBatch.from_records(records), gamma=0.95, invalid_penalty=0.1)

Estimators are numpy only; the losses and the trainer (torch) load on first use, so computing
advantages never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from agentgym.trainers.estimators import (
    ESTIMATORS,
    Estimator,
    check_parameters,
    compute_advantages,
    estimator,
    estimator_parameters,
    get_estimator,
    register_estimator,
)

# Loaded on first use, so that computing advantages never imports torch: name -> module.
_LAZY = {
    **dict.fromkeys(
        (
            "PolicyLossConfig",
            "aggregate",
            "dynamic_sampling_mask",
            "entropy_from_logits",
            "kl_penalty",
            "policy_loss",
        ),
        "agentgym.trainers.losses",
    ),
    "TrainConfig": "agentgym.trainers.config",
    "Trainer": "agentgym.trainers.rl",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agentgym.trainers' has no attribute {name!r}")


__all__ = [
    "ESTIMATORS",
    "Estimator",
    "check_parameters",
    "compute_advantages",
    "estimator",
    "estimator_parameters",
    "get_estimator",
    "register_estimator",
    *_LAZY,
]
