"""Retrieval throughput on a synthetic 100k-document corpus: BM25, dense (faiss) and hybrid.

    python benchmarks/retrieval.py                      # ~2 min on 2 CPU cores
    python benchmarks/retrieval.py --full-dense --device cuda

The corpus is generated (seeded): each document is a title and ``--words`` words drawn with a
Zipf law from the whole-word entries of the bundled encoder's WordPiece vocabulary, so BM25 sees
a realistic skew of term frequencies and the encoder sees one word piece per word. Queries are
``--query-words`` words taken from random documents.

Measured, each in one run:

- BM25: index build (documents/s) and search (queries/s, one batch of ``--queries`` queries).
- Dense: passage encoding (documents/s) on as many documents as ``--encode-docs`` /
  ``--encode-seconds`` allow (one batch of 256 at least). Exact faiss search costs the same whatever the vectors hold, so
  unless ``--full-dense`` is given the index is completed to the full corpus size with random unit
  vectors; the query side is real: query encoding, faiss search, and both together (queries/s,
  in batches of ``--batch``), plus single-query latency.
- Hybrid: BM25 + dense with reciprocal rank fusion (queries/s), on the same index.

Search timings are the median of ``--repeats`` runs (5 by default). Encoding runs once, under its
time budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from arguments import at_least

from agentgym.tools.retrieval import BM25Retriever, Corpus, DenseRetriever, Encoder, HybridRetriever
from agentgym.tools.retrieval.encoder import DEFAULT_ENCODER, resolve_model_path


def vocabulary() -> list[str]:
    lines = (resolve_model_path(DEFAULT_ENCODER) / "vocab.txt").read_text().splitlines()
    return [word for word in lines if word.isalpha() and word.isascii() and len(word) >= 3]


def synthetic_corpus(docs: int, words: int, seed: int) -> tuple[Corpus, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    vocab = np.array(vocabulary())
    ranks = np.arange(1, len(vocab) + 1)
    weights = 1.0 / ranks**1.1
    order = rng.permutation(len(vocab))  # which word is frequent is itself random
    tokens = rng.choice(order, size=(docs, words + 3), p=weights / weights.sum())  # (docs, 3 title + words)
    contents = [" ".join(vocab[row[:3]]).title() + "\n" + " ".join(vocab[row[3:]]) + "." for row in tokens]
    return Corpus([str(i) for i in range(docs)], contents), tokens, list(vocab)


def make_queries(tokens: np.ndarray, vocab: list[str], count: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 1)
    rows = rng.integers(len(tokens), size=count)
    # as many distinct words as the query wants, or as the document has when it has fewer
    distinct = [np.unique(tokens[row, 3:]) for row in rows]
    picks = [rng.choice(words, size=min(length, len(words)), replace=False) for words in distinct]
    return [" ".join(vocab[i] for i in pick) for pick in picks]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s ({count} in {seconds:.2f} s)"


def timed(function, *args, repeats: int = 1):
    """``function(*args)`` and its median wall time over ``repeats`` runs."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = function(*args)
        seconds.append(time.perf_counter() - start)
    return value, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=at_least(1), default=100_000)
    parser.add_argument(
        "--words", type=at_least(1), default=50, help="words per document (after a 3-word title)"
    )
    parser.add_argument("--queries", type=at_least(1), default=512)
    parser.add_argument("--query-words", type=at_least(1), default=4)
    parser.add_argument("--topk", type=at_least(1), default=3)
    parser.add_argument("--batch", type=at_least(1), default=64, help="queries per dense/hybrid search call")
    parser.add_argument("--encode-docs", type=at_least(1), default=4000, help="most documents to encode")
    parser.add_argument("--encode-seconds", type=float, default=45.0, help="time budget for encoding")
    parser.add_argument("--full-dense", action="store_true", help="encode the whole corpus")
    parser.add_argument("--factory", default="Flat", help="faiss index type, e.g. Flat or HNSW32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=at_least(1), help="torch intra-op threads (default: torch's choice)"
    )
    parser.add_argument(
        "--repeats", type=at_least(1), default=5, help="search timings are the median of these runs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON here")
    args = parser.parse_args()
    results: dict[str, float] = {}

    (corpus, tokens, vocab), seconds = timed(synthetic_corpus, args.docs, args.words, args.seed)
    queries = make_queries(tokens, vocab, args.queries, args.query_words, args.seed)
    print(f"corpus: {len(corpus):,} documents of {args.words + 3} words, generated in {seconds:.1f} s")
    shortest = min(
        len(query.split()) for query in queries
    )  # a document with fewer distinct words gives fewer
    words = f"{args.query_words}" if shortest == args.query_words else f"{shortest}-{args.query_words}"
    print(f"queries: {len(queries)} of {words} words, e.g. {queries[0]!r}; topk={args.topk}\n")

    bm25, seconds = timed(BM25Retriever.build, corpus)
    results["bm25_index_docs_per_s"] = len(corpus) / seconds
    print(f"BM25 index build         {rate(len(corpus), seconds)}")
    hits, seconds = timed(bm25.search, queries, args.topk, repeats=args.repeats)
    results["bm25_queries_per_s"] = len(queries) / seconds
    print(f"BM25 search              {rate(len(queries), seconds)}")
    assert all(hits), "every query was drawn from a document, so BM25 must find something"

    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = Encoder(device=args.device)
    encoder.encode(queries[:8], "query")  # warm-up: the first forward pass allocates and plans
    budget = len(corpus) if args.full_dense else min(args.encode_docs, len(corpus))
    encoded: list[np.ndarray] = []
    start, done = time.perf_counter(), 0
    # at least one batch, however short the time budget, and never more than the document budget
    while done < budget and (
        done == 0 or args.full_dense or time.perf_counter() - start < args.encode_seconds
    ):
        batch = corpus.contents[done : min(done + 256, budget)]
        encoded.append(encoder.encode(batch, "passage"))
        done += len(batch)
    seconds = time.perf_counter() - start
    results["dense_encode_docs_per_s"] = done / seconds
    where = f"{encoder.settings.model}, {args.device}, {torch.get_num_threads()} torch thread(s)"
    print(f"dense passage encoding   {rate(done, seconds)}  [{where}]")
    vectors = np.concatenate(encoded)
    if done < len(corpus):
        filler = np.random.default_rng(args.seed).standard_normal((len(corpus) - done, encoder.dim))
        filler /= np.linalg.norm(filler, axis=1, keepdims=True)
        vectors = np.concatenate([vectors, filler.astype(np.float32)])
        cost = "same exact-search cost" if args.factory == "Flat" else "approximate search: cost indicative"
        print(f"  index completed with {len(corpus) - done:,} random unit vectors ({cost})")
    dense, seconds = timed(DenseRetriever.from_vectors, corpus, encoder, vectors, args.factory)
    print(f"faiss {args.factory} index of {len(corpus):,} x {encoder.dim} built in {seconds:.2f} s")

    query_vectors, seconds = timed(encoder.encode, queries, "query", args.batch, repeats=args.repeats)
    results["dense_query_encode_per_s"] = len(queries) / seconds
    print(f"dense query encoding     {rate(len(queries), seconds)}")
    vector_batches = [query_vectors[i : i + args.batch] for i in range(0, len(queries), args.batch)]
    _, seconds = timed(
        lambda: [dense.index.search(v, args.topk) for v in vector_batches], repeats=args.repeats
    )
    results["faiss_search_queries_per_s"] = len(queries) / seconds
    print(f"faiss search only        {rate(len(queries), seconds)}  (batches of {args.batch})")
    batches = [queries[i : i + args.batch] for i in range(0, len(queries), args.batch)]
    _, seconds = timed(lambda: [dense.search(batch, args.topk) for batch in batches], repeats=args.repeats)
    results["dense_queries_per_s"] = len(queries) / seconds
    print(f"dense search end to end  {rate(len(queries), seconds)}  (batches of {args.batch})")
    singles = queries[:64]
    _, seconds = timed(lambda: [dense.search([query], args.topk) for query in singles], repeats=args.repeats)
    results["dense_single_query_ms"] = 1000 * seconds / len(singles)
    print(f"dense single query       {results['dense_single_query_ms']:.1f} ms per query")

    hybrid = HybridRetriever([bm25, dense])
    _, seconds = timed(lambda: [hybrid.search(batch, args.topk) for batch in batches], repeats=args.repeats)
    results["hybrid_queries_per_s"] = len(queries) / seconds
    print(f"hybrid (RRF, depth 50)   {rate(len(queries), seconds)}  (batches of {args.batch})")

    ratio = results["bm25_queries_per_s"] / results["dense_queries_per_s"]
    print(f"\nBM25 answers {ratio:.1f}x as many queries per second as dense search on this machine.")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
