"""Atomic checkpoints: a run can be killed at any moment and resumed from the last complete one.

``checkpoints/<name>/`` holds the model (or LoRA adapter) with its tokenizer, the optimizer state, the
random-number states and ``state.json`` (iteration, stage, summary so far). It is written to a hidden
staging directory and renamed into place; ``checkpoints/latest`` names the newest complete checkpoint
and is replaced atomically, so a reader never sees half a checkpoint. Saving a name again (``final``
of a resumed run) moves the old copy aside before the new one takes its place and deletes it only
then: at every moment one complete copy exists, and :func:`latest_checkpoint` finds it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREVIOUS = ".previous"  # suffix of a checkpoint moved aside while its name is saved again


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    name: str,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".*.staging-*"):  # left by killed saves: one trainer writes a run at a time
        shutil.rmtree(stale, ignore_errors=True)
    staging = root / f".{name}.staging-{os.getpid()}"
    model.save_pretrained(staging / "model")
    tokenizer.save_pretrained(staging / "model")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    torch.save(rng_state(), staging / "rng.pt")
    (staging / "state.json").write_text(json.dumps(state, indent=2))
    final = root / name
    previous = root / f".{name}{PREVIOUS}"
    if final.exists():
        shutil.rmtree(previous, ignore_errors=True)  # left by a killed save, older than final
        final.rename(previous)  # deleted only once the new copy is in place
    staging.rename(final)
    pointer = root / ".latest.tmp"
    pointer.write_text(name)
    os.replace(pointer, root / "latest")
    shutil.rmtree(previous, ignore_errors=True)
    _prune(root, keep, protect=name)
    return final


def _complete(root: Path, *, aside: bool = False) -> list[Path]:
    """Complete checkpoints (``state.json`` is written last), oldest first; with ``aside``, also the
    copies moved aside by a save that was killed before it finished."""
    paths = [
        path
        for path in root.iterdir()
        if path.is_dir()
        and (not path.name.startswith(".") or (aside and path.name.endswith(PREVIOUS)))
        and (path / "state.json").exists()
    ]
    return sorted(paths, key=lambda path: (path / "state.json").stat().st_mtime)


def _prune(root: Path, keep: int, protect: str) -> None:
    for path in _complete(root)[:-keep]:
        if path.name != protect:
            shutil.rmtree(path, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names or, when that one is gone (a save killed half-way through
    replacing it), the newest complete one; None when there is none."""
    root = run_dir / "checkpoints"
    pointer = root / "latest"
    if pointer.exists():
        path = root / pointer.read_text().strip()
        if (path / "state.json").exists():
            return path
    complete = _complete(root, aside=True) if root.is_dir() else []
    return complete[-1] if complete else None


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "state.json").read_text())
