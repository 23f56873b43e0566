import json
import math

import numpy as np
import pytest

from agentgym.core import AgentGymError
from agentgym.tools.retrieval import BM25Retriever, Corpus, build_index, is_index, load_index


@pytest.fixture(scope="module")
def bm25(corpus):
    return BM25Retriever.build(corpus, progress=False)


def test_scores_are_lucene_bm25_worked_by_hand():
    retriever = BM25Retriever.build(
        Corpus(["a", "b", "c"], ["alpha beta", "alpha gamma gamma", "delta"]), progress=False
    )
    [[hit]] = retriever.search(["gamma"], topk=3)
    # N = 3 documents, df(gamma) = 1: idf = ln(1 + (3 - 1 + 0.5) / (1 + 0.5)) = ln(2.6667) = 0.98083
    # doc b: tf = 2, length 3, average length (2 + 3 + 1) / 3 = 2, k1 = 1.5, b = 0.75; Lucene drops
    # the constant factor (k1 + 1): tf part = 2 / (2 + 1.5 * (0.25 + 0.75 * 3 / 2)) = 2 / 4.0625 = 0.49231
    # score = 0.98083 * 0.49231 = 0.48287
    assert hit.id == "b"
    assert hit.score == pytest.approx(math.log(1 + 2.5 / 1.5) * 2 / 4.0625, rel=1e-5)


def test_the_document_naming_the_entity_ranks_first(bm25):
    [hits] = bm25.search(["Velmora Quint"], topk=3)
    assert [hit.id for hit in hits] == ["quint", "orlen"]  # only these two mention her
    assert hits[0].title == "Velmora Quint" and hits[0].text.startswith("Velmora Quint is a chemist")
    assert hits[0].score > hits[1].score > 0


def test_a_batch_answers_each_query_in_order(bm25):
    results = bm25.search(["bread oven", "telescopes galaxies", "Tarsh"], topk=2)
    assert [hits[0].id for hits in results] == ["bread", "stars", "tarsh"]


def test_queries_sharing_no_term_with_the_corpus_get_no_hits(bm25):
    assert bm25.search(["zzyzx qwerty", "", "the and of"], topk=3) == [[], [], []]


def test_topk_larger_than_the_corpus_returns_only_matching_documents(bm25):
    [hits] = bm25.search(["stars"], topk=100)
    assert sorted(hit.id for hit in hits) == ["ships", "stars"]


def test_equal_scores_keep_corpus_order():
    retriever = BM25Retriever.build(
        Corpus(["x", "y", "z"], ["same words", "other", "same words"]), progress=False
    )
    [hits] = retriever.search(["same"], topk=2)
    assert [hit.id for hit in hits] == ["x", "z"] and hits[0].score == hits[1].score


def test_a_tie_across_the_top_k_cut_goes_by_corpus_order():
    # A thousand equally scored documents among others: the top 5 are the first five of them.
    kinds = np.random.default_rng(1).integers(0, 3, 3000)
    texts = {0: "alpha beta", 1: "alpha beta gamma delta epsilon", 2: "zeta eta"}
    corpus = Corpus([str(i) for i in range(3000)], [f"t{i}\n{texts[k]}" for i, k in enumerate(kinds)])
    [hits] = BM25Retriever.build(corpus, progress=False).search(["alpha"], topk=5)
    assert [hit.id for hit in hits] == [str(i) for i in np.flatnonzero(kinds == 0)[:5]]


@pytest.mark.parametrize(
    ("queries", "topk", "error"),
    [
        ("a bare string", 3, TypeError),
        (["q"], 0, ValueError),
        (["q"], True, ValueError),
        (["q"], 2.5, ValueError),
        ([None], 3, TypeError),
        ([["a batch", "in a batch"]], 3, TypeError),
    ],
)
def test_bad_arguments_raise_with_what_was_given(bm25, queries, topk, error):
    with pytest.raises(error, match=r"topk|list of strings"):
        bm25.search(queries, topk)


def test_queries_checked_for_strings_are_still_searched_when_given_as_a_generator(bm25):
    assert [hit.id for hit in bm25.search((q for q in ["Tarsh"]), 1)[0]] == ["tarsh"]


def test_an_index_written_to_disk_loads_back_identical(corpus, bm25, tmp_path):
    built = build_index(corpus, tmp_path / "index", "bm25", progress=False)
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest == {
        "format": "agentgym-retrieval-index",
        "version": 1,
        "kind": "bm25",
        "num_docs": len(corpus),
        "corpus": "corpus.jsonl",
        "components": [{"kind": "bm25", "path": "bm25"}],
    }
    for mmap in (False, True):
        loaded = load_index(tmp_path / "index", mmap=mmap)
        queries = ["Velmora Quint", "stars ocean", "nothing matches zzz"]
        assert loaded.search(queries, 5) == built.search(queries, 5) == bm25.search(queries, 5)


def test_an_existing_index_is_not_overwritten_by_accident(corpus, tmp_path):
    build_index(corpus, tmp_path, "bm25", progress=False)
    with pytest.raises(AgentGymError, match="already holds an index"):
        build_index(corpus, tmp_path, "bm25", progress=False)
    build_index(Corpus(["only"], ["one document"]), tmp_path, "bm25", progress=False, overwrite=True)
    assert len(load_index(tmp_path)) == 1


def test_a_directory_without_manifest_is_not_an_index(tmp_path):
    assert not is_index(tmp_path)
    with pytest.raises(AgentGymError, match="not a retrieval index"):
        load_index(tmp_path)


@pytest.mark.parametrize("kind", ["sparse", "BM25"])
def test_unknown_index_kinds_are_refused(corpus, kind):
    with pytest.raises(AgentGymError, match="unknown index kind"):
        build_index(corpus, kind=kind)


def test_corpus_jsonl_reads_search_r1_rows(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        '{"id": "0", "contents": "\\"Aaron\\"\\nAaron is a prophet."}\n'
        "\n"
        '{"id": 7, "title": "Tarsh", "text": "A city.", "extra": 1}\n'
        '{"contents": "No id\\nuses its row number"}\n'
    )
    corpus = Corpus.from_jsonl(path)
    assert corpus.ids == ["0", "7", "2"]
    assert corpus.contents == ['"Aaron"\nAaron is a prophet.', "Tarsh\nA city.", "No id\nuses its row number"]
    corpus.to_jsonl(tmp_path / "copy.jsonl")
    assert Corpus.from_jsonl(tmp_path / "copy.jsonl").contents == corpus.contents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": "1", "contents": "a"}\nnot json\n', r"corpus.jsonl:2: expected a JSON object"),
        ('{"id": "1", "body": "a"}\n', r"corpus.jsonl:1: expected a JSON object"),
        ('{"id": "1", "contents": "a"}\n{"id": "1", "contents": "b"}\n', "repeats document id '1'"),
    ],
)
def test_malformed_corpora_are_reported_with_their_line(tmp_path, text, message):
    path = tmp_path / "corpus.jsonl"
    path.write_text(text)
    with pytest.raises(AgentGymError, match=message):
        Corpus.from_jsonl(path)


def test_a_corpus_made_in_memory_refuses_repeated_ids_as_one_read_from_disk_does(tmp_path):
    # else its index would be written, and then refused by load_index
    with pytest.raises(ValueError, match="repeats document id '7'"):
        Corpus(["7", "8", 7], ["a cat", "a dog", "a bird"])


def test_an_index_path_that_is_a_file_fails_before_the_build(corpus, tmp_path, monkeypatch):
    (tmp_path / "index").write_text("not a directory")
    monkeypatch.setattr(BM25Retriever, "build", lambda *args, **kwargs: pytest.fail("built in vain"))
    with pytest.raises(AgentGymError, match=r"cannot write an index to .*index'.*not a directory"):
        build_index(corpus, tmp_path / "index", progress=False)


def test_an_empty_corpus_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(AgentGymError, match="corpus is empty"):
        build_index(tmp_path / "empty.jsonl")


def test_a_corpus_without_a_word_to_index_is_refused(tmp_path):
    (tmp_path / "stopwords.jsonl").write_text(
        '{"id": "0", "contents": "the and of"}\n{"id": "1", "contents": "!"}\n'
    )
    with pytest.raises(AgentGymError, match="no document has a word to index"):
        build_index(tmp_path / "stopwords.jsonl")


@pytest.mark.parametrize("text", ["", "not json {", "[1, 2]"])
def test_a_manifest_that_is_not_ours_is_reported_not_a_traceback(tmp_path, text):
    # manifest.json is a common name: another tool's file there is no index of ours
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(
        AgentGymError, match=r"manifest.json is not a version-1 agentgym-retrieval-index manifest"
    ):
        load_index(tmp_path)
