"""What this project's HTTP servers (a retriever, an environment) share: an optional API key, and
waiting for one to come up.

With an API key, a server answers 401 to every request without ``Authorization: Bearer <key>``
except ``GET /health``, which stays open so that a health check needs no secret. Servers take the
key from ``--api-key`` or ``$AGENTGYM_API_KEY``; clients from ``api_key=`` or the same variable,
which keeps the key out of configuration files and run directories.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from typing import Any

import httpx

from agentgym.core import AgentGymError

#: The environment variable servers and clients read the API key from when none is given.
API_KEY_VARIABLE = "AGENTGYM_API_KEY"
UNAUTHORIZED = "missing or wrong API key: send 'Authorization: Bearer <key>'"
#: Seconds a server keeps an idle connection open: longer than clients keep theirs (httpx: 5 s), so
#: that a client never sends a request on a connection the server is closing at that moment (which
#: loses the request; uvicorn's default is 5 s too).
KEEP_ALIVE = 75.0


def client_api_key(api_key: str | None) -> str | None:
    """The key a client sends: ``api_key``, else ``$AGENTGYM_API_KEY``, else none; without surrounding
    whitespace (a secret file's newline), which no header value carries."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE)
    return (key.strip() or None) if key else None


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def server_api_key(api_key: str | None) -> str | None:
    """The key a server requires: ``api_key`` without surrounding whitespace (HTTP drops it from
    header values), none when it is empty; a blank one, which no request could send, is an error."""
    if api_key and not api_key.strip():  # refusing every request would hide the mistake
        raise AgentGymError("the API key is blank: give a key, or none to serve without one")
    return api_key.strip() if api_key else None


def require_api_key(app: Any, api_key: str | None) -> None:
    """Makes the FastAPI ``app`` refuse (401, ``{"error": ...}``) requests without the key,
    ``GET /health`` excepted; nothing changes when ``api_key`` is empty (see :func:`server_api_key`)."""
    api_key = server_api_key(api_key)
    if not api_key:
        return
    from fastapi import Request
    from fastapi.responses import JSONResponse

    expected = api_key.encode()

    @app.middleware("http")
    async def check_api_key(request: Request, call_next: Any) -> Any:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # the scheme's case is free (RFC 9110, 11.1); the key's is not
        valid = scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), expected)
        if request.url.path != "/health" and not valid:
            return JSONResponse({"error": UNAUTHORIZED}, status_code=401)
        return await call_next(request)


class ServerNotReady(AgentGymError):
    """A server did not answer its health check in time, or its process exited first."""


def wait_until_ready(
    url: str, timeout: float = 60.0, process: subprocess.Popen | None = None
) -> dict[str, Any]:
    """Polls ``GET /health`` of the server at ``url`` until it answers 200; returns that answer.

    Fails after ``timeout`` seconds, or as soon as ``process`` (the server's, when this caller
    started it) has exited, so a server that cannot start is reported at once. ``url`` is the
    server's address; a trailing ``/retrieve`` or ``/health`` is dropped.
    """
    health = url.strip().rstrip("/").removesuffix("/retrieve").removesuffix("/health") + "/health"
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ServerNotReady(
                    f"the server process exited with code {process.returncode} before {health} answered"
                )
            try:
                response = http.get(health)
                if response.status_code == 200:
                    return response.json()
                last = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                last = f"{type(error).__name__}"
            except ValueError:  # another service on the port, while ours is starting or failing to
                last = f"HTTP 200 that is not JSON: {response.text[:80]!r}"
            time.sleep(0.05)
    raise ServerNotReady(f"{health} did not become ready within {timeout:g} s (last: {last})")
