import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from agentgym.tools.retrieval import BM25Retriever, RetrievalClient, RetrievalError, Retriever, create_app
from agentgym.tools.servers import wait_until_ready


@pytest.fixture(scope="module")
def app_client(corpus):
    return TestClient(create_app(BM25Retriever.build(corpus, progress=False), default_topk=2, max_topk=5))


def test_scores_come_as_document_score_pairs(app_client):
    response = app_client.post(
        "/retrieve", json={"queries": ["Velmora Quint", "zzz"], "topk": 3, "return_scores": True}
    )
    assert response.status_code == 200
    result = response.json()["result"]
    assert [[item["document"]["id"] for item in hits] for hits in result] == [["quint", "orlen"], []]
    first = result[0][0]
    assert set(first) == {"document", "score"} and set(first["document"]) == {"id", "contents"}
    assert first["document"]["contents"].startswith("Velmora Quint\n") and first["score"] > 0


def test_without_scores_the_documents_come_bare_and_topk_defaults(app_client):
    response = app_client.post("/retrieve", json={"queries": ["stars"]})
    assert response.json() == {
        "result": [
            [
                # both say "stars" once; the ships document is shorter (6 terms against 7), so it ranks first
                {"id": "ships", "contents": "Ships\nSailors navigate the ocean by the stars and a compass."},
                {
                    "id": "stars",
                    "contents": "Astronomy\nTelescopes reveal distant galaxies and the light of stars.",
                },
            ]
        ]
    }
    assert app_client.post("/retrieve", json={"queries": []}).json() == {"result": []}
    # keys outside the protocol are ignored, as Search-R1's server does
    assert app_client.post("/retrieve", json={"queries": ["stars"], "topk": 1, "extra": 1}).status_code == 200


def test_health_reports_the_index(app_client, corpus):
    assert app_client.get("/health").json() == {"status": "ok", "kind": "bm25", "num_docs": len(corpus)}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "the body is not valid JSON"),
        (b'{"queries": ["a"]', 400, "the body is not valid JSON"),
        (b"{}", 422, "queries: Field required"),
        (b'["a", "b"]', 422, "malformed request"),
        (b'{"queries": "a single string"}', 422, "queries: Input should be a valid list"),
        (b'{"queries": ["ok", 3]}', 422, "queries.1: Input should be a valid string"),
        (b'{"queries": ["a"], "topk": 0}', 422, "topk: Input should be greater than or equal to 1"),
        (b'{"queries": ["a"], "topk": "3"}', 422, "topk: Input should be a valid integer"),
        (b'{"queries": ["a"], "topk": 6}', 422, "topk=6 exceeds this server's limit of 5"),
        (
            b'{"queries": ["a"], "return_scores": "yes"}',
            422,
            "return_scores: Input should be a valid boolean",
        ),
    ],
)
def test_malformed_requests_get_a_4xx_that_says_what_is_wrong(app_client, body, status, message):
    response = app_client.post("/retrieve", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]
    assert app_client.post("/retrieve", json={"queries": ["stars"]}).status_code == 200


class BrokenRetriever(Retriever):
    kind = "broken"

    def search(self, queries, topk=3):
        if queries == ["fail"]:
            raise RuntimeError("disk on fire")
        return [[] for _ in queries]

    def __len__(self):
        return 0


@pytest.mark.parametrize("default_topk", [0, 6])
def test_a_default_topk_the_server_would_refuse_is_refused_at_start(corpus, default_topk):
    bm25 = BM25Retriever.build(corpus, progress=False)
    with pytest.raises(
        ValueError, match=f"default_topk must be between 1 and max_topk=5, got {default_topk}"
    ):
        create_app(bm25, default_topk=default_topk, max_topk=5)


def test_a_retriever_failure_is_a_500_and_the_next_request_is_served():
    client = TestClient(create_app(BrokenRetriever()), raise_server_exceptions=False)
    response = client.post("/retrieve", json={"queries": ["fail"]})
    assert response.status_code == 500
    assert response.json() == {"error": "retrieval failed: RuntimeError: disk on fire"}
    assert client.post("/retrieve", json={"queries": ["fine"]}).json() == {"result": [[]]}


@pytest.fixture
def live_broken_server(serve_on_loopback):
    """The broken retriever served by uvicorn on a real loopback socket."""
    return serve_on_loopback(create_app(BrokenRetriever()))


def test_after_a_retriever_failure_the_same_connection_serves_the_next_request(live_broken_server):
    # No retry to hide a connection the server dropped after its 500.
    with RetrievalClient(live_broken_server, retries=0) as client:
        for _ in range(10):
            with pytest.raises(
                RetrievalError, match="HTTP 500: retrieval failed: RuntimeError: disk on fire"
            ):
                client.search(["fail"])
            assert client.search(["fine"]) == [[]]


def test_the_cli_builds_an_index_and_serves_it_on_loopback(corpus, tmp_path, free_port):
    corpus.to_jsonl(tmp_path / "corpus.jsonl")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "agentgym", "serve", "retriever", "--index", str(tmp_path / "index")]
    command += ["--corpus", str(tmp_path / "corpus.jsonl"), "--port", str(port), "--topk", "2"]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until_ready(url, timeout=120, process=server) == {
            "status": "ok",
            "kind": "bm25",
            "num_docs": len(corpus),
        }
        assert (tmp_path / "index" / "manifest.json").is_file()

        # the first server of the list is down: the client moves on to the live one
        with RetrievalClient([f"http://127.0.0.1:{free_port()}", url], backoff=0.0) as client:
            assert [[h.id for h in hits] for hits in client.search(["Tarsh", "bread oven"], topk=2)] == [
                ["tarsh", "quint"],
                ["bread"],
            ]

        with httpx.Client(base_url=url, timeout=10) as http:
            bad_json = http.post("/retrieve", content=b"{oops", headers={"content-type": "application/json"})
            assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
            bad_shape = http.post("/retrieve", json={"queries": "Tarsh", "topk": 2})
            assert bad_shape.status_code == 422 and "queries" in bad_shape.json()["error"]
            assert http.get("/retrieve").status_code == 405
            good = http.post("/retrieve", json={"queries": ["Tarsh"], "return_scores": True})
            assert good.status_code == 200
            assert [item["document"]["id"] for item in good.json()["result"][0]] == ["tarsh", "quint"]
        assert server.poll() is None, "the server stopped after malformed requests"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_with_an_api_key_the_client_must_send_it(corpus, serve_on_loopback, monkeypatch):
    monkeypatch.delenv("AGENTGYM_API_KEY", raising=False)
    url = serve_on_loopback(create_app(BM25Retriever.build(corpus, progress=False), api_key="s3cret"))
    with RetrievalClient(url) as client, pytest.raises(RetrievalError, match=r"HTTP 401.*API key"):
        client.search(["Tarsh"])
    with RetrievalClient(url, api_key="s3cret") as client:
        assert client.search(["Tarsh"], topk=1)[0][0].id == "tarsh"
    monkeypatch.setenv("AGENTGYM_API_KEY", "s3cret")
    with RetrievalClient(url) as client:
        assert client.search(["Tarsh"], topk=1)[0][0].id == "tarsh"
