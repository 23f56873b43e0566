"""An HTTP client for Search-R1-compatible retrieval servers, usable wherever a Retriever is.

Example::

    client = RetrievalClient(["http://10.0.0.5:8000", "http://10.0.0.6:8000"], timeout=10)
    client.search(["Velmora Quint"], topk=3)          # -> [[Hit, Hit, Hit]]
    client.retrieve(["Velmora Quint"], topk=3)        # -> the server's raw "result" list

Requests go round-robin over ``urls`` (each call starts at the next server). A connection error,
a timeout, a 5xx or a 429 answer moves the call to the next server, up to ``retries`` extra
attempts; once every server has been tried the client waits ``backoff * 2**round`` seconds
before going round again. Any other 4xx means the request itself is wrong: it raises at once
with the server's message. A URL without a path gets ``/retrieve`` appended. Servers started with
an API key need it: ``api_key=``, or ``$AGENTGYM_API_KEY`` when none is given.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from hashlib import sha1
from typing import Any

import httpx

from agentgym.core import AgentGymError
from agentgym.tools.retrieval.base import Hit, Retriever, check_search_args
from agentgym.tools.servers import auth_headers, client_api_key


class RetrievalError(AgentGymError):
    """The retrieval servers could not answer, or refused the request."""


def endpoint(url: str, path: str = "/retrieve") -> str:
    """``http://host:8000`` or ``http://host:8000/retrieve`` -> the URL of ``path`` on that server."""
    base = url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):  # httpx would refuse it only after the retries
        raise ValueError(f"retrieval server URL {url!r} has no http:// or https:// scheme")
    base = base.removesuffix("/retrieve").removesuffix("/health")
    return base + path


def document_hit(item: dict[str, Any], score: float | None = None) -> Hit:
    """A Search-R1 result document (``{"id", "contents"}`` or ``{"title", "text"}``) as a :class:`Hit`;
    a document without an id is named by a digest of its contents, so that different documents
    never share one (environments key what was retrieved by id)."""
    contents = item.get("contents")
    if contents is None:
        contents = f"{item.get('title', '')}\n{item.get('text', '')}"
    contents = str(contents)
    doc_id = (
        str(item["id"]) if item.get("id") is not None else "sha1:" + sha1(contents.encode()).hexdigest()[:16]
    )
    return Hit(doc_id, contents, float("nan") if score is None else float(score))


def result_hit(item: Any) -> Hit:
    """One item of a server's result list: ``{"document", "score"}``, or a bare document from a
    server that sends no scores (its score is then NaN)."""
    if isinstance(item, dict) and isinstance(item.get("document"), dict):
        return document_hit(item["document"], item.get("score"))
    if isinstance(item, dict) and ("contents" in item or "title" in item or "text" in item):
        return document_hit(item)
    raise RetrievalError(
        f'expected a result item {{"document": {{"id", "contents"}}, "score": float}} or a document, '
        f"got {str(item)[:200]}"
    )


class RetrievalClient(Retriever):
    """Retrieves from one or more servers; thread-safe (one pooled ``httpx.Client``)."""

    kind = "remote"

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        api_key: str | None = None,
    ):
        if isinstance(urls, str):
            urls = [u for u in urls.split(",") if u.strip()]
        if not urls:
            raise ValueError("RetrievalClient needs at least one server URL")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.urls = [endpoint(url) for url in urls]
        self.retries = retries
        self.backoff = backoff
        headers = auth_headers(client_api_key(api_key))
        self._http = httpx.Client(timeout=timeout, transport=transport, headers=headers)
        self._turn = itertools.count()

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        start = next(self._turn)
        failures: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt and attempt % len(self.urls) == 0:
                time.sleep(self.backoff * 2 ** (attempt // len(self.urls) - 1))
            url = self.urls[(start + attempt) % len(self.urls)]
            try:
                response = self._http.post(url, json=payload)
            except httpx.TransportError as error:
                failures.append(f"{url}: {type(error).__name__}: {error}")
                continue
            if response.status_code >= 500 or response.status_code == 429:
                failures.append(f"{url}: HTTP {response.status_code}: {_message(response)}")
                continue
            if response.status_code >= 400:
                raise RetrievalError(
                    f"{url} refused the request (HTTP {response.status_code}): {_message(response)}"
                )
            try:
                return response.json()
            except ValueError:
                failures.append(f"{url}: the answer is not JSON: {response.text[:120]!r}")
        raise RetrievalError(
            f"no retrieval server answered after {self.retries + 1} attempt(s): " + " | ".join(failures)
        )

    def retrieve(self, queries: Sequence[str], topk: int = 3, return_scores: bool = True) -> list[list[Any]]:
        """The server's ``result``: per query, ``{"document", "score"}`` items or bare documents."""
        check_search_args(queries, topk)
        answer = self._post({"queries": list(queries), "topk": topk, "return_scores": return_scores})
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, list) or len(result) != len(queries):
            raise RetrievalError(
                f"expected {{'result': [...]}} with one list per query ({len(queries)}), got {str(answer)[:200]}"
            )
        return result

    def search(self, queries: Sequence[str], topk: int = 3) -> list[list[Hit]]:
        if not queries:
            return []
        return [
            [result_hit(item) for item in hits] for hits in self.retrieve(queries, topk, return_scores=True)
        ]

    def health(self) -> dict[str, Any]:
        """``GET /health`` of the next server (agentgym servers; Search-R1's own server has none)."""
        url = endpoint(self.urls[next(self._turn) % len(self.urls)], "/health")
        try:
            response = self._http.get(url)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RetrievalError(f"{url}: {type(error).__name__}: {error}") from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RetrievalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(body)[:300]
