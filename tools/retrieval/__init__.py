"""Retrievers for search agents: BM25, dense (faiss), hybrid, on-disk indexes, a Search-R1 server and client.

Example::

    from agentgym.tools.retrieval import build_index, load_index, RetrievalClient

    retriever = build_index("corpus.jsonl", "indexes/wiki", kind="bm25")
    retriever.search(["who founded the Orlen Institute?"], topk=3)    # -> [[Hit(id, contents, score)]]
    remote = RetrievalClient("http://127.0.0.1:8000")                 # same interface over HTTP

The dense stack (torch, transformers, faiss) and the server (FastAPI) load only when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from agentgym.tools.retrieval.base import Corpus, Hit, Retriever
from agentgym.tools.retrieval.bm25 import BM25Retriever
from agentgym.tools.retrieval.client import RetrievalClient, RetrievalError
from agentgym.tools.retrieval.index import build_index, is_index, load_index, save_index

_LAZY = {
    "DenseRetriever": "agentgym.tools.retrieval.dense",
    "Encoder": "agentgym.tools.retrieval.encoder",
    "HybridRetriever": "agentgym.tools.retrieval.hybrid",
    "fuse": "agentgym.tools.retrieval.hybrid",
    "create_app": "agentgym.tools.retrieval.server",
    "serve": "agentgym.tools.retrieval.server",
}

__all__ = [
    "BM25Retriever",
    "Corpus",
    "DenseRetriever",
    "Encoder",
    "Hit",
    "HybridRetriever",
    "RetrievalClient",
    "RetrievalError",
    "Retriever",
    "build_index",
    "create_app",
    "fuse",
    "is_index",
    "load_index",
    "save_index",
    "serve",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
