"""Typed configuration: a YAML file, then CLI flags, then dotted overrides, validated by pydantic.

Example::

    config = load_config(EvalConfig, "eval.yaml", {"env": "webshop"}, ["sampling.temperature=0.7"])

Override values are read as JSON where they parse (``1e-6``, ``true``, ``[1, 2]``), else as YAML,
else as plain strings, except for a field that only takes text (a string, a path, a choice of
strings): that gets the text as written, so ``system_prompt=Answer: briefly`` stays a sentence and
``out=2024`` a folder name (``null`` still clears a field that may be None). Errors name the
offending key and the accepted values.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from agentgym.core import AgentGymError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _field_type(model: type[BaseModel] | None, path: Sequence[str]) -> Any:
    """The annotation of the field at ``path`` in ``model``, or None where it is not declared."""
    annotation: Any = model
    for part in path:
        models = [t for t in _members(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        field = models[0].model_fields.get(part) if len(models) == 1 else None
        if field is None:
            return None
        annotation = field.annotation
    return annotation


def _members(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``str | None`` -> str, NoneType), else the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)


def _takes_only_text(annotation: Any) -> bool:
    kinds = [t for t in _members(annotation) if t is not type(None)]
    return bool(kinds) and all(
        t in (str, Path)
        or (get_origin(t) is Literal and all(isinstance(value, str) for value in get_args(t)))
        for t in kinds
    )


def apply_override(data: dict[str, Any], override: str, model: type[BaseModel] | None = None) -> None:
    """Sets ``data["a"]["b"] = value`` for ``"a.b=value"``, creating intermediate tables; where
    ``model`` declares ``a.b`` as text only, the value is the text as written."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise AgentGymError(f"bad override {override!r}: expected key=value, e.g. trainer.lr=1e-6")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise AgentGymError(f"bad override {override!r}: {part!r} is not a table")
        node = child
    annotation = _field_type(model, [*parents, leaf])
    if _takes_only_text(annotation) and not (raw == "null" and type(None) in _members(annotation)):
        node[leaf] = raw
    else:
        node[leaf] = parse_value(raw)


def parse_overrides(overrides: Sequence[str] | None) -> dict[str, Any]:
    """``["catalogue=small", "a.b=1"]`` -> ``{"catalogue": "small", "a": {"b": 1}}``."""
    data: dict[str, Any] = {}
    for override in overrides or []:
        apply_override(data, override)
    return data


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``update``'s keys over ``base``'s, table by table. Tables are copied, never
    shared, so overrides applied to the result leave the caller's dicts as they were."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict):
            merged[key] = _merge(merged[key] if isinstance(merged.get(key), dict) else {}, value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise AgentGymError(f"config file {str(path)!r} does not exist") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:  # a checkpoint or other binary file, say
        raise AgentGymError(f"config file {str(path)!r} is not valid YAML: {error}") from None
    except OSError as error:  # a directory, an unreadable file
        raise AgentGymError(f"config file {str(path)!r} cannot be read: {error.strerror}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise AgentGymError(f"config file {str(path)!r} must hold a mapping, got {type(loaded).__name__}")
    return loaded or {}


def load_config(
    model: type[ConfigT],
    path: str | Path | list[str | Path | dict[str, Any] | None] | None = None,
    values: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> ConfigT:
    """Files or already-read dicts (later ones win) < ``values`` (CLI flags that were given) <
    ``overrides`` (``key.sub=value``).

    ``values`` entries that are None were not given; nested dicts merge key by key.
    """
    data: dict[str, Any] = {}
    for file in path if isinstance(path, list) else [path]:
        if file is not None:
            data = _merge(data, file if isinstance(file, dict) else read_yaml(file))
    data = _merge(data, {key: value for key, value in (values or {}).items() if value is not None})
    for override in overrides or []:
        apply_override(data, override, model)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise AgentGymError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        got = (
            f" (got {item['input']!r})"
            if item["type"] not in ("missing",) and not isinstance(item["input"], dict)
            else ""
        )
        problems.append(f"{where}: {item['msg']}{got}")
    return "invalid configuration: " + "; ".join(problems)


# The x86 instruction sets a run may hold torch's and MKL's CPU kernels to (see
# agentgym.policies.hf.pin_cpu_arithmetic).
CpuKernels = Literal["avx2", "avx512"]


def dump_config(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def replace_text(path: Path, text: str) -> None:
    """Writes ``text`` to a hidden sibling renamed over ``path``: a kill mid-write leaves the old
    content whole, where writing in place would have truncated it first."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
