"""BM25 (Lucene variant) over a corpus, with bm25s's sparse score matrix.

Example::

    retriever = BM25Retriever.build(Corpus.from_jsonl("corpus.jsonl"))
    retriever.search(["Velmora Quint"], topk=3)

Tokenisation: lowercase, runs of two or more word characters (``\\b\\w\\w+\\b``), English stopwords
removed (bm25s's list); no stemming, so invented names and years match exactly. The score is
Lucene's BM25, ``sum over query terms t of idf(t) * tf / (tf + k1 * (1 - b + b * len(d) / avglen))``
with ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``k1 = 1.5`` and ``b = 0.75`` by default.
Only documents that share a term with the query are returned (like Lucene/pyserini, which
Search-R1's BM25 server uses), so a query of unknown words gets no hits; ties are broken by
corpus order so results are deterministic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN
from bm25s.tokenization import Tokenized

from agentgym.core import AgentGymError
from agentgym.tools.retrieval.base import Corpus, Hit, Retriever, check_search_args, progress_bar

TOKEN_PATTERN = r"(?u)\b\w\w+\b"
TOKENIZER_FILE = "tokenizer.json"
_TOKENIZE_CHUNK = 10_000


class BM25Retriever(Retriever):
    """Lexical retrieval; build with :meth:`build`, persist with :meth:`save` / :meth:`load`."""

    kind = "bm25"

    def __init__(self, corpus: Corpus, model: bm25s.BM25, stopwords: Sequence[str] = STOPWORDS_EN):
        self.corpus = corpus
        self.model = model
        self.stopwords = frozenset(stopwords)
        self._split = re.compile(TOKEN_PATTERN).findall
        self._vocab: dict[str, int] = model.vocab_dict

    @classmethod
    def build(
        cls, corpus: Corpus, *, k1: float = 1.5, b: float = 0.75, progress: bool = True
    ) -> BM25Retriever:
        """Tokenises and indexes ``corpus`` (a progress bar follows the tokenisation)."""
        stopwords = frozenset(STOPWORDS_EN)
        split = re.compile(TOKEN_PATTERN).findall
        vocab: dict[str, int] = {}
        token_ids: list[list[int]] = []
        with progress_bar("BM25: tokenising", len(corpus), progress) as bar:
            for start in range(0, len(corpus), _TOKENIZE_CHUNK):
                for text in corpus.contents[start : start + _TOKENIZE_CHUNK]:
                    tokens = [t for t in split(text.lower()) if t not in stopwords]
                    token_ids.append([vocab.setdefault(t, len(vocab)) for t in tokens])
                bar.advance(min(_TOKENIZE_CHUNK, len(corpus) - start))
        if not vocab:
            raise AgentGymError("BM25: no document has a word to index (all are empty or stopwords)")
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index(Tokenized(ids=token_ids, vocab=vocab), show_progress=False)
        return cls(corpus, model, sorted(stopwords))

    def __len__(self) -> int:
        return len(self.corpus)

    def _query_ids(self, query: str) -> list[int]:
        tokens = (t for t in self._split(query.lower()) if t not in self.stopwords)
        return [self._vocab[t] for t in tokens if t in self._vocab]

    def search(self, queries: Sequence[str], topk: int = 3) -> list[list[Hit]]:
        check_search_args(queries, topk)
        k = min(topk, len(self.corpus))
        results = []
        for query in queries:
            ids = self._query_ids(query)
            if not ids or k == 0:
                results.append([])
                continue
            scores = self.model.get_scores_from_ids(ids)  # (num_docs,)
            # Every matching row scoring at least the k-th best, so that a tie across the cut goes by
            # corpus order. Only matching rows are partitioned: usually far fewer than the corpus.
            rows = np.flatnonzero(scores > 0)
            if len(rows) > k:
                matched = scores[rows]
                rows = rows[matched >= np.partition(matched, len(rows) - k)[len(rows) - k]]
            rows = rows[np.lexsort((rows, -scores[rows]))][:k]  # best first, ties by corpus order
            results.append([self.corpus.hit(int(r), scores[r]) for r in rows])
        return results

    def save(self, directory: str | Path) -> None:
        """Writes bm25s's score matrix and vocabulary plus the tokeniser settings into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(str(directory), show_progress=False)
        settings = {"pattern": TOKEN_PATTERN, "lowercase": True, "stopwords": sorted(self.stopwords)}
        (directory / TOKENIZER_FILE).write_text(json.dumps(settings, indent=1))

    @classmethod
    def load(cls, directory: str | Path, corpus: Corpus, mmap: bool = False) -> BM25Retriever:
        """Reads what :meth:`save` wrote; ``mmap`` maps the score matrix instead of reading it."""
        directory = Path(directory)
        settings = json.loads((directory / TOKENIZER_FILE).read_text())
        if settings.get("pattern") != TOKEN_PATTERN:
            raise ValueError(
                f"{directory} was tokenised with {settings.get('pattern')!r}, this version uses {TOKEN_PATTERN!r}"
            )
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False)
        if model.scores["num_docs"] != len(corpus):
            raise ValueError(
                f"{directory} indexes {model.scores['num_docs']} documents, the corpus has {len(corpus)}"
            )
        return cls(corpus, model, settings["stopwords"])
