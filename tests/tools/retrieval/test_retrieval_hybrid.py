import json

import pytest

from agentgym.tools.retrieval import Hit, HybridRetriever, Retriever, build_index, fuse, load_index


def hits(*pairs):
    return [Hit(doc_id, f"{doc_id}\ntext", score) for doc_id, score in pairs]


def test_reciprocal_rank_fusion_worked_by_hand():
    lexical = hits(("d1", 12.0), ("d2", 7.0), ("d3", 1.0))
    semantic = hits(("d3", 0.9), ("d1", 0.8))
    fused = fuse([lexical, semantic], topk=3)
    # d1: 1/(60+1) + 1/(60+2) = 0.016393 + 0.016129 = 0.032522
    # d3: 1/(60+3) + 1/(60+1) = 0.015873 + 0.016393 = 0.032266
    # d2: 1/(60+2)            = 0.016129
    assert [h.id for h in fused] == ["d1", "d3", "d2"]
    assert [h.score for h in fused] == pytest.approx([1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62])
    assert fused[0].contents == "d1\ntext"


def test_minmax_score_fusion_worked_by_hand():
    lexical = hits(("d1", 10.0), ("d2", 6.0), ("d3", 2.0))  # scaled: 1, 0.5, 0
    semantic = hits(("d3", 0.9), ("d1", 0.5))  # scaled: 1, 0
    fused = fuse([lexical, semantic], topk=2, weights=[1.0, 2.0], method="minmax")
    # d3 = 1 * 0 + 2 * 1 = 2;  d1 = 1 * 1 + 2 * 0 = 1;  d2 = 1 * 0.5 = 0.5 (cut by topk)
    assert [(h.id, h.score) for h in fused] == [("d3", 2.0), ("d1", 1.0)]


def test_equal_scores_scale_to_one_and_ties_keep_first_seen_order():
    fused = fuse([hits(("a", 3.0), ("b", 3.0)), hits(("c", 0.2))], topk=3, method="minmax")
    assert [(h.id, h.score) for h in fused] == [("a", 1.0), ("b", 1.0), ("c", 1.0)]
    assert fuse([[], []], topk=3) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"method": "max"}, "unknown fusion method"), ({"weights": [1.0]}, "1 weights for 2 rankings")],
)
def test_bad_fusion_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fuse([hits(("a", 1.0)), hits(("b", 1.0))], topk=1, **kwargs)


class UnsizedRetriever(Retriever):
    """Answers a fixed ranking and, as a RetrievalClient, cannot tell its corpus' size."""

    kind = "fixed"

    def __init__(self, ranking):
        self.ranking = ranking
        self.asked = []

    def search(self, queries, topk=3):
        self.asked.append(topk)
        return [self.ranking[:topk] for _ in queries]


class FixedRetriever(UnsizedRetriever):
    def __len__(self):
        return 4


def test_a_hybrid_retriever_refuses_an_rrf_k_that_breaks_its_fusion():
    ranking = hits(("a", 1.0), ("b", 0.5))
    with pytest.raises(ValueError, match="rrf_k must be >= 0"):  # at -1 the first rank divides by zero
        HybridRetriever([FixedRetriever(ranking), FixedRetriever(ranking)], rrf_k=-1)


def test_the_hybrid_retriever_asks_each_component_for_depth_candidates():
    first = FixedRetriever(hits(("a", 5.0), ("b", 4.0), ("c", 3.0)))
    second = FixedRetriever(hits(("c", 0.9), ("d", 0.8)))
    hybrid = HybridRetriever([first, second], depth=10)
    assert [[h.id for h in q] for q in hybrid.search(["x", "y"], topk=2)] == [["c", "a"], ["c", "a"]]
    assert first.asked == second.asked == [10]
    with pytest.raises(ValueError, match="at least two"):
        HybridRetriever([first])


def test_remote_components_need_not_know_their_corpus_size():
    hybrid = HybridRetriever([UnsizedRetriever(hits(("a", 1.0))), FixedRetriever(hits(("b", 2.0)))])
    assert len(hybrid) == 4 and [h.id for h in hybrid.search(["x"], topk=2)[0]] == ["a", "b"]


def test_a_hybrid_index_of_bm25_and_dense_round_trips(corpus, encoder, tmp_path):
    built = build_index(corpus, tmp_path, "hybrid", encoder=encoder, fusion={"rrf_k": 10}, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [c["kind"] for c in manifest["components"]] == ["bm25", "dense"]
    assert manifest["fusion"] == {"method": "rrf", "weights": [1.0, 1.0], "rrf_k": 10, "depth": 50}
    loaded = load_index(tmp_path, encoder=encoder)
    queries = ["Velmora Quint", "a feline napping on a rug"]
    assert loaded.search(queries, 3) == built.search(queries, 3)
    # the name is found lexically, the paraphrase semantically
    assert [hits[0].id for hits in loaded.search(queries, 3)] == ["quint", "cat"]


@pytest.mark.parametrize(
    ("fusion", "message"),
    [
        ({"method": "max"}, "unknown fusion method 'max'"),
        ({"rrfk": 10}, "unknown fusion option 'rrfk'"),
        ({"weights": [1.0]}, "1 weights for 2 retrievers"),
        ({"rrf_k": -1}, "rrf_k must be >= 0"),
    ],
)
def test_bad_fusion_options_fail_before_the_build(corpus, encoder, tmp_path, monkeypatch, fusion, message):
    from agentgym.tools.retrieval import BM25Retriever, DenseRetriever

    for component in (BM25Retriever, DenseRetriever):
        monkeypatch.setattr(component, "build", lambda *args, **kwargs: pytest.fail("built in vain"))
    with pytest.raises(ValueError, match=message):
        build_index(corpus, tmp_path / "index", "hybrid", encoder=encoder, fusion=fusion, progress=False)
    assert not (tmp_path / "index").exists()


def test_an_encoder_that_cannot_load_fails_before_the_bm25_build(corpus, tmp_path, monkeypatch):
    from agentgym.core import AgentGymError
    from agentgym.tools.retrieval import BM25Retriever

    monkeypatch.setattr(BM25Retriever, "build", lambda *args, **kwargs: pytest.fail("built in vain"))
    with pytest.raises(AgentGymError, match="not a local model directory"):
        build_index(corpus, tmp_path / "index", "hybrid", encoder=str(tmp_path / "no-model"), progress=False)
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("method", ["rrf", "minmax"])
def test_an_id_repeated_within_one_ranking_counts_once_at_its_best_place(method):
    # a remote server over a corpus that repeats an id can answer it twice; it is one document
    repeated = hits(("a", 3.0), ("b", 2.0), ("a", 1.0), ("c", 0.0))
    assert fuse([repeated, hits(("b", 0.9))], topk=3, method=method) == fuse(
        [hits(("a", 3.0), ("b", 2.0), ("c", 0.0)), hits(("b", 0.9))], topk=3, method=method
    )
