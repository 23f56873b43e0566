"""A retrieval server speaking Search-R1's protocol (FastAPI + uvicorn).

Start one with ``agentgym serve retriever --index DIR --port 8000`` or::

    serve(load_index("indexes/kb"), host="127.0.0.1", port=8000)

``POST /retrieve`` takes ``{"queries": [str, ...], "topk": int, "return_scores": bool}`` (``topk``
defaults to the server's ``default_topk``, ``return_scores`` to false) and answers
``{"result": [...]}`` with one list per query, best first:

- with ``return_scores``: ``[{"document": {"id": ..., "contents": ...}, "score": float}, ...]``
- without: ``[{"id": ..., "contents": ...}, ...]``

exactly the shape Search-R1's ``retrieval_server.py`` returns and its generation loop reads
(``item["document"]["contents"]``). A malformed request is answered with a 4xx and
``{"error": "<what is wrong>"}`` (400 for a body that is not JSON, 422 for a body of the wrong
shape, 401 without the server's API key when it has one: ``--api-key``); a retriever failure with
a 500. Neither stops the server. ``GET /health`` answers
``{"status": "ok", "kind": ..., "num_docs": N}`` once the index is loaded, for readiness checks.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from agentgym.tools.retrieval.base import Retriever
from agentgym.tools.servers import require_api_key

EXPECTED = '{"queries": ["...", ...], "topk": <int >= 1>, "return_scores": <bool>}'


class RetrieveRequest(BaseModel):
    """The body of ``POST /retrieve``; keys other than these three are ignored."""

    model_config = ConfigDict(extra="ignore")

    queries: list[StrictStr]
    topk: StrictInt | None = Field(default=None, ge=1)
    return_scores: StrictBool = False


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


MAX_TOPK = 1000


def create_app(
    retriever: Retriever,
    *,
    default_topk: int = 3,
    max_topk: int = MAX_TOPK,
    max_queries: int = 10_000,
    api_key: str | None = None,
) -> FastAPI:
    """The FastAPI application serving ``retriever``; limits bound one request's work. With
    ``api_key``, it serves only requests that send it (see :mod:`agentgym.tools.servers`)."""
    if not 1 <= default_topk <= max_topk:
        # else every request that leaves topk to the server is refused, or fails, for a value it never sent
        raise ValueError(f"default_topk must be between 1 and max_topk={max_topk}, got {default_topk}")
    app = FastAPI(title="agentgym retriever", description="Search-R1-compatible retrieval server")
    require_api_key(app, api_key)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                {"error": f"the body is not valid JSON ({_describe(errors)}); expected {EXPECTED}"},
                status_code=400,
            )
        return JSONResponse(
            {"error": f"malformed request: {_describe(errors)}; expected {EXPECTED}"}, status_code=422
        )

    def failure(error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"retrieval failed: {type(error).__name__}: {error}"}, status_code=500)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        return failure(error)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "kind": retriever.kind, "num_docs": len(retriever)}

    @app.post("/retrieve", response_model=None)
    def retrieve(request: RetrieveRequest) -> dict[str, Any] | JSONResponse:
        topk = default_topk if request.topk is None else request.topk
        if topk > max_topk:
            return JSONResponse({"error": f"topk={topk} exceeds this server's limit of {max_topk}"}, 422)
        if len(request.queries) > max_queries:
            return JSONResponse(
                {
                    "error": f"{len(request.queries)} queries exceed this server's limit of {max_queries} per request"
                },
                422,
            )
        try:
            hits = retriever.search(request.queries, topk)
        except Exception as error:
            # Answered here: an exception left to the app's handler closes the connection after the
            # 500, and the client's next request on it (keep-alive) fails.
            return failure(error)
        if request.return_scores:
            result = [
                [{"document": {"id": h.id, "contents": h.contents}, "score": h.score} for h in query_hits]
                for query_hits in hits
            ]
        else:
            result = [[{"id": h.id, "contents": h.contents} for h in query_hits] for query_hits in hits]
        return {"result": result}

    return app


def serve(
    retriever: Retriever,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    api_key: str | None = None,
    **limits: Any,
) -> None:
    """Serves ``retriever`` until interrupted (``limits``: see :func:`create_app`)."""
    import uvicorn

    app = create_app(retriever, api_key=api_key, **limits)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
