import json
import math

import httpx
import pytest

from agentgym.tools.retrieval import Hit, RetrievalClient, RetrievalError
from agentgym.tools.retrieval.client import document_hit, endpoint

DOCUMENT = {"id": "7", "contents": "Tarsh\nTarsh is a city."}


def answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    item = {"document": DOCUMENT, "score": 1.5} if body["return_scores"] else DOCUMENT
    return httpx.Response(200, json={"result": [[item] * body["topk"] for _ in body["queries"]]})


def client_with(handler, urls=("http://a:1", "http://b:2"), **kwargs):
    calls = []

    def record(request):
        calls.append(request.url.host)
        return handler(request)

    return RetrievalClient(list(urls), transport=httpx.MockTransport(record), backoff=0.0, **kwargs), calls


def test_results_become_hits_and_raw_results_follow_the_protocol():
    client, _ = client_with(answer)
    assert client.search(["q1", "q2"], topk=2) == [[Hit("7", DOCUMENT["contents"], 1.5)] * 2] * 2
    assert client.retrieve(["q"], topk=1, return_scores=False) == [[DOCUMENT]]
    assert client.search([], topk=3) == []


def test_calls_go_round_robin_over_the_servers():
    client, calls = client_with(answer)
    for _ in range(4):
        client.search(["q"], 1)
    assert calls == ["a", "b", "a", "b"]


def refuse_connection(request):
    raise httpx.ConnectError("refused", request=request)


def time_out(request):
    raise httpx.ReadTimeout("too slow", request=request)


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: httpx.Response(503, json={"error": "warming up"}),
        lambda request: httpx.Response(429, text="slow down"),
        refuse_connection,
        time_out,
    ],
)
def test_a_failing_server_is_skipped_for_the_next_one(failure):
    client, calls = client_with(
        lambda request: failure(request) if request.url.host == "a" else answer(request)
    )
    assert client.search(["q"], 1)[0][0].id == "7"
    assert calls == ["a", "b"]


def test_a_refused_request_raises_at_once_with_the_servers_message():
    client, calls = client_with(lambda request: httpx.Response(422, json={"error": "topk: must be >= 1"}))
    with pytest.raises(RetrievalError, match=r"refused the request \(HTTP 422\): topk: must be >= 1"):
        client.search(["q"], 1)
    assert calls == ["a"]


def test_retries_are_bounded_and_every_failure_is_reported():
    client, calls = client_with(lambda request: httpx.Response(500, text="boom"), retries=3)
    with pytest.raises(RetrievalError, match="after 4 attempt") as error:
        client.search(["q"], 1)
    assert calls == ["a", "b", "a", "b"]
    assert "http://a:1/retrieve: HTTP 500: boom" in str(error.value)


@pytest.mark.parametrize(
    "body",
    [{"result": []}, {"documents": []}, ["not", "an", "object"]],
)
def test_answers_of_the_wrong_shape_are_errors(body):
    client, _ = client_with(lambda request: httpx.Response(200, json=body), retries=0)
    with pytest.raises(RetrievalError, match="one list per query"):
        client.search(["q"], 1)


def test_a_server_answering_bare_documents_gives_hits_without_scores():
    client, _ = client_with(lambda request: httpx.Response(200, json={"result": [[DOCUMENT]]}))
    (hit,) = client.search(["q"], 1)[0]
    assert (hit.id, hit.contents) == ("7", DOCUMENT["contents"]) and math.isnan(hit.score)


@pytest.mark.parametrize("item", ["Tarsh is a city.", {"score": 1.0}, {"document": "Tarsh", "score": 1.0}])
def test_result_items_of_the_wrong_shape_are_errors(item):
    client, _ = client_with(lambda request: httpx.Response(200, json={"result": [[item]]}))
    with pytest.raises(RetrievalError, match="expected a result item"):
        client.search(["q"], 1)


def test_urls_are_normalised_to_the_retrieve_endpoint():
    assert endpoint("http://h:8000") == "http://h:8000/retrieve"
    assert endpoint("http://h:8000/retrieve/") == "http://h:8000/retrieve"
    assert endpoint("http://h:8000/retrieve", "/health") == "http://h:8000/health"
    assert RetrievalClient("http://a:1, http://b:2/").urls == ["http://a:1/retrieve", "http://b:2/retrieve"]
    with pytest.raises(ValueError, match="at least one"):
        RetrievalClient("")


def test_documents_without_contents_are_rebuilt_from_title_and_text():
    hit = document_hit({"id": 4, "title": "Tarsh", "text": "A city."}, 2.0)
    assert hit == Hit("4", "Tarsh\nA city.", 2.0)


def test_documents_without_an_id_are_named_by_their_contents():
    first, again, other = (document_hit({"contents": text}) for text in ("Paris", "Paris", "The Nile"))
    assert first.id == again.id != other.id and first.id.startswith("sha1:")


def test_a_url_without_a_scheme_is_refused_at_once():
    with pytest.raises(ValueError, match="no http:// or https:// scheme"):
        RetrievalClient("localhost:8000")
