"""Waiting for an HTTP server this project serves (a retriever, an environment) to come up."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx

from agentgym.core import AgentGymError


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
