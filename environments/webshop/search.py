"""The site's search engine: BM25 (bm25s) over each product's index text, top 50 hits.

The original runs Lucene BM25 through Pyserini (``k1=0.9``, ``b=0.4``, English stop words, Porter
stemming) over ``" ".join([Title, Description, BulletPoints[0], option_text]).lower()``. Here the
same text is indexed with bm25s's Lucene variant and the same ``k1``/``b``; tokens are runs of word
characters, Lucene's English stop words are dropped, and plurals are folded by Lucene's minimal
English stemmer (:func:`minimal_stem`) because Porter's needs a package agentgym does not depend on.
Rankings therefore differ in detail from the original's, but a product that matches a query well
lands on the first page. Only products sharing at least one term with the query are hits (as in
Lucene); ties are ordered by catalogue position, so results are deterministic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

TOP_K = 50
"""Hits per search, as the original (``k=50``)."""

# Lucene's EnglishAnalyzer stop set.
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no",
    "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to",
    "was", "will", "with"
})  # fmt: skip
_TOKEN = re.compile(r"\w+")


def minimal_stem(word: str) -> str:
    """Lucene's EnglishMinimalStemmer: folds regular plurals (``bags`` -> ``bag``, ``berries`` -> ``berry``)."""
    if len(word) < 3 or word[-1] != "s" or word[-2] in "us":
        return word
    if word[-2] == "e":
        if len(word) > 3 and word[-3] == "i" and word[-4] not in "ae":
            return word[:-3] + "y"
        if word[-3] in "iaoe":
            return word
    return word[:-1]


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return minimal_stem(word)


def analyze(text: str) -> list[str]:
    """Text -> index terms: lower case, word-character runs, stop words out, plurals folded."""
    return [_stem(token) for token in _TOKEN.findall(text.lower()) if token not in STOP_WORDS]


class SearchEngine:
    """BM25 over a fixed list of documents; :meth:`search` returns document positions, best first.

    Searches are memoised (an LRU of ``cache_size`` queries): paging re-runs the same query, and a
    group of rollouts of one task repeats the same searches. Thread-safe for concurrent searches.
    """

    def __init__(self, documents: Sequence[str], top_k: int = TOP_K, cache_size: int = 4096):
        import bm25s  # imported here: building the engine is the only use

        self.top_k = top_k
        self._retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
        self._retriever.index([analyze(document) for document in documents], show_progress=False)
        self._vocabulary: dict[str, int] = self._retriever.vocab_dict
        self.search = functools.lru_cache(maxsize=cache_size)(self._search)

    def _search(self, query: str) -> tuple[int, ...]:
        ids = [self._vocabulary[term] for term in analyze(query) if term in self._vocabulary]
        if not ids:
            return ()
        scores = self._retriever.get_scores_from_ids(ids)  # (num_docs,)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > self.top_k:
            # Keep every document tied with the k-th best so the tie-break below is exact.
            kth = np.partition(scores[hits], -self.top_k)[-self.top_k]
            hits = hits[scores[hits] >= kth]
        order = np.lexsort((hits, -scores[hits]))[: self.top_k]
        return tuple(int(position) for position in hits[order])
