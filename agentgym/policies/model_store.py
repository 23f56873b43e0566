"""Model directories agentgym writes itself: the model cache, atomic saves, and GGUF files
dequantised once into a regular transformers directory there.

The cache is ``$AGENTGYM_CACHE_DIR/models`` (default ``~/.cache/agentgym/models``). Training
builds and converts its models here too, so a GGUF file given to ``train``, ``eval`` and ``play``
is converted once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from agentgym.core import AgentGymError


def cache_dir() -> Path:
    return Path(os.environ.get("AGENTGYM_CACHE_DIR", Path.home() / ".cache" / "agentgym")) / "models"


def save_atomically(model: Any, tokenizer: Any, directory: Path) -> None:
    """Saves to a hidden sibling and renames it into place: a reader never finds half a model. When
    ``directory`` already exists (another process finished the same build first), it is kept."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(directory)
    except OSError:  # another process finished the same build first
        shutil.rmtree(staging, ignore_errors=True)


def is_gguf_file(spec: str) -> bool:
    """Whether a model spec names a GGUF file (``model.gguf``, ``~/models/x.gguf``)."""
    return spec.endswith(".gguf") and Path(spec).expanduser().is_file()


def convert_gguf(gguf: Path, directory: Path | None = None) -> Path:
    """A GGUF file dequantised by transformers (needs ``gguf``) and saved once as a model directory
    (default: in the cache, keyed by the file's path, size and modification time); returns it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf).expanduser().resolve()
    if directory is None:
        stat = gguf.stat()
        key = f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}"
        directory = cache_dir() / f"gguf-{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (directory / "config.json").exists():
        return directory
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        dequantised = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except (OSError, ValueError) as error:  # not a GGUF file, or an architecture transformers cannot read
        reason = " ".join(str(error).split())[:300]
        raise AgentGymError(f"cannot convert {str(gguf)!r} into a model: {reason}") from error
    # transformers marks a model read from GGUF as quantized and refuses to save it: copy the
    # dequantised weights into a plain model of the same configuration.
    config = dequantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantised.state_dict())
    save_atomically(model, tokenizer, directory)
    return directory
