"""An environment server: any registered environment over HTTP, one instance per session.

Start one with ``agentgym serve env --env webshop catalogue=small --port 8001`` or::

    serve("webshop", {"catalogue": "small"}, host="127.0.0.1", port=8001)

and reach it with ``agentgym.make("remote", url="http://127.0.0.1:8001")`` (see
``agentgym.environments.remote``), so that rollouts run on one machine and the environments on
another. The protocol (JSON bodies and answers):

==========================================  ============================================================
``GET /health``                             ``{"status": "ok", "env": id, "sessions": n}``
``GET /spec``                               ``{"env", "env_kwargs", "options", "instructions",
                                            "action_format", "tools", "splits",
                                            "max_episode_steps"}``
``POST /sessions``                          makes an instance: ``{"session": id}`` (429 when full,
                                            503 when the server stopped while making it)
``POST /sessions/{id}/reset``               ``{"seed": int | null, "options": {...} | null}`` ->
                                            ``{"observation": str, "info": {...}}``
``POST /sessions/{id}/step``                ``{"action": str}`` -> ``{"observation", "reward",
                                            "terminated", "truncated", "info"}``
``GET /sessions/{id}/tasks?split=S``        ``{"task_ids": [...]}``
``GET /sessions/{id}/expert``               ``{"action": str}`` (501 without a scripted expert)
``DELETE /sessions/{id}``                   closes the instance
==========================================  ============================================================

Errors come as ``{"error": "<what is wrong>"}``: 401 without the server's API key when it has one
(``--api-key``; ``/health`` needs none), 404 for an unknown session, 422 for a malformed
body or a request the environment refuses (an unknown task, a step before reset), 500 when the
environment fails (answered on the same connection, which stays open); none stops the server or
the other sessions. ``env_kwargs`` are the options the server was started with, ``options`` every
option the environment was made with, defaults included (those with JSON values), and
``max_episode_steps`` the made environment's turn limit. Calls on one session run one at a
time; sessions run in parallel, all ``max_sessions`` of them, and while another is being made.
Sessions idle for ``idle_timeout`` seconds (counted from the end of their last call) are closed
when room is needed for a new one; stopping the server closes them all.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
import gymnasium
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from gymnasium.error import ResetNeeded
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from agentgym.core import AgentGymError
from agentgym.registry import entry_point_of, make, short_id, spec, turn_limit
from agentgym.tools.servers import KEEP_ALIVE, require_api_key


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = Field(default=None, ge=0)
    options: dict[str, Any] | None = None


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: StrictStr


class _Refused(Exception):
    """A request the environment refuses (422), as opposed to one it fails on (500)."""


class _Failed(Exception):
    """An environment failure (500). Its own exception class, unlike a bare ``Exception``, is
    answered without closing the connection, so the client's next request on it goes through."""


class _UnknownSession(Exception):
    pass


REFUSALS = (AgentGymError, ValueError, KeyError, IndexError, ResetNeeded)
"""What an environment raises for a request it cannot serve (an unknown task, a step before reset)."""


def is_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_json(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return all(is_json(item) for item in value)
    return value is None or isinstance(value, bool | int | float | str)


def resolved_options(env_spec: gymnasium.envs.registration.EnvSpec, env_kwargs: dict[str, Any]) -> dict:
    """Every option an instance is made with: the constructor's defaults, then the registered ones,
    then ``env_kwargs``; those whose values JSON can carry."""
    try:
        parameters = inspect.signature(entry_point_of(env_spec)).parameters.values()
    except (TypeError, ValueError):
        parameters = []
    options = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    options.update(env_spec.kwargs, **env_kwargs)
    options.pop("render_mode", None)
    return {key: plain(value) for key, value in options.items() if is_json(value)}


def plain(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars and arrays as Python values, for JSON."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class _Session:
    def __init__(self, env: gymnasium.Env):
        self.env = env
        self.lock = threading.Lock()  # one call at a time; closing waits for the call in flight
        self.last_used = time.monotonic()
        self.closed = False

    def close(self) -> None:
        """Closes the environment; the caller holds ``lock``."""
        self.closed = True  # a call that found the session before it left the table, and waits, sees it
        self.env.close()


SHUTDOWN_WAIT = 5.0
"""Seconds a stopping server waits, in all, for calls in flight before leaving their sessions to the exit."""


def close_quietly(session: _Session, wait: float) -> bool:
    """Closes ``session`` once no call runs on it (waiting up to ``wait`` seconds); False if one still
    runs. A failure to close is not reported: the session's client has gone."""
    if not session.lock.acquire(timeout=max(wait, 0.0)):
        return False
    try:
        with contextlib.suppress(Exception):
            session.close()
    finally:
        session.lock.release()
    return True


def create_app(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    *,
    max_sessions: int = 256,
    idle_timeout: float = 600.0,
    api_key: str | None = None,
) -> FastAPI:
    """The FastAPI application serving instances of ``env_id`` made with ``env_kwargs``; with
    ``api_key``, only to requests that send it (see :mod:`agentgym.tools.servers`)."""
    env_kwargs = dict(env_kwargs or {})
    env_spec = spec(env_id)
    name = short_id(env_spec.id)
    try:
        probe = make(name, **env_kwargs)  # bad options fail here, at start, not per session
    except AgentGymError:
        raise
    except Exception as error:  # a missing data file, an option of the wrong type: one line, not a traceback
        raise AgentGymError(f"cannot serve {name}: {type(error).__name__}: {error}") from error
    description = {
        "env": name,
        "env_kwargs": plain(env_kwargs),
        "options": resolved_options(env_spec, env_kwargs),
        "instructions": probe.unwrapped.instructions,
        "action_format": probe.unwrapped.action_format,
        "tools": plain(probe.unwrapped.tools),
        "splits": list(probe.unwrapped.splits),
        "max_episode_steps": turn_limit(env_spec, env_kwargs),
    }
    probe.close()
    sessions: dict[str, _Session] = {}
    opening = 0  # sessions being made, outside the lock: they count against max_sessions already
    stopped = False
    table_lock = threading.Lock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal stopped
        # Routes run in Starlette's thread pool, 40 threads by default: every session's call needs
        # one, as may one more waiting behind it (a client that timed out and called again).
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, 2 * max_sessions + 8)
        yield
        # A stopped server frees what its sessions hold (browsers, containers, subprocesses), which
        # the process exit alone leaves running.
        with table_lock:
            open_sessions = list(sessions.values())
            sessions.clear()
            stopped = True  # a session still being made is closed once it is
        deadline = time.monotonic() + SHUTDOWN_WAIT
        for session in open_sessions:
            close_quietly(session, wait=deadline - time.monotonic())

    app = FastAPI(title=f"agentgym {name} environment server", lifespan=lifespan)
    require_api_key(app, api_key)

    @app.exception_handler(_UnknownSession)
    async def unknown_session(request: Request, error: _UnknownSession) -> JSONResponse:
        return JSONResponse({"error": f"no session {error} (closed, or never opened)"}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e.get('loc', ()) if part != 'body') or 'body'}: {e.get('msg')}"
            for e in error.errors()
        )
        return JSONResponse({"error": f"malformed request: {problems}"}, status_code=422)

    @app.exception_handler(_Refused)
    async def refused(request: Request, error: _Refused) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=422)

    @app.exception_handler(NotImplementedError)
    async def not_implemented(request: Request, error: NotImplementedError) -> JSONResponse:
        return JSONResponse({"error": str(error) or "not implemented"}, status_code=501)

    @app.exception_handler(_Failed)
    async def failed(request: Request, error: _Failed) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=500)

    def failure(error: Exception) -> _Failed:
        return _Failed(f"{name} failed: {type(error).__name__}: {error}")

    def call(session_id: str, method: Callable[[gymnasium.Env], Any]) -> Any:
        """``method(env)`` on the session's environment, one call at a time per session."""
        with table_lock:
            session = sessions.get(session_id)
        if session is None:
            raise _UnknownSession(session_id)
        with session.lock:
            if session.closed:
                raise _UnknownSession(session_id)
            try:
                return method(session.env)
            except REFUSALS as error:
                raise _Refused(f"{type(error).__name__}: {error}") from error
            except NotImplementedError:
                raise
            except Exception as error:
                raise failure(error) from error
            finally:
                # idle from the end of the call: its client only now gets the answer of a long step
                session.last_used = time.monotonic()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "env": name, "sessions": len(sessions)}

    @app.get("/spec")
    def describe() -> dict[str, Any]:
        return description

    @app.post("/sessions", status_code=201, response_model=None)
    def open_session() -> dict[str, str] | JSONResponse:
        nonlocal opening
        with table_lock:
            if len(sessions) + opening >= max_sessions:
                now = time.monotonic()
                for key, idle in list(sessions.items()):
                    # a session whose lock is taken has a call in flight or waiting: not idle
                    if now - idle.last_used > idle_timeout and close_quietly(idle, wait=0):
                        del sessions[key]
            if len(sessions) + opening >= max_sessions:
                return JSONResponse(
                    {"error": f"all {max_sessions} sessions are in use; close one or try again later"}, 429
                )
            opening += 1  # its room taken, so that concurrent opens cannot pass the limit together
        session_id = uuid.uuid4().hex  # never reused, so a stale id cannot reach another's session
        session, kept = None, False
        try:
            # made outside the lock: the other sessions' calls go on meanwhile (a browser or a
            # container can take seconds to start)
            session = _Session(make(name, **env_kwargs))
        except Exception as error:
            raise failure(error) from error
        finally:
            with table_lock:
                opening -= 1
                kept = session is not None and not stopped
                if kept:
                    sessions[session_id] = session
        if not kept:  # made while the server stopped, after it closed the others
            close_quietly(session, wait=0)
            return JSONResponse({"error": "the server is stopping"}, 503)
        return {"session": session_id}

    @app.delete("/sessions/{session_id}")
    def close_session(session_id: str) -> dict[str, bool]:
        with table_lock:
            session = sessions.pop(session_id, None)
        if session is None:
            raise _UnknownSession(session_id)
        with session.lock:  # after a call in flight on it
            try:
                session.close()
            except Exception as error:
                raise failure(error) from error
        return {"closed": True}

    @app.post("/sessions/{session_id}/reset")
    def reset(session_id: str, request: ResetRequest) -> dict[str, Any]:
        observation, info = call(
            session_id, lambda env: env.reset(seed=request.seed, options=request.options)
        )
        return {"observation": observation, "info": plain(info)}

    @app.post("/sessions/{session_id}/step")
    def step(session_id: str, request: StepRequest) -> dict[str, Any]:
        observation, reward, terminated, truncated, info = call(
            session_id, lambda env: env.step(request.action)
        )
        return {
            "observation": observation,
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "info": plain(info),
        }

    @app.get("/sessions/{session_id}/tasks")
    def tasks(session_id: str, split: str) -> dict[str, list[Any]]:
        return {"task_ids": plain(list(call(session_id, lambda env: env.unwrapped.task_ids(split))))}

    @app.get("/sessions/{session_id}/expert")
    def expert(session_id: str) -> dict[str, str]:
        return {"action": call(session_id, lambda env: env.unwrapped.expert_action())}

    return app


def serve(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
    port: int = 8001,
    log_level: str = "warning",
    api_key: str | None = None,
    **limits: Any,
) -> None:
    """Serves ``env_id`` until interrupted (``limits``: see :func:`create_app`)."""
    import uvicorn

    app = create_app(env_id, env_kwargs, api_key=api_key, **limits)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=KEEP_ALIVE)
