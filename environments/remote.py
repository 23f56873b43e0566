"""An environment served by ``agentgym serve env`` on another process or machine.

Example::

    # on the environment machine
    agentgym serve env --env webshop catalogue=small --host 0.0.0.0 --port 8001
    # on the trainer's
    env = agentgym.make("remote", url="http://10.0.0.5:8001")
    agentgym eval --env remote --policy expert env_kwargs.url=http://10.0.0.5:8001

Each instance opens a session on the server (one environment there) and closes it in ``close``.
When that session is gone (the server closed it as idle, or restarted) or stuck (a call on it
outlasted ``timeout``: the call fails, and may still run there), the next ``reset`` starts on a new
session, as the rollout engine replaces a local environment that hung.
A server started with an API key needs it: ``api_key=``, or ``$AGENTGYM_API_KEY`` when none is
given (which keeps it out of configuration files and run directories).
Other keyword options are the served environment's own and are checked against the server's (a
recipe's ``env_kwargs: {catalogue: small}`` then holds only against a server started with
``catalogue=small``); they cannot change it. Instructions, action format and splits are the served
environment's, read from ``GET /spec``, and so is the turn limit the rollout engine keeps to
(``max_episode_steps``); the info dict is the served one, with the anchor's lists
read back as tuples so that it stays hashable for step grouping. A request the server refuses raises
:class:`AgentGymError` with its message (``NotImplementedError`` for an environment without a
scripted expert); one it fails on, or a connection that breaks, raises :class:`RemoteEnvError`.
Steps are never retried: an environment step is not idempotent.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from agentgym.core import AgentGymError, TaskId, TextEnv
from agentgym.tools.servers import auth_headers, client_api_key


class RemoteEnvError(AgentGymError):
    """The environment server failed, or could not be reached."""


class _SessionClosed(AgentGymError):
    """The server holds no session by this instance's id any more (closed as idle, or restarted)."""


#: Seconds to wait for the closing of a session whose call timed out: the server closes it once that
#: call ends, which this instance does not wait for.
ABANDONED_SESSION_WAIT = 1.0

#: What ``GET /spec`` of an environment server answers, and this client reads.
SPEC_KEYS = ("env", "options", "instructions", "action_format", "splits", "max_episode_steps")


def frozen(value: Any) -> Any:
    """JSON lists (nested) as tuples: a served anchor back to a hashable key."""
    if isinstance(value, list):
        return tuple(frozen(item) for item in value)
    return value


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python values, for a JSON body: a task id drawn with numpy
    (``rng.choice(task_ids)``) is as good an id here as it is to a local environment."""
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_options(url: str, served: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raises unless the server's environment was made with ``expected`` (a recipe's env options);
    an option given at its default value matches a server that left it at its default."""
    options = served["options"]
    wrong = []
    for key, value in expected.items():
        if key not in options:
            wrong.append(f"no option {key} it can report")
        elif options[key] != json.loads(json.dumps(jsonable(value))):  # as the server sent its own: in JSON
            wrong.append(f"{key}={options[key]!r}")
    if wrong:
        wanted = ", ".join(f"{key}={value!r}" for key, value in expected.items())
        raise AgentGymError(
            f"remote: {url} serves {served['env']} with {', '.join(wrong)}; expected {wanted}. "
            "Serve it with those options, or leave them out here"
        )


class RemoteEnv(TextEnv):
    """An environment served by `agentgym serve env`, reached at url=...; it acts as the served one."""

    parallelism = "thread"  # waiting on the network: threads overlap the requests

    def __init__(
        self,
        url: str | None = None,
        timeout: float = 60.0,
        render_mode: str | None = None,
        client: httpx.Client | None = None,
        api_key: str | None = None,
        **served_options: Any,
    ):
        super().__init__(render_mode)
        if not url:
            raise AgentGymError(
                "remote: pass url=, the address of an `agentgym serve env` server (e.g. http://host:8001)"
            )
        if not url.startswith(("http://", "https://")):
            raise RemoteEnvError(f"remote: url={url!r} has no http:// or https:// scheme (e.g. http://{url})")
        self.url = url.rstrip("/")
        self._headers = auth_headers(client_api_key(api_key))
        try:
            self._http = client or httpx.Client(base_url=self.url, timeout=timeout)
        except httpx.InvalidURL as error:
            raise RemoteEnvError(f"remote: url={url!r} is not a valid address: {error}") from None
        self._owns_http = client is None
        self._session: str | None = None
        self._served_options = served_options
        self._abandoned = False  # a call on the session timed out: see _request
        try:
            self._open_session(served_options)
        except BaseException:
            self.close()  # the client this made, which nothing else would close
            raise

    def _open_session(self, served_options: dict[str, Any]) -> None:
        served = self._request("GET", "/spec")
        missing = [key for key in SPEC_KEYS if key not in served] if isinstance(served, dict) else SPEC_KEYS
        if missing:
            raise RemoteEnvError(
                f"environment server {self.url}: GET /spec answered {str(served)[:200]}, without "
                f"{', '.join(missing)}; is it an `agentgym serve env` server?"
            )
        check_options(self.url, served, served_options)
        self.instructions = served["instructions"]
        self.action_format = served["action_format"]
        self.tools = served.get("tools")  # servers before tools were served do not send them
        self.splits = tuple(served["splits"])
        self.max_episode_steps: int | None = served["max_episode_steps"]  # the server's; rollouts keep to it
        self._session = self._request("POST", "/sessions")["session"]

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, headers=self._headers, **kwargs)
        except httpx.HTTPError as error:
            if isinstance(error, httpx.TimeoutException) and path.startswith("/sessions/"):
                # The call may still run there, holding the session: the next episode starts on a
                # new one rather than waiting behind it (as a local environment that hung is replaced).
                self._abandoned = True
            raise RemoteEnvError(f"environment server {self.url}: {type(error).__name__}: {error}") from None
        if 300 <= response.status_code < 400:  # httpx follows no redirect, and a served answer is never one
            location = response.headers.get("location", "elsewhere")
            raise RemoteEnvError(
                f"environment server {self.url}: {method} {path} was redirected (HTTP {response.status_code}) "
                f"to {location}; pass the address the server answers at"
            )
        if response.status_code < 300:
            try:
                return response.json()
            except ValueError:
                raise RemoteEnvError(
                    f"environment server {self.url}: {method} {path} answered {response.text[:200]!r}, "
                    "not JSON; is it an `agentgym serve env` server?"
                ) from None
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        if response.status_code == 501:
            raise NotImplementedError(message)
        if response.status_code == 404 and path.startswith("/sessions/"):
            raise _SessionClosed(f"environment server {self.url} refused {method} {path}: {message}")
        if response.status_code < 500 and response.status_code != 429:
            raise AgentGymError(f"environment server {self.url} refused {method} {path}: {message}")
        raise RemoteEnvError(f"environment server {self.url}: HTTP {response.status_code}: {message}")

    def _anew(self, method: str, action: str, **kwargs: Any) -> dict[str, Any]:
        """A request that needs nothing of the episode so far (a reset, the task list), on a new
        session when this instance's is gone or stuck. Steps are never redone so."""
        if self._abandoned:
            self._close_session()
        if self._session is None:
            self._open_session(self._served_options)
        try:
            return self._request(method, self._path(action), **kwargs)
        except _SessionClosed:  # closed by the server: idle while this instance waited, or restarted since
            self._session = None
            self._open_session(self._served_options)
            return self._request(method, self._path(action), **kwargs)

    def _path(self, action: str) -> str:
        if self._abandoned or self._session is None:
            why = (
                "a call on its session timed out and may still run there"
                if self._abandoned
                else "opening one failed"
            )
            raise RemoteEnvError(f"environment server {self.url}: {why}; reset() starts a new session")
        return f"/sessions/{self._session}/{action}"

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        answer = self._anew("POST", "reset", json={"seed": seed, "options": jsonable(options)})
        return self._observe(answer["observation"]), self._info(answer["info"])

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        answer = self._request("POST", self._path("step"), json={"action": action})
        return (
            self._observe(answer["observation"]),
            float(answer["reward"]),
            bool(answer["terminated"]),
            bool(answer["truncated"]),
            self._info(answer["info"]),
        )

    def task_ids(self, split: str) -> Sequence[TaskId]:
        return self._anew("GET", "tasks", params={"split": split})["task_ids"]

    def expert_action(self) -> str:
        return self._request("GET", self._path("expert"))["action"]

    @staticmethod
    def _info(info: dict[str, Any]) -> dict[str, Any]:
        if "anchor" in info:
            info["anchor"] = frozen(info["anchor"])
        return info

    def _close_session(self) -> None:
        """Closes the session on the server; one whose call timed out closes there once that call
        ends, without this instance waiting for it."""
        if self._session is None:
            return
        session, self._session = self._session, None
        wait = {"timeout": ABANDONED_SESSION_WAIT} if self._abandoned else {}
        # a server that is gone, or already dropped the session, holds nothing left to free
        with contextlib.suppress(AgentGymError):
            self._request("DELETE", f"/sessions/{session}", **wait)
        self._abandoned = False

    def close(self) -> None:
        self._close_session()
        if self._owns_http:
            self._http.close()
        super().close()
