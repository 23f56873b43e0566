"""Policy losses on per-token log-probabilities (torch), and DAPO's dynamic sampling of task groups.

Example::

    from agentgym.trainers import PolicyLossConfig, policy_loss

    config = PolicyLossConfig(clip_ratio_high=0.28)  # clip-higher
    loss, metrics = policy_loss(log_probs, old_log_probs, advantages, mask, config,
                                ref_log_probs=ref_log_probs, entropy=entropy)
    loss.backward()

Shapes: per-token tensors are (B, T), B sequences (one per training row, i.e. one agent turn) of T
response tokens; ``mask`` is 1 on the tokens the policy generated and 0 on padding. ``advantages`` is
(B, T), or (B,) and then broadcast over each sequence's tokens.

Per token, with the ratio r = π_θ / π_old = exp(log π_θ - log π_old) (log-ratio clamped to ±20):

    l_clip = max(-A·r, -A·clip(r, 1 - ε_low, 1 + ε_high))      PPO (Schulman et al., arXiv:1707.06347)
    l      = min(l_clip, -A·c) where A < 0, else l_clip        dual clip (Ye et al., arXiv:1912.09729)

with ε_low = ε_high = 0.2 and c = 3; ε_high = 0.28 is DAPO's clip-higher (Yu et al., arXiv:2503.14476).
The KL to the reference policy is the k3 estimator (``"low_var_kl"``, Schulman's "Approximating KL
divergence" note) with d = log π_ref - log π_θ clamped to ±20 and the result to ±10, as verl does:

    kl = exp(d) - d - 1

The loss is  L = agg(l) + β_kl·agg(kl) - β_H·agg(H)  with β_kl = 0.01 (0: no reference model is needed)
and β_H = 0.001 (verl's default in the versions verl-agent builds on), H the policy's per-token entropy.
``agg`` is ``loss_agg_mode``:

    token-mean            Σ_bt m·x / Σ_bt m          every token weighs the same (DAPO; default)
    seq-mean-token-mean   mean_b (Σ_t m·x / Σ_t m)   every sequence weighs the same (GRPO paper)
    seq-mean-token-sum    mean_b Σ_t m·x             a sequence weighs by its length

A sequence without any unmasked token adds 0. Dynamic sampling (DAPO) drops the task groups whose episode
returns are all equal: their trajectories all get the same group-relative advantage and carry no signal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from agentgym.core import AgentGymError
from agentgym.trainers.estimators.common import Layout, episode_returns
from agentgym.trajectory import StepBatch

AggMode = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]
KLEstimator = Literal["low_var_kl", "kl", "mse"]


class PolicyLossConfig(BaseModel):
    """Settings of :func:`policy_loss`."""

    model_config = ConfigDict(extra="forbid")

    clip_ratio_low: float = Field(
        0.2, ge=0.0, lt=1.0, description="ε_low: the ratio is clipped below at 1 - ε_low"
    )
    clip_ratio_high: float = Field(
        0.2,
        ge=0.0,
        description="ε_high: the ratio is clipped above at 1 + ε_high; 0.28 is DAPO's clip-higher",
    )
    clip_ratio_c: float = Field(
        3.0,
        gt=1.0,
        description="dual clip: a negative-advantage token's loss is at most -A·c (Ye et al. 2020)",
    )
    kl_coef: float = Field(
        0.01,
        ge=0.0,
        description="β_kl of the KL to the reference policy; 0 means no reference model is loaded",
    )
    kl_estimator: KLEstimator = Field(
        "low_var_kl", description="low_var_kl (k3, clamped), kl (k1: log π_θ - log π_ref) or mse (k2: ½ d²)"
    )
    entropy_coef: float = Field(0.001, ge=0.0, description="β_H of the entropy bonus; 0 turns it off")
    loss_agg_mode: AggMode = Field(
        "token-mean",
        description="how token losses become one number: token-mean, seq-mean-token-mean, seq-mean-token-sum",
    )


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1.0)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def aggregate(x: torch.Tensor, mask: torch.Tensor, mode: AggMode = "token-mean") -> torch.Tensor:
    """The scalar of a (B, T) token quantity under ``loss_agg_mode`` (see the module docstring)."""
    mask = mask.to(x.dtype)
    if mode == "token-mean":
        return _masked_mean(x, mask)
    if mode == "seq-mean-token-mean":
        return _masked_mean(x, mask, dim=-1).mean()
    if mode == "seq-mean-token-sum":
        return (x * mask).sum(-1).mean()
    raise AgentGymError(
        f"loss_agg_mode must be token-mean, seq-mean-token-mean or seq-mean-token-sum; got {mode!r}"
    )


def _k1(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    return log_probs - ref_log_probs


def _k2(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    return 0.5 * (log_probs - ref_log_probs).square()


def _k3(log_probs: torch.Tensor, ref_log_probs: torch.Tensor) -> torch.Tensor:
    d = (ref_log_probs - log_probs).clamp(-20.0, 20.0)  # keeps exp(d) finite
    return (d.exp() - d - 1.0).clamp(-10.0, 10.0)


_KL: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "kl": _k1,
    "mse": _k2,
    "low_var_kl": _k3,
}


def kl_penalty(
    log_probs: torch.Tensor, ref_log_probs: torch.Tensor, estimator: KLEstimator = "low_var_kl"
) -> torch.Tensor:
    """(B, T) per-token estimate of KL(π_θ || π_ref) from the sampled tokens' log-probabilities."""
    if estimator not in _KL:
        raise AgentGymError(f"kl_estimator must be one of {', '.join(_KL)}; got {estimator!r}")
    return _KL[estimator](log_probs, ref_log_probs)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, T) entropy H = logsumexp(z) - Σ softmax(z)·z of the policy from (B, T, V) logits."""
    return torch.logsumexp(logits, dim=-1) - (torch.softmax(logits, dim=-1) * logits).sum(-1)


def policy_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: PolicyLossConfig | None = None,
    *,
    ref_log_probs: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO-clip loss with dual clip, KL to the reference and entropy bonus, and its metrics.

    Metrics (detached 0-d tensors, so that logging decides when to synchronise a GPU): ``loss``,
    ``pg_loss``, ``clipfrac`` (tokens where the ε clip is active), ``clipfrac_lower`` (tokens where the
    dual clip is active), ``approx_kl`` (k3 estimate of KL(π_old || π_θ), masked token mean), plus
    ``kl`` and ``entropy`` (the aggregated terms) when ``ref_log_probs`` / ``entropy`` are given.
    """
    config = config or PolicyLossConfig()
    mask = mask.to(log_probs.dtype)
    A = advantages.to(log_probs.dtype)
    if A.dim() == log_probs.dim() - 1:
        A = A.unsqueeze(-1)  # (B,) -> (B, 1), broadcast over tokens

    log_ratio = (log_probs - old_log_probs).clamp(-20.0, 20.0)
    ratio = log_ratio.exp()
    l1 = -A * ratio
    l2 = -A * ratio.clamp(1.0 - config.clip_ratio_low, 1.0 + config.clip_ratio_high)
    l_clip = torch.maximum(l1, l2)
    l3 = -A * config.clip_ratio_c
    l = torch.where(A < 0, torch.minimum(l_clip, l3), l_clip)  # noqa: E741 - the paper's per-token loss

    pg_loss = aggregate(l, mask, config.loss_agg_mode)
    loss = pg_loss
    with torch.no_grad():
        metrics = {
            "pg_loss": pg_loss.detach(),
            "clipfrac": _masked_mean((l2 > l1).to(mask.dtype), mask),
            "clipfrac_lower": _masked_mean(((l_clip > l3) & (A < 0)).to(mask.dtype), mask),
            "approx_kl": _masked_mean(ratio - 1.0 - log_ratio, mask),
        }

    if config.kl_coef > 0 and ref_log_probs is None:
        raise AgentGymError(
            f"kl_coef={config.kl_coef} needs ref_log_probs (the reference policy's log-probabilities); "
            "set kl_coef=0 to train without a reference model"
        )
    if ref_log_probs is not None:
        kl = aggregate(kl_penalty(log_probs, ref_log_probs, config.kl_estimator), mask, config.loss_agg_mode)
        loss = loss + config.kl_coef * kl
        metrics["kl"] = kl.detach()

    if config.entropy_coef > 0 and entropy is None:
        raise AgentGymError(
            f"entropy_coef={config.entropy_coef} needs the per-token entropy (see entropy_from_logits); "
            "set entropy_coef=0 to train without the entropy bonus"
        )
    if entropy is not None:
        H = aggregate(entropy, mask, config.loss_agg_mode)
        loss = loss - config.entropy_coef * H
        metrics["entropy"] = H.detach()

    metrics["loss"] = loss.detach()
    return loss, metrics


_EQUAL_RETURNS_RTOL = 1e-9  # ≫ the n·2⁻⁵³ relative error of a sum of n rewards, ≪ any real difference


def dynamic_sampling_mask(steps: StepBatch) -> np.ndarray:
    """(rows,) True for the rows of task groups whose episode returns R(τ) = Σ_t r_t are not all equal.

    Equal means equal up to the rounding of the sums: returns are kept apart only by more than
    ``1e-9 · max Σ_t |r_t|`` over the group (0.1 + 0.2 and 0.3 are equal; 1e-12 and 2e-12 are not), as
    the same rewards summed in another order can differ in the last bits, and such a group's advantages
    are ~1e-11, not a signal. A group of one trajectory counts as all equal. Keep the informative rows
    with ``steps.select(mask)``.
    """
    if len(steps) == 0:
        return np.zeros(0, dtype=bool)
    layout = Layout.of(steps)
    R = episode_returns(steps.reward, layout)  # (trajs,)
    scale = episode_returns(np.abs(steps.reward), layout)  # Σ_t |r_t| bounds the rounding error of R
    groups = int(layout.traj_group.max()) + 1
    high, low, magnitude = np.full(groups, -np.inf), np.full(groups, np.inf), np.zeros(groups)
    np.maximum.at(high, layout.traj_group, R)
    np.minimum.at(low, layout.traj_group, R)
    np.maximum.at(magnitude, layout.traj_group, scale)
    informative = high - low > _EQUAL_RETURNS_RTOL * magnitude
    return informative[layout.traj_group][layout.traj]
