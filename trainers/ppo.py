"""The policy update: PPO epochs over an iteration's turns, mini-batches of optimizer steps, and
micro-batches under a token budget whose gradients add up to the mini-batch's loss.

Each micro-batch's loss (aggregated inside it by ``loss_agg_mode``) is weighted by its share of the
mini-batch (tokens for ``token-mean``, rows otherwise), so the sum of micro-batch gradients is the
gradient of the mini-batch loss however the rows were split. The metrics add up the same way (the
token means ``clipfrac``, ``clipfrac_lower`` and ``approx_kl`` by tokens): each optimizer step reports
its mini-batch's values, whatever the token budget.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace

import numpy as np
import torch

from agentgym.core import AgentGymError
from agentgym.trainers.config import PPOSettings
from agentgym.trainers.data import TurnRows, current_log_probs, micro_batches, response_log_probs
from agentgym.trainers.losses import policy_loss

_TOKEN_MEANS = ("clipfrac", "clipfrac_lower", "approx_kl")  # masked token means, whatever loss_agg_mode


def ppo_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rows: TurnRows,
    advantages: np.ndarray,
    settings: PPOSettings,
    *,
    temperature: float,
    pad_id: int,
    grad_clip: float,
    rng: np.random.Generator,
    reference: Callable[[], AbstractContextManager[torch.nn.Module]] | None = None,
) -> dict[str, float]:
    """Updates ``model`` in place; returns each mini-batch's metrics (see the module docstring)
    averaged over optimizer steps, and the mean gradient norm before clipping.

    ``reference()`` enters a context yielding the frozen reference model (needed, and an error when
    missing, if the KL coefficient is positive). Old log-probs come from the rollout when ``rows`` has
    them (same weights, same temperature), else from this model before its first step (computed once,
    without gradient, so that later mini-batches and epochs are clipped against the policy that the
    update started from).
    """
    config = settings.loss
    if config.kl_coef > 0 and reference is None:  # the policy as its own reference: a KL of 0, silently
        raise AgentGymError(
            f"kl_coef={config.kl_coef} needs a reference model (the reference argument); "
            "set kl_coef=0 to train without one"
        )
    device = next(model.parameters()).device
    if rows.old_log_probs is None:
        old = current_log_probs(model, rows, temperature, pad_id, settings.micro_batch_tokens)
        rows = replace(rows, old_log_probs=old)
    lengths = rows.lengths()
    totals: dict[str, list[float]] = defaultdict(list)
    model.train()
    for _ in range(settings.epochs):
        order = rng.permutation(len(rows))
        for mini_batch in np.array_split(order, settings.mini_batches):
            if len(mini_batch) == 0:
                continue
            tokens = sum(len(rows.response_ids[i]) for i in mini_batch)
            step: dict[str, float] = defaultdict(float)
            optimizer.zero_grad(set_to_none=True)
            for micro in micro_batches([lengths[i] for i in mini_batch], settings.micro_batch_tokens):
                indices = [int(mini_batch[i]) for i in micro]
                batch, old = rows.micro_batch(indices, pad_id)
                batch = batch.to(device)
                log_probs, entropy = response_log_probs(
                    model, batch, temperature, with_entropy=config.entropy_coef > 0
                )
                old = old.to(device)
                ref = None
                if config.kl_coef > 0:
                    with torch.no_grad(), reference() as ref_model:
                        ref, _ = response_log_probs(ref_model, batch, temperature)
                A = torch.as_tensor(advantages[indices], dtype=torch.float32, device=device)
                loss, metrics = policy_loss(
                    log_probs, old, A, batch.response_mask, config, ref_log_probs=ref, entropy=entropy
                )
                token_share = float(batch.response_mask.sum()) / max(tokens, 1)
                weight = (
                    token_share if config.loss_agg_mode == "token-mean" else len(indices) / len(mini_batch)
                )
                (loss * weight).backward()
                for name, value in metrics.items():
                    step[name] += float(value) * (token_share if name in _TOKEN_MEANS else weight)
            for name, value in step.items():
                totals[name].append(value)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            totals["grad_norm"].append(float(grad_norm))
            optimizer.step()
    model.eval()
    return {name: float(np.mean(values)) for name, values in totals.items()}
