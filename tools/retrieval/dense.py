"""Dense retrieval: documents embedded by an :class:`Encoder`, searched with faiss.

Example::

    retriever = DenseRetriever.build(corpus, Encoder())        # all-MiniLM-L6-v2, offline
    retriever.search(["who mentored Velmora Quint?"], topk=3)

The score is the inner product of the query and document embeddings; with a normalising encoder
(the default) that is their cosine similarity. The default faiss index is exact (``"Flat"``);
any ``faiss.index_factory`` string with inner-product metric works (``"HNSW32"`` for large
corpora, trading a little recall for speed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from agentgym.tools.retrieval.base import Corpus, Hit, Retriever, check_search_args, progress_bar
from agentgym.tools.retrieval.encoder import Encoder

INDEX_FILE = "faiss.index"
ENCODER_FILE = "encoder.json"


class DenseRetriever(Retriever):
    """Embedding search; build with :meth:`build`, persist with :meth:`save` / :meth:`load`."""

    kind = "dense"

    def __init__(self, corpus: Corpus, encoder: Encoder, index: faiss.Index):
        if index.ntotal != len(corpus):
            raise ValueError(f"the faiss index holds {index.ntotal} vectors for {len(corpus)} documents")
        if index.d != encoder.dim:
            raise ValueError(f"the faiss index has dimension {index.d}, the encoder {encoder.dim}")
        self.corpus = corpus
        self.encoder = encoder
        self.index = index

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        encoder: Encoder,
        *,
        factory: str = "Flat",
        batch_size: int | None = None,
        progress: bool = True,
    ) -> DenseRetriever:
        """Encodes every document (a progress bar follows) and adds the vectors to a faiss index."""
        with progress_bar("dense: encoding", len(corpus), progress) as bar:
            vectors = encoder.encode(corpus.contents, "passage", batch_size, on_batch=bar.advance)
        return cls.from_vectors(corpus, encoder, vectors, factory)

    @classmethod
    def from_vectors(
        cls, corpus: Corpus, encoder: Encoder, vectors: np.ndarray, factory: str = "Flat"
    ) -> DenseRetriever:
        """Indexes precomputed document vectors ``(len(corpus), encoder.dim)``."""
        index = faiss.index_factory(encoder.dim, factory, faiss.METRIC_INNER_PRODUCT)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
        return cls(corpus, encoder, index)

    def __len__(self) -> int:
        return len(self.corpus)

    def search(self, queries: Sequence[str], topk: int = 3) -> list[list[Hit]]:
        check_search_args(queries, topk)
        if not queries:
            return []
        k = min(topk, len(self.corpus))
        scores, rows = self.index.search(self.encoder.encode(list(queries), "query"), k)  # (Q, k) each
        return [
            [
                self.corpus.hit(int(row), score)
                for row, score in zip(q_rows, q_scores, strict=True)
                if row >= 0
            ]
            for q_rows, q_scores in zip(rows, scores, strict=True)
        ]

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / INDEX_FILE))
        (directory / ENCODER_FILE).write_text(json.dumps(self.encoder.settings_dict(), indent=1))

    @classmethod
    def load(
        cls,
        directory: str | Path,
        corpus: Corpus,
        encoder: Encoder | None = None,
        device: str = "cpu",
        mmap: bool = False,
    ) -> DenseRetriever:
        """Reads what :meth:`save` wrote; the encoder is rebuilt on ``device`` from the recorded settings unless given."""
        directory = Path(directory)
        if encoder is None:
            settings = json.loads((directory / ENCODER_FILE).read_text())
            encoder = Encoder.from_settings(settings, device=device)
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        return cls(corpus, encoder, faiss.read_index(str(directory / INDEX_FILE), flags))
