"""Hybrid retrieval: the rankings of several retrievers (BM25 and dense) fused into one.

Example::

    hybrid = HybridRetriever([bm25, dense], method="rrf")
    hybrid.search(["Velmora Quint"], topk=3)

Each component returns its best ``depth`` documents (at least ``topk``); documents are matched
by id and fused by one of two rules, ``w_i`` being the component weights (equal by default):

- ``"rrf"`` (default), reciprocal rank fusion (Cormack et al., 2009):
  ``score(d) = sum_i w_i / (rrf_k + rank_i(d))`` with ranks from 1 and ``rrf_k = 60``; a component
  that did not return ``d`` adds nothing. Rank-based, so BM25's unbounded scores and cosine
  similarities need no calibration.
- ``"minmax"``, normalised score sum: each component's scores for a query are min-max scaled to
  ``[0, 1]`` over the documents it returned (all 1 when they are equal), then
  ``score(d) = sum_i w_i * scaled_i(d)``. Keeps how much better the best hit is than the rest.

Ties keep the order in which documents were first seen (component 0's ranking, then 1's, ...).
A ranking that names a document twice (a remote server over a corpus repeating an id) counts it
once, at its best place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agentgym.tools.retrieval.base import Hit, Retriever, check_search_args

FusionMethod = Literal["rrf", "minmax"]


def fuse(
    rankings: Sequence[Sequence[Hit]],
    topk: int,
    weights: Sequence[float] | None = None,
    method: FusionMethod = "rrf",
    rrf_k: float = 60.0,
) -> list[Hit]:
    """Fuses the rankings of one query (one list of hits per component) into the best ``topk``."""
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    fused: dict[str, float] = {}
    contents: dict[str, str] = {}
    for weight, ranking in zip(weights, rankings, strict=True):
        # a document is ranked once, at its best place (a remote server can repeat an id)
        first: dict[str, Hit] = {}
        for hit in ranking:
            first.setdefault(hit.id, hit)
        hits = list(first.values())
        if method == "rrf":
            contributions = [weight / (rrf_k + rank) for rank in range(1, len(hits) + 1)]
        elif method == "minmax":
            scores = [hit.score for hit in hits]
            low, high = min(scores, default=0.0), max(scores, default=0.0)
            span = high - low
            contributions = [weight * ((s - low) / span if span > 0 else 1.0) for s in scores]
        else:
            raise ValueError(f"unknown fusion method {method!r}; use 'rrf' or 'minmax'")
        for hit, contribution in zip(hits, contributions, strict=True):
            fused[hit.id] = fused.get(hit.id, 0.0) + contribution
            contents.setdefault(hit.id, hit.contents)
    order = sorted(fused, key=fused.__getitem__, reverse=True)  # stable: ties keep first-seen order
    return [Hit(doc_id, contents[doc_id], fused[doc_id]) for doc_id in order[:topk]]


FUSION_OPTIONS = ("method", "weights", "rrf_k", "depth")


def check_fusion(count: int, options: Mapping[str, Any]) -> None:
    """Fails on fusion options (:class:`HybridRetriever`'s keywords) that a hybrid of ``count``
    retrievers cannot use; :func:`~agentgym.tools.retrieval.build_index` checks them before its build."""
    unknown = [name for name in options if name not in FUSION_OPTIONS]
    if unknown:
        raise ValueError(f"unknown fusion option {unknown[0]!r}; the options are {', '.join(FUSION_OPTIONS)}")
    weights, method, rrf_k = options.get("weights"), options.get("method", "rrf"), options.get("rrf_k", 60.0)
    if weights is not None and len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} retrievers")
    if method not in ("rrf", "minmax"):
        raise ValueError(f"unknown fusion method {method!r}; use 'rrf' or 'minmax'")
    if rrf_k < 0:  # at -1 the first rank divides by zero; below 0, scores stop falling with rank
        raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")


class HybridRetriever(Retriever):
    """Fuses the hits of ``retrievers`` (over the same corpus) with :func:`fuse`."""

    kind = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        weights: Sequence[float] | None = None,
        method: FusionMethod = "rrf",
        rrf_k: float = 60.0,
        depth: int = 50,
    ):
        if len(retrievers) < 2:
            raise ValueError("a hybrid retriever fuses at least two retrievers")
        # Remote components (a RetrievalClient) do not know their corpus' size; the others must agree.
        sizes = {len(r) for r in retrievers if hasattr(r, "__len__")}
        if len(sizes) > 1:
            raise ValueError(f"the retrievers search corpora of different sizes: {sorted(sizes)}")
        check_fusion(len(retrievers), {"weights": weights, "method": method, "rrf_k": rrf_k})
        self.retrievers = list(retrievers)
        self.weights = [1.0] * len(retrievers) if weights is None else [float(w) for w in weights]
        self.method: FusionMethod = method
        self.rrf_k = rrf_k
        self.depth = depth

    def __len__(self) -> int:
        sized = [r for r in self.retrievers if hasattr(r, "__len__")]
        if not sized:
            raise TypeError("a hybrid of remote retrievers does not know its corpus' size")
        return len(sized[0])

    def search(self, queries: Sequence[str], topk: int = 3) -> list[list[Hit]]:
        check_search_args(queries, topk)
        depth = max(topk, self.depth)
        per_retriever = [retriever.search(queries, depth) for retriever in self.retrievers]
        return [
            fuse([hits[q] for hits in per_retriever], topk, self.weights, self.method, self.rrf_k)
            for q in range(len(queries))
        ]

    def fusion_settings(self) -> dict[str, object]:
        return {"method": self.method, "weights": self.weights, "rrf_k": self.rrf_k, "depth": self.depth}
