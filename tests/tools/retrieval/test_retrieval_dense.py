import json
import sys

import numpy as np
import pytest

from agentgym.core import AgentGymError
from agentgym.tools.retrieval import BM25Retriever, Corpus, DenseRetriever, Encoder, build_index, load_index


@pytest.fixture(scope="module")
def dense(corpus, encoder):
    return DenseRetriever.build(corpus, encoder, progress=False)


def test_the_bundled_encoder_gives_unit_vectors_of_its_size(encoder):
    vectors = encoder.encode(["a cat on a mat", "a cat on a mat", "stock markets fell"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[1])
    # settings come from the sentence-transformers files shipped with the model
    assert (
        encoder.settings.pooling == "mean"
        and encoder.settings.normalize
        and encoder.settings.max_length == 256
    )


def test_batching_does_not_change_embeddings(encoder):
    texts = ["short", "a somewhat longer sentence about ships and stars", "mid length text"]
    np.testing.assert_allclose(
        encoder.encode(texts, batch_size=1), encoder.encode(texts, batch_size=3), atol=1e-5
    )


def test_dense_search_matches_meaning_without_shared_words(dense):
    results = dense.search(["a feline napping on a rug", "baking loaves of bread"], topk=2)
    assert [hits[0].id for hits in results] == ["cat", "bread"]
    assert all(-1.0 <= hit.score <= 1.0 for hits in results for hit in hits)
    assert results[0][0].score > results[0][1].score


def test_topk_is_capped_by_the_corpus_and_empty_batches_are_fine(dense, corpus):
    assert len(dense.search(["anything"], topk=50)[0]) == len(corpus)
    assert dense.search([], topk=3) == []


def test_prefixes_are_applied_to_their_kind_of_text(encoder):
    prefixed = Encoder.from_settings(
        encoder.settings_dict(), query_prefix="query: ", passage_prefix="passage: "
    )
    np.testing.assert_allclose(
        prefixed.encode(["stars"], "query"), encoder.encode(["query: stars"], "query"), atol=1e-6
    )
    np.testing.assert_allclose(
        prefixed.encode(["stars"], "passage"), encoder.encode(["passage: stars"], "passage"), atol=1e-6
    )


def test_a_dense_index_round_trips_with_its_encoder_settings(corpus, encoder, dense, tmp_path):
    build_index(corpus, tmp_path, "dense", encoder=encoder, progress=False)
    assert json.loads((tmp_path / "dense" / "encoder.json").read_text())["model"] == "all-MiniLM-L6-v2"
    loaded = load_index(tmp_path, encoder=encoder)
    queries = ["who was born in Tarsh?", "ocean navigation"]
    assert [[h.id for h in hits] for hits in loaded.search(queries, 3)] == [
        [h.id for h in hits] for hits in dense.search(queries, 3)
    ]


def test_an_approximate_faiss_index_can_be_chosen(corpus, encoder, dense):
    vectors = dense.index.reconstruct_n(0, len(corpus))
    hnsw = DenseRetriever.from_vectors(corpus, encoder, vectors, "HNSW16")
    assert hnsw.search(["a feline napping on a rug"], 1)[0][0].id == "cat"


def test_a_model_that_is_not_local_is_never_downloaded(tmp_path):
    with pytest.raises(AgentGymError, match="never downloaded"):
        Encoder("sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(AgentGymError, match="not a local model directory"):
        Encoder(str(tmp_path))


def test_an_encoder_named_by_a_relative_path_is_recorded_absolutely(tmp_path, monkeypatch):
    from agentgym.tools.retrieval.encoder import resolve_model_path

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "minilm").symlink_to(resolve_model_path("all-MiniLM-L6-v2"))
    monkeypatch.chdir(tmp_path)
    recorded = Encoder("models/minilm").settings.model
    monkeypatch.chdir("/")
    assert Encoder(recorded).settings.model == recorded  # loads from another working directory


def test_without_faiss_dense_indexes_say_what_to_install(corpus, dense, tmp_path, monkeypatch):
    build_index(corpus, kind="dense", encoder=dense.encoder, directory=tmp_path / "saved", progress=False)
    monkeypatch.setitem(sys.modules, "faiss", None)  # what an install without the retrieval extra has
    monkeypatch.delitem(sys.modules, "agentgym.tools.retrieval.dense")
    needs = r"dense retrieval needs faiss: pip install 'agentgym\[retrieval\]'"
    with pytest.raises(AgentGymError, match=needs):
        build_index(corpus, kind="hybrid", encoder=dense.encoder, directory=tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists()
    with pytest.raises(AgentGymError, match=needs):
        load_index(tmp_path / "saved")


def test_identical_documents_rank_in_corpus_order_whatever_topk(encoder):
    # Equal texts embed equally; faiss hands ties back in reverse, so the best hit changed with topk.
    cat = "Cat\nThe cat sleeps on the warm mat."
    corpus = Corpus(["a", "dog", "b", "c"], [cat, "Dog\nA dog barks at strangers.", cat, cat])
    dense = DenseRetriever.build(corpus, encoder, progress=False)
    for topk in (1, 2, 3):
        [hits] = dense.search(["a sleeping cat"], topk)
        assert [hit.id for hit in hits] == ["a", "b", "c"][:topk]


def test_a_bad_faiss_factory_fails_before_the_corpus_is_encoded(corpus, encoder, tmp_path, monkeypatch):
    monkeypatch.setattr(Encoder, "encode", lambda *args, **kwargs: pytest.fail("encoded in vain"))
    with pytest.raises(ValueError, match=r"faiss cannot make an index from 'HNSW 32': could not parse"):
        DenseRetriever.build(corpus, encoder, factory="HNSW 32", progress=False)
    # and in a hybrid index, before the BM25 half is built and before a directory is made
    monkeypatch.setattr(BM25Retriever, "build", lambda *args, **kwargs: pytest.fail("built in vain"))
    with pytest.raises(ValueError, match=r"faiss cannot make an index from 'HNSW 32'"):
        build_index(corpus, tmp_path / "index", "hybrid", encoder=encoder, factory="HNSW 32", progress=False)
    assert not (tmp_path / "index").exists()


def test_a_max_length_beyond_the_models_positions_is_refused_when_the_encoder_is_made():
    # else the first document longer than 512 word pieces fails deep in torch, hours into a build
    with pytest.raises(AgentGymError, match=r"max_length 1000 .* at most 512"):
        Encoder(max_length=1000)
    assert Encoder(max_length=512).encode(["word " * 2000]).shape == (1, 384)  # truncated, not refused
