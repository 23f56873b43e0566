"""The data path shared by SFT and RL: token rows -> tightly padded micro-batches -> per-token log-probs.

A *row* is one agent turn: its prompt token ids and the response token ids the policy produced (or
the expert's, for SFT). Rows are grouped into micro-batches by length under a token budget, so
padding stays small, and left-padded so that every response ends at the last position: the LM head
then runs only on the last K positions (K = the longest response of the micro-batch), never on the
prompts.

Example::

    for rows in micro_batches(lengths, max_tokens=8192):
        batch = collate([prompts[i] for i in rows], [responses[i] for i in rows], pad_id)
        log_probs, entropy = response_log_probs(model, batch, temperature=1.0)   # (B, K) each
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agentgym.policies.hf import mixed_precision
from agentgym.trainers.losses import entropy_from_logits


@dataclass
class MicroBatch:
    """Left-padded sequences whose responses end at the last position.

    input_ids, attention_mask, position_ids: (B, L)
    targets: (B, K) the response tokens, right-aligned; response_mask: (B, K) 1 on real tokens
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    targets: torch.Tensor
    response_mask: torch.Tensor
    allowed_ids: torch.Tensor | None = None
    """(B, K, A) under constrained decoding: the tokens allowed at each response position, padded"""
    allowed_mask: torch.Tensor | None = None
    """(B, K, A) True on real entries of ``allowed_ids``; a position with none was generated freely"""

    def to(self, device: torch.device) -> MicroBatch:
        return MicroBatch(*(None if t is None else t.to(device) for t in vars(self).values()))


def micro_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Row indices grouped so that rows x longest length <= ``max_tokens`` (a longer row goes alone).

    Rows are sorted by length first, so each micro-batch pads to a similar length.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def collate(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int) -> MicroBatch:
    lengths = [len(p) + len(r) for p, r in zip(prompts, responses, strict=True)]
    width, K = max(lengths), max(max(len(r) for r in responses), 1)
    B = len(prompts)
    input_ids = torch.full((B, width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, width), dtype=torch.long)
    targets = torch.full((B, K), pad_id, dtype=torch.long)
    response_mask = torch.zeros((B, K), dtype=torch.float32)
    for row, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        sequence = list(prompt) + list(response)
        input_ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, width - len(sequence) :] = 1
        if response:
            targets[row, K - len(response) :] = torch.tensor(list(response), dtype=torch.long)
            response_mask[row, K - len(response) :] = 1.0
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return MicroBatch(input_ids, attention_mask, position_ids, targets, response_mask)


def collate_allowed(
    allowed: Sequence[Sequence[Sequence[int] | None] | None], targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, A) allowed token ids and their mask, right-aligned like ``targets`` (B, K)."""
    B, K = targets.shape
    width = max((len(tokens) for row in allowed if row for tokens in row if tokens), default=1)
    ids = torch.zeros((B, K, width), dtype=torch.long)
    mask = torch.zeros((B, K, width), dtype=torch.bool)
    for b, row in enumerate(allowed):
        for position, tokens in enumerate(row or []):
            if tokens:
                k = K - len(row) + position
                ids[b, k, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
                mask[b, k, : len(tokens)] = True
    return ids, mask


def right_align(values: Sequence[Sequence[float]], K: int) -> torch.Tensor:
    """(B, K) float tensor with each row's values at its last positions (e.g. old log-probs)."""
    out = torch.zeros((len(values), K), dtype=torch.float32)
    for row, value in enumerate(values):
        if len(value):
            out[row, K - len(value) :] = torch.tensor(list(value), dtype=torch.float32)
    return out


def response_log_probs(
    model: torch.nn.Module, batch: MicroBatch, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, K) log-probabilities of the response tokens at ``temperature``, and optionally their entropy.

    The logits that predict the K response tokens sit at positions L-K-1 .. L-2.
    """
    K = batch.targets.shape[1]
    with mixed_precision(model):
        output = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
            logits_to_keep=K + 1,
        )
    logits = output.logits[:, :-1, :].float()  # (B, K, V)
    if temperature > 0:
        logits = logits / temperature
    log_softmax = torch.log_softmax(logits, dim=-1)
    log_probs = log_softmax.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)  # (B, K)
    entropy = entropy_from_logits(logits) if with_entropy else None  # (B, K)
    if batch.allowed_ids is None:
        return log_probs, entropy
    # Constrained positions: the distribution renormalised over the allowed tokens, as sampled.
    # Padding gets a large finite negative, not -inf, whose 0 * inf terms would make gradients NaN.
    restricted = log_softmax.gather(-1, batch.allowed_ids).masked_fill(~batch.allowed_mask, -1e9)
    constrained = batch.allowed_mask.any(-1)  # (B, K)
    log_z = torch.where(constrained, torch.logsumexp(restricted, -1), 0.0)
    log_probs = log_probs - log_z
    if entropy is not None:
        restricted = restricted - log_z.unsqueeze(-1)
        terms = (restricted.exp() * restricted).masked_fill(~batch.allowed_mask, 0.0)
        entropy = torch.where(constrained, -terms.sum(-1), entropy)
    return log_probs, entropy


@dataclass
class TurnRows:
    """Training rows, one per agent turn, aligned with a StepBatch built from the same trajectories.

    ``old_log_probs`` are the sampling policy's log-probs of the response tokens (None for SFT rows);
    ``allowed`` (constrained decoding) the tokens allowed at each response position, None where free.
    """

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    old_log_probs: list[list[float]] | None = None
    allowed: list[list[list[int] | None] | None] | None = None

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def lengths(self) -> list[int]:
        return [len(p) + len(r) for p, r in zip(self.prompt_ids, self.response_ids, strict=True)]

    def micro_batch(self, rows: Sequence[int], pad_id: int) -> tuple[MicroBatch, torch.Tensor | None]:
        """The collated rows and, when known, their right-aligned old log-probs (B, K)."""
        batch = collate([self.prompt_ids[i] for i in rows], [self.response_ids[i] for i in rows], pad_id)
        old = None
        if self.old_log_probs is not None:
            old = right_align([self.old_log_probs[i] for i in rows], batch.targets.shape[1])
        if self.allowed is not None and any(self.allowed[i] for i in rows):
            batch.allowed_ids, batch.allowed_mask = collate_allowed(
                [self.allowed[i] for i in rows], batch.targets
            )
        return batch, old


@torch.no_grad()
def current_log_probs(
    model: torch.nn.Module, rows: TurnRows, temperature: float, pad_id: int, micro_batch_tokens: int
) -> list[list[float]]:
    """Each row's response log-probs under ``model`` as it is now, in inference mode like a rollout."""
    device = next(model.parameters()).device
    model.eval()
    values: list[list[float]] = [[] for _ in range(len(rows))]
    for micro in micro_batches(rows.lengths(), micro_batch_tokens):
        batch, _ = rows.micro_batch(micro, pad_id)
        log_probs, _ = response_log_probs(model, batch.to(device), temperature)
        K = log_probs.shape[1]
        for row, index in enumerate(micro):
            values[index] = log_probs[row, K - len(rows.response_ids[index]) :].tolist()
    return values
