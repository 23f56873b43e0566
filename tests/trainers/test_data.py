import pytest
import torch

from agentgym.trainers.data import TurnRows, collate, micro_batches, response_log_probs, right_align
from agentgym.trainers.models import load_model


def test_micro_batches_respect_the_token_budget_and_sort_by_length():
    lengths = [5, 50, 7, 30, 6, 200]
    batches = micro_batches(lengths, max_tokens=64)
    assert sorted(i for batch in batches for i in batch) == list(range(6))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 64
    assert batches[0] == [0, 4, 2]  # the three short rows share one micro-batch
    assert [5] in batches  # longer than the budget: alone


def test_collate_left_pads_and_right_aligns_responses():
    batch = collate([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3, 5, 6], [0, 4, 7, 8, 9]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4], [0, 0, 1, 2, 3]]
    assert batch.targets.tolist() == [[0, 5, 6], [7, 8, 9]]
    assert batch.response_mask.tolist() == [[0, 1, 1], [1, 1, 1]]
    assert right_align([[-1.0], [-2.0, -3.0]], 3).tolist() == [[0, 0, -1.0], [0, -2.0, -3.0]]


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_response_log_probs_match_an_unpadded_forward_pass(tiny_model_dir, temperature):
    model, _ = load_model(str(tiny_model_dir), device="cpu")
    rows = TurnRows([[5, 9, 12, 40], [7], [3, 3, 3, 3, 3, 3]], [[11, 13], [17, 19, 23], [29]])
    batch, _ = rows.micro_batch([0, 1, 2], pad_id=0)
    with torch.no_grad():
        log_probs, entropy = response_log_probs(model, batch, temperature, with_entropy=True)
        for row, (prompt, response) in enumerate(zip(rows.prompt_ids, rows.response_ids, strict=True)):
            logits = model(torch.tensor([prompt + response])).logits[0].float() / temperature
            expected = torch.log_softmax(logits[len(prompt) - 1 : -1], -1)
            picked = expected.gather(-1, torch.tensor(response)[:, None])[:, 0]
            K = log_probs.shape[1]
            assert log_probs[row, K - len(response) :].tolist() == pytest.approx(picked.tolist(), abs=1e-4)
            H = -(expected.exp() * expected).sum(-1)
            assert entropy[row, K - len(response) :].tolist() == pytest.approx(H.tolist(), abs=1e-4)


def test_free_positions_take_their_entropy_from_the_losses_helper():
    from agentgym.trainers import data, losses

    # One formula for the entropy bonus, wherever the update computes it.
    assert data.entropy_from_logits is losses.entropy_from_logits
