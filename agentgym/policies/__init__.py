"""Policies and the model specs the CLI accepts.

``make_policy(spec)`` understands:

==============================  ==================================================================
``expert`` / ``random``         the environment's scripted expert / a uniformly random agent
``openai:<base_url>#<model>``   any OpenAI-compatible server, e.g. ``openai:http://localhost:8000/v1#qwen``
``hf:<path or hub id>``         a transformers model (CPU or GPU)
``vllm:<path>``                 an in-process vLLM engine over a local model directory
a local directory               a transformers model saved there
a ``.gguf`` file                converted once into a model directory in the cache (also after
                                ``hf:`` or ``vllm:``)
a registered name               e.g. ``tiny`` or ``smollm2-135m`` (registered by agentgym.trainers)
``<org>/<name>``                a hub id (needs network access or a filled local cache)
==============================  ==================================================================
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from agentgym.core import AgentGymError
from agentgym.plugins import Registry
from agentgym.policies.base import Completion, Message, Policy, SamplingParams, ScriptedPolicy
from agentgym.policies.model_store import convert_gguf, is_gguf_file
from agentgym.policies.scripted import ExpertPolicy, RandomPolicy

#: name -> factory(**kwargs) returning a policy; the ``agentgym.policies`` entry-point group adds more.
POLICIES: Registry[Any] = Registry("policy", entry_point_group="agentgym.policies")
POLICIES.register("expert", ExpertPolicy)
POLICIES.register("random", RandomPolicy)


def model_directory(spec: str) -> Path | None:
    """The local directory a model spec names, or None for a hub id (``name`` or ``org/name``).

    A spec written as a path (``/abs``, ``./rel``, ``~/x``, ``a/b/c``) that is not a directory is an
    error, rather than a hub lookup that would fail with a message about repository names, and so is
    a directory without a model's ``config.json`` (a training run, whose model is in ``model/``)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        _check_model_directory(path)
        return path
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise AgentGymError(f"cannot load model {spec!r}: no such directory")
    return None


def make_policy(spec: str, **context: Any) -> Policy | ScriptedPolicy:
    """Builds the policy a spec names; a registered factory receives the ``context`` entries its
    signature declares (e.g. ``env_id`` for ``tiny``), every entry when it takes ``**kwargs``."""
    if spec.startswith("openai:"):
        from agentgym.policies.openai import OpenAIPolicy

        url, _, model = spec[len("openai:") :].partition("#")
        if not url.startswith(("http://", "https://")) or not model:
            raise AgentGymError(f"bad policy spec {spec!r}: expected openai:<http(s)://base_url>#<model>")
        return OpenAIPolicy(url, model)
    if spec.startswith("vllm:"):
        name = spec[len("vllm:") :]
        if not name:
            raise AgentGymError(f"bad policy spec {spec!r}: expected vllm:<model directory>")
        # A path that is not a model directory fails here, not as a hub-id error from inside vLLM.
        directory = convert_gguf(Path(name)) if is_gguf_file(name) else model_directory(name)
        from agentgym.policies.vllm import VLLMPolicy

        return VLLMPolicy(directory if directory is not None else name)
    name = spec.removeprefix("hf:")
    if not name:  # Path("") would be the current directory
        raise AgentGymError(f"bad policy spec {spec!r}: expected hf:<model directory or hub id>")
    directory = convert_gguf(Path(name)) if is_gguf_file(name) else model_directory(name)
    if directory is not None:
        return _hf_policy(str(directory))
    if spec.startswith("hf:"):
        return _hf_policy(name)
    if spec in POLICIES:
        factory = POLICIES.get(spec)
        # Context such as env_id is offered to every factory; each takes what it declares (all of
        # it when it takes **kwargs).
        accepted = inspect.signature(factory).parameters
        if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in accepted.values()):
            return factory(**context)
        return factory(**{key: value for key, value in context.items() if key in accepted})
    if spec.count("/") == 1 and not spec.startswith((".", "/")) and all(spec.split("/")):
        return _hf_policy(spec)
    POLICIES.get(spec)  # raises the "unknown policy" error with suggestions
    raise AssertionError("unreachable")


def _check_model_directory(directory: Path) -> None:
    """Fails with a clear message on a directory that is not a model (e.g. a training run, whose
    model is in its model/ subdirectory) before transformers fails on it with a tokenizer error."""
    if (directory / "config.json").is_file():
        return
    hint = (
        f"; the model of a training run is in {directory / 'model'}" if (directory / "model").is_dir() else ""
    )
    raise AgentGymError(
        f"cannot load model {str(directory)!r}: it has no config.json, so it is not a model directory{hint}"
    )


def _hf_policy(name_or_path: str) -> Policy:
    from agentgym.policies.hf import HFPolicy

    try:
        return HFPolicy.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:  # transformers raises ValueError on a broken model directory
        # transformers' messages run over several lines; the first alone can be a bare "one of:"
        reason = " ".join(str(error).split())[:300]
        if not Path(name_or_path).is_dir():
            reason = f"not a local model directory and not in the hub cache ({reason})"
        raise AgentGymError(f"cannot load model {name_or_path!r}: {reason}") from error


__all__ = [
    "POLICIES",
    "Completion",
    "ExpertPolicy",
    "Message",
    "Policy",
    "RandomPolicy",
    "SamplingParams",
    "ScriptedPolicy",
    "make_policy",
]
