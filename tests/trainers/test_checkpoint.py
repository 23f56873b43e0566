import random
from pathlib import Path

import numpy as np
import pytest
import torch

from agentgym.trainers.checkpoint import latest_checkpoint, read_state, save_checkpoint, set_rng_state
from agentgym.trainers.models import load_model


def test_checkpoints_are_complete_pruned_and_restore_random_states(tiny_model_dir, tmp_path):
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    assert latest_checkpoint(tmp_path) is None
    for iteration in (1, 2, 3):
        random.seed(iteration), np.random.seed(iteration), torch.manual_seed(iteration)
        save_checkpoint(
            tmp_path, f"iteration_{iteration}", model, tokenizer, optimizer, {"iteration": iteration}
        )
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "iteration_3" and read_state(latest) == {"iteration": 3}
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "iteration_2",
        "iteration_3",
        "latest",
    ]
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(99), np.random.seed(99), torch.manual_seed(99)
    set_rng_state(torch.load(latest / "rng.pt", weights_only=False))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    reloaded, _ = load_model(str(latest / "model"), device="cpu")
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), reloaded.state_dict().values(), strict=True)
    )


def test_a_half_written_checkpoint_is_never_the_latest(tiny_model_dir, tmp_path):
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    save_checkpoint(tmp_path, "iteration_1", model, tokenizer, None, {"iteration": 1})
    (tmp_path / "checkpoints" / ".iteration_2.staging-123").mkdir()  # a writer killed mid-way
    assert latest_checkpoint(tmp_path).name == "iteration_1"
    save_checkpoint(tmp_path, "iteration_2", model, tokenizer, None, {"iteration": 2})
    assert not list((tmp_path / "checkpoints").glob(".*staging*"))  # the next save clears what it left


def test_saving_a_name_again_keeps_a_complete_copy_at_every_moment(tiny_model_dir, tmp_path, monkeypatch):
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    save_checkpoint(tmp_path, "iteration_1", model, tokenizer, None, {"iteration": 1})
    save_checkpoint(tmp_path, "final", model, tokenizer, None, {"iteration": 1, "stage": "done"})
    rename = Path.rename

    def killed_before_the_new_copy_is_in(path, target):
        if path.name.startswith(".final.staging"):
            raise KeyboardInterrupt("killed")
        return rename(path, target)

    monkeypatch.setattr(Path, "rename", killed_before_the_new_copy_is_in)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "final", model, tokenizer, None, {"iteration": 3, "stage": "done"})
    monkeypatch.setattr(Path, "rename", rename)
    assert read_state(latest_checkpoint(tmp_path)) == {"iteration": 1, "stage": "done"}  # not None

    save_checkpoint(tmp_path, "final", model, tokenizer, None, {"iteration": 3, "stage": "done"})
    assert read_state(latest_checkpoint(tmp_path)) == {"iteration": 3, "stage": "done"}
    assert not list((tmp_path / "checkpoints").glob(".final.previous*"))


def test_latest_falls_back_to_the_newest_complete_checkpoint(tiny_model_dir, tmp_path):
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    for iteration in (1, 2):
        save_checkpoint(tmp_path, f"iteration_{iteration}", model, tokenizer, None, {"iteration": iteration})
    (tmp_path / "checkpoints" / "latest").write_text("final")  # named, never completed
    assert latest_checkpoint(tmp_path).name == "iteration_2"
