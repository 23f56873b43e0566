"""Dense retrieval: documents embedded by an :class:`Encoder`, searched with faiss.

Example::

    retriever = DenseRetriever.build(corpus, Encoder())        # all-MiniLM-L6-v2, offline
    retriever.search(["who mentored Velmora Quint?"], topk=3)

The score is the inner product of the query and document embeddings; with a normalising encoder
(the default) that is their cosine similarity. The default faiss index is exact (``"Flat"``);
any ``faiss.index_factory`` string with inner-product metric works (``"HNSW32"`` for large
corpora, trading a little recall for speed). Documents with equal scores (identical texts) come in
corpus order, as BM25's ties do. A document longer than the encoder's ``max_length`` word pieces
(256 for all-MiniLM-L6-v2, some 180 words of plain English) is embedded from its beginning only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from agentgym.tools.retrieval.base import Corpus, Hit, Retriever, check_search_args, progress_bar
from agentgym.tools.retrieval.encoder import Encoder

INDEX_FILE = "faiss.index"
ENCODER_FILE = "encoder.json"


def new_index(dim: int, factory: str) -> faiss.Index:
    """An empty inner-product faiss index of type ``factory``; a string faiss cannot read is a ValueError."""
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:  # faiss prefixes its C++ function and line: keep the reason
        reason = re.sub(r"^Error in .*? at \S+:\d+: ", "", str(error), flags=re.DOTALL)
        raise ValueError(
            f"faiss cannot make an index from {factory!r}: {reason} (use an index_factory string "
            'such as "Flat" or "HNSW32")'
        ) from None


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
        index = new_index(encoder.dim, factory)  # a bad factory string fails before hours of encoding
        with progress_bar("dense: encoding", len(corpus), progress) as bar:
            vectors = encoder.encode(corpus.contents, "passage", batch_size, on_batch=bar.advance)
        return cls._indexed(corpus, encoder, index, vectors)

    @classmethod
    def from_vectors(
        cls, corpus: Corpus, encoder: Encoder, vectors: np.ndarray, factory: str = "Flat"
    ) -> DenseRetriever:
        """Indexes precomputed document vectors ``(len(corpus), encoder.dim)``."""
        return cls._indexed(corpus, encoder, new_index(encoder.dim, factory), vectors)

    @classmethod
    def _indexed(
        cls, corpus: Corpus, encoder: Encoder, index: faiss.Index, vectors: np.ndarray
    ) -> DenseRetriever:
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
        results = []
        for q_rows, q_scores in zip(rows, scores, strict=True):
            found = q_rows >= 0  # approximate indexes may find fewer than k
            q_rows, q_scores = q_rows[found], q_scores[found]
            # faiss returns equal scores in reverse insertion order (so the best hit changed with k):
            # best first, ties by corpus order
            order = np.lexsort((q_rows, -q_scores))
            results.append([self.corpus.hit(int(q_rows[i]), q_scores[i]) for i in order])
        return results

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
