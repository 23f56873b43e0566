"""Policy loss, KL estimators, aggregation modes and dynamic sampling against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from agentgym.core import AgentGymError
from agentgym.trainers import (
    PolicyLossConfig,
    aggregate,
    dynamic_sampling_mask,
    entropy_from_logits,
    kl_penalty,
    policy_loss,
)
from agentgym.trajectory import StepBatch

NO_EXTRAS = PolicyLossConfig(kl_coef=0.0, entropy_coef=0.0)

# Six tokens, one per case, with π_old = 1 so that r = π_θ:
#   r    A     -A·r   -A·clip(r, 0.8, 1.2)  PPO max  dual clip (A < 0: min with -A·3)
#   1.5  +1    -1.5   -1.2                  -1.2     (clipped above)
#   0.5  +1    -0.5   -0.8                  -0.5
#   1.5  -1     1.5    1.2                   1.5     1.5
#   4.0  -1     4.0    1.2                   4.0     3.0 (dual clip)
#   0.5  -1     0.5    0.8                   0.8     0.8 (clipped below)
#   1.0  +2    -2.0   -2.0                  -2.0
RATIOS = [1.5, 0.5, 1.5, 4.0, 0.5, 1.0]
ADVANTAGES = [1.0, 1.0, -1.0, -1.0, -1.0, 2.0]
TOKEN_LOSSES = [-1.2, -0.5, 1.5, 3.0, 0.8, -2.0]


def tokens(ratios=RATIOS, advantages=ADVANTAGES):
    log_probs = torch.tensor([[math.log(r) for r in ratios]], dtype=torch.float64, requires_grad=True)
    old = torch.zeros_like(log_probs)
    return log_probs, old, torch.tensor([advantages], dtype=torch.float64), torch.ones_like(old)


def test_ppo_clip_with_dual_clip():
    loss, metrics = policy_loss(*tokens(), NO_EXTRAS)
    assert loss.item() == pytest.approx(sum(TOKEN_LOSSES) / 6)  # 1.6 / 6 = 0.26667
    assert metrics["clipfrac"].item() == pytest.approx(2 / 6)  # tokens 1 and 5
    assert metrics["clipfrac_lower"].item() == pytest.approx(1 / 6)  # token 4
    # k3 of KL(π_old || π_θ): mean of r - 1 - log r = (0.0945 + 0.1931 + 0.0945 + 1.6137 + 0.1931 + 0) / 6
    assert metrics["approx_kl"].item() == pytest.approx(sum(r - 1 - math.log(r) for r in RATIOS) / 6)
    assert metrics["pg_loss"].item() == pytest.approx(loss.item())


def test_clipped_tokens_get_no_gradient():
    log_probs, old, A, mask = tokens()
    loss, _ = policy_loss(log_probs, old, A, mask, NO_EXTRAS)
    loss.backward()
    # d(-A·r)/d log π = -A·r where unclipped; 0 where a clip is active (tokens 1, 4, 5)
    expected = [0.0, -0.5, 1.5, 0.0, 0.0, -2.0]
    np.testing.assert_allclose(log_probs.grad.numpy()[0], np.array(expected) / 6)


def test_clip_higher_and_dual_clip_bound():
    # ε_high = 0.28: token 1 becomes -1.28 -> (1.6 - 0.08) / 6
    loss, _ = policy_loss(*tokens(), NO_EXTRAS.model_copy(update={"clip_ratio_high": 0.28}))
    assert loss.item() == pytest.approx(1.52 / 6)
    # c = 10: token 4 keeps 4.0 -> (1.6 + 1) / 6
    loss, metrics = policy_loss(*tokens(), NO_EXTRAS.model_copy(update={"clip_ratio_c": 10.0}))
    assert loss.item() == pytest.approx(2.6 / 6)
    assert metrics["clipfrac_lower"].item() == 0.0


def test_aggregation_modes():
    # sequence 1: tokens 1-3 (losses -1.2, -0.5, 1.5); sequence 2: tokens 4-5 (3.0, 0.8) and a padded token
    log_probs = torch.log(torch.tensor([[1.5, 0.5, 1.5], [4.0, 0.5, 9.0]], dtype=torch.float64))
    A = torch.tensor([[1.0, 1.0, -1.0], [-1.0, -1.0, 100.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    old = torch.zeros_like(log_probs)
    expected = {
        "token-mean": 3.6 / 5,  # (-1.2 - 0.5 + 1.5 + 3 + 0.8) / 5 = 0.72
        "seq-mean-token-mean": (-0.2 / 3 + 3.8 / 2) / 2,  # 0.91667
        "seq-mean-token-sum": (-0.2 + 3.8) / 2,  # 1.8
    }
    for mode, value in expected.items():
        loss, _ = policy_loss(log_probs, old, A, mask, NO_EXTRAS.model_copy(update={"loss_agg_mode": mode}))
        assert loss.item() == pytest.approx(value), mode


def test_sequence_advantages_broadcast_over_tokens():
    log_probs = torch.log(torch.tensor([[1.5, 0.5], [4.0, 0.5]], dtype=torch.float64))
    old, mask = torch.zeros_like(log_probs), torch.ones_like(log_probs)
    per_sequence, _ = policy_loss(log_probs, old, torch.tensor([1.0, -1.0]), mask, NO_EXTRAS)
    per_token, _ = policy_loss(log_probs, old, torch.tensor([[1.0, 1.0], [-1.0, -1.0]]), mask, NO_EXTRAS)
    assert per_sequence.item() == pytest.approx(per_token.item())


def test_kl_estimators():
    log_probs, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    # d = log π_ref - log π_θ = -log 2: k3 = e^d - d - 1 = 0.5 + 0.6931 - 1 = 0.1931
    assert kl_penalty(log_probs, ref).item() == pytest.approx(0.5 + math.log(2) - 1)
    assert kl_penalty(log_probs, ref, "kl").item() == pytest.approx(math.log(2))  # k1 = 0.6931
    assert kl_penalty(log_probs, ref, "mse").item() == pytest.approx(0.5 * math.log(2) ** 2)  # k2 = 0.2402
    # far apart: d is clamped to ±20 and k3 to 10
    assert kl_penalty(torch.tensor([-30.0]), torch.tensor([0.0])).item() == 10.0
    assert kl_penalty(torch.tensor([0.0]), torch.tensor([-30.0])).item() == 10.0
    with pytest.raises(AgentGymError, match="kl_estimator"):
        kl_penalty(log_probs, ref, "k4")


def test_full_loss_adds_kl_and_subtracts_the_entropy_bonus():
    log_probs, old, A, mask = tokens()
    ref = log_probs.detach() + math.log(2)  # d = log 2 on every token: k3 = 2 - log 2 - 1 = 0.3069
    entropy = torch.full_like(old, 1.5)
    loss, metrics = policy_loss(log_probs, old, A, mask, ref_log_probs=ref, entropy=entropy)
    kl = 2 - math.log(2) - 1
    assert metrics["kl"].item() == pytest.approx(kl)
    assert metrics["entropy"].item() == pytest.approx(1.5)
    assert loss.item() == pytest.approx(1.6 / 6 + 0.01 * kl - 0.001 * 1.5)
    assert metrics["loss"].item() == pytest.approx(loss.item())


def test_missing_inputs_are_explained():
    with pytest.raises(AgentGymError, match="set kl_coef=0 to train without a reference model"):
        policy_loss(*tokens(), PolicyLossConfig(entropy_coef=0.0))
    with pytest.raises(AgentGymError, match="set entropy_coef=0"):
        policy_loss(*tokens(), PolicyLossConfig(kl_coef=0.0))
    _, metrics = policy_loss(*tokens(), NO_EXTRAS)
    assert "kl" not in metrics and "entropy" not in metrics


def test_config_is_validated():
    with pytest.raises(ValidationError):
        PolicyLossConfig(clip_ratio_c=1.0)
    with pytest.raises(ValidationError):
        PolicyLossConfig(loss_agg_mode="sum")
    with pytest.raises(ValidationError):
        PolicyLossConfig(clip_ratio=0.2)  # a typo of clip_ratio_low / clip_ratio_high


def test_aggregate_ignores_empty_sequences():
    x = torch.tensor([[2.0, 4.0], [7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert aggregate(x, mask, "seq-mean-token-mean").item() == pytest.approx((3.0 + 0.0) / 2)


def test_entropy_from_logits():
    uniform = torch.zeros(1, 2, 4)
    np.testing.assert_allclose(entropy_from_logits(uniform).numpy(), math.log(4), rtol=1e-6)
    peaked = torch.tensor([[[100.0, 0.0, 0.0]]])
    assert entropy_from_logits(peaked).item() == pytest.approx(0.0, abs=1e-6)


def test_dynamic_sampling_keeps_groups_whose_returns_differ():
    # "a": returns 1 and 0 -> kept;  "b": 1 and 0.5 + 0.5 -> all equal, dropped;  "c": a single trajectory
    records = [
        {"group": "a", "traj": 0, "t": 0, "reward": 1.0},
        {"group": "b", "traj": 0, "t": 0, "reward": 1.0},
        {"group": "a", "traj": 1, "t": 0, "reward": 0.0},
        {"group": "b", "traj": 1, "t": 0, "reward": 0.5},
        {"group": "b", "traj": 1, "t": 1, "reward": 0.5},
        {"group": "c", "traj": 0, "t": 0, "reward": 1.0},
    ]
    steps = StepBatch.from_records(records)
    mask = dynamic_sampling_mask(steps)
    np.testing.assert_array_equal(mask, [True, False, True, False, False, False])
    assert list(steps.select(mask).group) == ["a", "a"]


def test_dynamic_sampling_takes_returns_equal_up_to_rounding_as_equal():
    # "a": 0.1 + 0.2 = 0.30000000000000004 against 0.3, and "b": 0.1 + 0.2 + 0.3 = 0.6000000000000001
    # against 0.3 + 0.2 + 0.1 = 0.6: equal returns, summed in another order; they get advantages of
    # ~1e-11 and only dilute the token mean, so they go. "c": 1e-12 against 2e-12 is a real difference.
    records = [
        {"group": "a", "traj": 0, "t": 0, "reward": 0.1},
        {"group": "a", "traj": 0, "t": 1, "reward": 0.2},
        {"group": "a", "traj": 1, "t": 0, "reward": 0.3},
        *({"group": "b", "traj": 0, "t": t, "reward": r} for t, r in enumerate([0.1, 0.2, 0.3])),
        *({"group": "b", "traj": 1, "t": t, "reward": r} for t, r in enumerate([0.3, 0.2, 0.1])),
        {"group": "c", "traj": 0, "t": 0, "reward": 1e-12},
        {"group": "c", "traj": 1, "t": 0, "reward": 2e-12},
    ]
    mask = dynamic_sampling_mask(StepBatch.from_records(records))
    np.testing.assert_array_equal(mask, [False] * 9 + [True, True])
