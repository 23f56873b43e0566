from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from agentgym.config import apply_override, load_config, parse_value
from agentgym.core import AgentGymError


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = 1e-3
    mode: str = "std"


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "run"
    steps: int = 10
    trainer: Inner = Inner()


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str | None = "hi"
    out: Path | None = None
    kind: Literal["hf", "vllm"] = "hf"
    modules: str | list[str] = "all"
    kwargs: dict[str, Any] = {}
    trainer: Inner = Inner()


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1e-6", 1e-6),
        ("3", 3),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ("hello", "hello"),
        ("a b", "a b"),
        ("null", None),
    ],
)
def test_override_values_parse_as_json_then_yaml_then_text(raw, value):
    assert parse_value(raw) == value


def test_file_then_flags_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: from-file\nsteps: 5\ntrainer:\n  lr: 0.5\n")
    config = load_config(Outer, path, {"steps": 7, "name": None}, ["trainer.mode=mean", "trainer.lr=1e-6"])
    assert config == Outer(name="from-file", steps=7, trainer=Inner(lr=1e-6, mode="mean"))


def test_errors_name_the_key_and_the_value():
    with pytest.raises(AgentGymError, match=r"trainer.lr: .*valid number.*'fast'"):
        load_config(Outer, overrides=["trainer.lr=fast"])
    with pytest.raises(AgentGymError, match=r"trainer.lrr: Extra inputs are not permitted"):
        load_config(Outer, overrides=["trainer.lrr=1"])
    with pytest.raises(AgentGymError, match="expected key=value"):
        apply_override({}, "trainer.lr")
    with pytest.raises(AgentGymError, match="does not exist"):
        load_config(Outer, "missing.yaml")


def test_a_config_path_that_is_no_yaml_file_is_a_one_line_error(tmp_path):
    binary = tmp_path / "model.safetensors"
    binary.write_bytes(bytes(range(128, 256)))
    with pytest.raises(AgentGymError, match="is not valid YAML"):
        load_config(Outer, binary)
    with pytest.raises(AgentGymError, match="cannot be read: Is a directory"):
        load_config(Outer, tmp_path)


def test_overrides_leave_the_given_dicts_as_they_were():
    # A sweep over one base: each configuration gets its own overrides and no other.
    base = {"trainer": {"lr": 0.5}}
    first = load_config(Outer, [base], None, ["trainer.mode=mean"])
    second = load_config(Outer, [base], None, ["steps=3"])
    assert first.trainer == Inner(lr=0.5, mode="mean")
    assert second == Outer(steps=3, trainer=Inner(lr=0.5))
    flags = {"trainer": {"mode": "mean"}}
    load_config(Outer, None, flags, ["trainer.lr=0.1"])
    assert base == {"trainer": {"lr": 0.5}} and flags == {"trainer": {"mode": "mean"}}


@pytest.mark.parametrize(
    ("override", "field", "value"),
    [
        ("prompt=Answer: briefly", "prompt", "Answer: briefly"),
        ("prompt=001", "prompt", "001"),
        ("prompt=no", "prompt", "no"),
        ("prompt=[draft]", "prompt", "[draft]"),
        ("prompt=null", "prompt", None),
        ("out=2024", "out", Path("2024")),
        ("trainer.mode=no", "trainer", Inner(mode="no")),
        ("modules=[q_proj, v_proj]", "modules", ["q_proj", "v_proj"]),
        ("kwargs.split=no", "kwargs", {"split": False}),
        ("trainer.lr=1e-2", "trainer", Inner(lr=1e-2)),
    ],
)
def test_an_override_of_a_text_field_keeps_its_text(override, field, value):
    """YAML would read these as a mapping, a number, a bool or a list; the field asks for text."""
    assert getattr(load_config(Texts, overrides=[override]), field) == value
