import numpy as np
import pytest
import torch

from agentgym.trainers.config import PPOSettings
from agentgym.trainers.data import TurnRows, current_log_probs, response_log_probs
from agentgym.trainers.losses import PolicyLossConfig
from agentgym.trainers.models import load_model
from agentgym.trainers.ppo import ppo_update


def _response_logprob(model, rows, row):
    batch, _ = rows.micro_batch([row], pad_id=0)
    with torch.no_grad():
        log_probs, _ = response_log_probs(model, batch)
    return float((log_probs * batch.response_mask).sum())


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_positive_advantage_raises_and_negative_lowers_a_response(tiny_model_dir, agg):
    torch.manual_seed(0)
    model, _ = load_model(str(tiny_model_dir), device="cpu")
    rows = TurnRows([[5, 6, 7, 8], [5, 6, 7, 8]], [[20, 21, 22], [30, 31]])
    before = [_response_logprob(model, rows, i) for i in range(2)]
    settings = PPOSettings(
        epochs=4,
        mini_batches=1,
        micro_batch_tokens=6,
        loss=PolicyLossConfig(kl_coef=0, entropy_coef=0, loss_agg_mode=agg),
    )  # a 6-token budget puts each row in its own micro-batch: the weights must add up
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    metrics = ppo_update(
        model, optimizer, rows, np.array([1.0, -1.0]), settings, temperature=1.0, pad_id=0, grad_clip=1.0,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    after = [_response_logprob(model, rows, i) for i in range(2)]
    assert after[0] > before[0] and after[1] < before[1]
    assert metrics["grad_norm"] > 0


def test_without_rollout_log_probs_later_epochs_are_clipped_against_the_starting_policy(tiny_model_dir):
    # The old log-probs are the model's before its first step: at a high learning rate the ratio
    # leaves the clip range in later epochs and mini-batches (it would stay 1 if each step used its own).
    torch.manual_seed(0)
    model, _ = load_model(str(tiny_model_dir), device="cpu")
    rows = TurnRows(
        [[5, 6, 7, 8], [5, 6, 7, 8], [9, 10, 11], [12, 13]], [[20, 21, 22], [30, 31], [40, 41], [50]]
    )
    settings = PPOSettings(epochs=4, mini_batches=2, loss=PolicyLossConfig(kl_coef=0, entropy_coef=0))
    metrics = ppo_update(
        model, torch.optim.AdamW(model.parameters(), lr=5e-2), rows, np.array([1.0, -1.0, 1.0, -1.0]),
        settings, temperature=1.0, pad_id=0, grad_clip=1.0, rng=np.random.default_rng(0),
    )  # fmt: skip
    assert rows.old_log_probs is None  # the caller's rows are left as they were
    assert metrics["clipfrac"] > 0.1 and metrics["approx_kl"] > 0.1


def test_split_micro_batches_give_the_same_gradient_as_one(tiny_model_dir):
    rows = TurnRows([[5, 6, 7], [8, 9], [10, 11, 12, 13]], [[20, 21], [30, 31, 32], [40]])
    advantages = np.array([0.5, -1.0, 2.0])
    gradients = []
    for budget in (10_000, 5):
        model, _ = load_model(str(tiny_model_dir), device="cpu")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        settings = PPOSettings(micro_batch_tokens=budget, loss=PolicyLossConfig(kl_coef=0, entropy_coef=0))
        ppo_update(
            model,
            optimizer,
            rows,
            advantages,
            settings,
            temperature=1.0,
            pad_id=0,
            grad_clip=1e9,
            rng=np.random.default_rng(0),
        )
        gradients.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(gradients[0], gradients[1], atol=1e-6)


def test_a_positive_kl_coefficient_without_a_reference_model_is_an_error(tiny_model_dir):
    # Without the reference the KL would be taken to the policy itself: always 0, a silent no-op.
    from agentgym.core import AgentGymError

    model, _ = load_model(str(tiny_model_dir), device="cpu")
    rows = TurnRows([[5, 6, 7]], [[20, 21]])
    settings = PPOSettings(loss=PolicyLossConfig(kl_coef=0.01, entropy_coef=0))
    with pytest.raises(AgentGymError, match="needs a reference model"):
        ppo_update(
            model, torch.optim.SGD(model.parameters(), lr=0.0), rows, np.array([1.0]), settings,
            temperature=1.0, pad_id=0, grad_clip=1.0, rng=np.random.default_rng(0),
        )  # fmt: skip


# Per-token ratios r = π_θ / π_old set through the old log-probs, and the token losses they give:
#   row 0, A = +1:  r 1.5 -> -1.2 (clipped), r 1 -> -1
#   row 1, A = -1:  r 0.5 -> 0.8 (clipped), r 1 -> 1, r 4 -> 3 (dual clip)
#   row 2, A = +2:  r 1 -> -2
# clipfrac 2/6, clipfrac_lower 1/6, approx_kl = Σ (r - 1 - log r) / 6 over the 6 tokens, and pg_loss
#   token-mean            (-2.2 + 4.8 - 2) / 6             = 0.1
#   seq-mean-token-mean   (-2.2 / 2 + 4.8 / 3 - 2 / 1) / 3 = -0.5
#   seq-mean-token-sum    (-2.2 + 4.8 - 2) / 3             = 0.2
# whether the rows share one micro-batch or each has its own (a plain mean of the three micro-batches'
# values would give e.g. clipfrac (1/2 + 1/3 + 0) / 3 = 5/18 and a token-mean pg_loss of -0.4).
@pytest.mark.parametrize("budget", [10_000, 5])
@pytest.mark.parametrize(
    ("agg", "pg_loss"), [("token-mean", 0.1), ("seq-mean-token-mean", -0.5), ("seq-mean-token-sum", 0.2)]
)
def test_metrics_are_the_mini_batch_s_however_it_is_split(tiny_model_dir, budget, agg, pg_loss):
    model, _ = load_model(str(tiny_model_dir), device="cpu")
    rows = TurnRows([[5, 6, 7], [8, 9], [10, 11, 12, 13]], [[20, 21], [30, 31, 32], [40]])
    ratios = [[1.5, 1.0], [0.5, 1.0, 4.0], [1.0]]
    current = current_log_probs(model, rows, 1.0, 0, 10_000)
    rows.old_log_probs = [
        [c - np.log(r) for c, r in zip(cs, rs, strict=True)] for cs, rs in zip(current, ratios, strict=True)
    ]
    settings = PPOSettings(
        micro_batch_tokens=budget, loss=PolicyLossConfig(kl_coef=0, entropy_coef=0, loss_agg_mode=agg)
    )
    metrics = ppo_update(
        model, torch.optim.SGD(model.parameters(), lr=0.0), rows, np.array([1.0, -1.0, 2.0]), settings,
        temperature=1.0, pad_id=0, grad_clip=1e9, rng=np.random.default_rng(0),
    )  # fmt: skip
    flat = [r for rs in ratios for r in rs]
    assert metrics["clipfrac"] == pytest.approx(2 / 6, abs=1e-6)
    assert metrics["clipfrac_lower"] == pytest.approx(1 / 6, abs=1e-6)
    assert metrics["approx_kl"] == pytest.approx(sum(r - 1 - np.log(r) for r in flat) / 6, abs=1e-5)
    assert metrics["pg_loss"] == pytest.approx(pg_loss, abs=1e-5)
    assert metrics["loss"] == pytest.approx(pg_loss, abs=1e-5)
