"""Environment registry: agentgym's ids live in gymnasium's registry under the ``agentgym/`` namespace.

Example::

    import agentgym
    agentgym.register("my-env", "my_pkg.envs:MyEnv", max_episode_steps=30, difficulty="easy")
    env = agentgym.make("my-env")            # or gymnasium.make("agentgym/my-env")

Third-party packages add environments through the entry-point group ``agentgym.environments``. An
entry point may name a function, which is called once (with no arguments) to register
environments, or an environment class, which is registered under the entry point's name::

    [project.entry-points."agentgym.environments"]
    my-env = "my_pkg.envs:MyEnv"

Entry points are loaded when ``agentgym`` is imported; a broken plugin is reported with a warning
and does not stop the others.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import re
import threading
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium
from gymnasium.envs.registration import EnvSpec

from agentgym.core import AgentGymError
from agentgym.plugins import load_object

NAMESPACE = "agentgym"
ENTRY_POINT_GROUP = "agentgym.environments"

#: options of ``gymnasium.make`` itself, which never reach the environment's constructor
GYMNASIUM_MAKE_OPTIONS = frozenset(
    name for name in inspect.signature(gymnasium.make).parameters if name not in ("id", "kwargs")
)

_plugins_loaded = False
_plugins_lock = threading.RLock()


def full_id(env_id: str) -> str:
    """``"webshop"`` -> ``"agentgym/webshop"``; a full id is returned unchanged."""
    prefix = f"{NAMESPACE}/"
    return env_id if env_id.startswith(prefix) else prefix + env_id


def short_id(env_id: str) -> str:
    prefix = f"{NAMESPACE}/"
    return env_id[len(prefix) :] if env_id.startswith(prefix) else env_id


def register(
    id: str,
    entry_point: str | Callable[..., gymnasium.Env],
    *,
    max_episode_steps: int | None = None,
    nondeterministic: bool = False,
    **kwargs: Any,
) -> None:
    """Registers an environment under ``agentgym/<id>``.

    ``entry_point`` is ``"module:Class"`` (imported only when the environment is made) or a callable
    returning the environment; ``kwargs`` are the defaults that ``make`` merges with its own.
    Registering a taken id with a different entry point, defaults or time limit is an error.
    """
    name = full_id(id)
    _check_entry_point(id, entry_point)
    existing = gymnasium.registry.get(name)
    if existing is not None:
        same = (existing.entry_point, existing.kwargs, existing.max_episode_steps, existing.nondeterministic)
        if same == (entry_point, kwargs, max_episode_steps, nondeterministic):
            return
        raise AgentGymError(
            f"environment id {short_id(name)!r} is already registered "
            f"(entry point {existing.entry_point!r}); pick another id"
        )
    try:
        gymnasium.register(
            name,
            entry_point=entry_point,
            max_episode_steps=max_episode_steps,
            nondeterministic=nondeterministic,
            # gymnasium's passive checker breaks an instance whose first reset raises (every later
            # step fails in the checker); `agentgym check-env` runs its checks on demand instead.
            disable_env_checker=True,
            kwargs=kwargs,
        )
    except gymnasium.error.Error as error:
        raise AgentGymError(f"cannot register environment id {id!r}: {error}") from None


def _check_entry_point(id: str, entry_point: str | Callable[..., gymnasium.Env]) -> None:
    # gymnasium only imports a string entry point in make(); a "pkg.module.Class" would register,
    # be listed, and fail later with a bare ValueError instead of here, where the mistake is.
    if isinstance(entry_point, str):
        module, _, attribute = entry_point.partition(":")
        if not (module and attribute):
            raise AgentGymError(
                f"cannot register environment id {id!r}: entry point {entry_point!r} is not 'module:Class'"
            )


def deregister(id: str) -> None:
    gymnasium.registry.pop(full_id(id), None)


def list_envs() -> list[str]:
    """The short ids of all registered agentgym environments, sorted."""
    load_plugins()
    prefix = f"{NAMESPACE}/"
    return sorted(short_id(name) for name in gymnasium.registry if name.startswith(prefix))


def spec(id: str) -> EnvSpec:
    """The :class:`gymnasium.envs.registration.EnvSpec` of an agentgym id (short or full); an id
    without a version names its latest registered version (``kd`` -> ``kd-v2``), as in gymnasium."""
    load_plugins()
    name = _latest_version(full_id(id))
    if name not in gymnasium.registry:
        known = list_envs()
        close = difflib.get_close_matches(short_id(id), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise AgentGymError(
            f"unknown environment {short_id(id)!r}.{hint} Run `agentgym envs` to list them "
            f"(known: {', '.join(known) or 'none'})."
        )
    return gymnasium.registry[name]


def _latest_version(name: str) -> str:
    if name in gymnasium.registry:
        return name
    versions = [
        int(match.group(1))
        for other in gymnasium.registry
        if (match := re.fullmatch(re.escape(name) + r"-v(\d+)", other))
    ]
    return f"{name}-v{max(versions)}" if versions else name


def turn_limit(env_spec: EnvSpec, kwargs: dict[str, Any]) -> int | None:
    """The time limit of an instance made with ``kwargs``: ``max_episode_steps`` among them, else the
    registered one (gymnasium.make reads it the same way); None where there is none."""
    limit = kwargs.get("max_episode_steps") or env_spec.max_episode_steps
    # gymnasium.make(max_episode_steps=-1) wraps no TimeLimit: -1 is "no limit", not a turn count.
    return None if limit == -1 else limit


def entry_point_of(env_spec: EnvSpec) -> Callable[..., gymnasium.Env]:
    """The class (or function) ``env_spec`` makes instances with, imported; an import that fails (an
    optional dependency not installed) is a one-line error naming the environment."""
    entry = env_spec.entry_point
    if not isinstance(entry, str):
        return entry
    try:
        return load_object(entry)
    except (ImportError, AttributeError) as error:
        raise AgentGymError(
            f"{short_id(env_spec.id)}: cannot import {entry} ({type(error).__name__}: {error}); "
            "install what it needs"
        ) from None


def make(id: str, **kwargs: Any) -> gymnasium.Env:
    """Creates a registered environment; ``kwargs`` override the registered defaults.

    Example::

        env = agentgym.make("webshop", catalogue="small")
        obs, info = env.reset(seed=0, options={"split": "test", "task_id": 0})
    """
    env_spec = spec(id)
    entry = entry_point_of(env_spec)
    try:
        return gymnasium.make(env_spec.id, **kwargs)
    except TypeError as error:
        accepted = _accepted_kwargs(entry)
        if accepted is not None:  # gymnasium.make takes the time limit and the checker switch itself
            accepted |= GYMNASIUM_MAKE_OPTIONS
        unknown = sorted(set(kwargs) - accepted) if accepted is not None else []
        if unknown:
            raise AgentGymError(
                f"{short_id(env_spec.id)}: unknown option(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(accepted))}"
            ) from error
        raise TypeError(f"{error} (while making {env_spec.id!r} with kwargs {kwargs})") from error


def _accepted_kwargs(factory: Callable[..., Any]) -> set[str] | None:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.name != "self"}


def load_plugins(force: bool = False) -> None:
    """Loads the ``agentgym.environments`` entry points (once per process unless ``force``)."""
    global _plugins_loaded
    with _plugins_lock:
        if _plugins_loaded and not force:
            return
        _plugins_loaded = True
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                target = entry.load()
                if inspect.isclass(target):
                    register(entry.name, entry.value)
                elif callable(target):
                    target()
                else:
                    raise TypeError(f"{entry.value} is neither a function nor an environment class")
            except Exception as error:  # a broken plugin must not break agentgym
                warnings.warn(
                    f"agentgym: could not load environment plugin {entry.name!r} ({entry.value}): {error}",
                    stacklevel=2,
                )
