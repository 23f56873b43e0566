"""Pure functions that turn a completion into an environment action.

Formats:

- ``tags``: ``<think>...</think><action>...</action>``; exactly one action block, think optional
  (``require_think`` makes it mandatory).
- ``raw``: the completion is the action (environments that parse their own protocol, such as
  Search-R1's ``<search>``/``<answer>`` tags).
- ``tool_call``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; the action is the
  call as canonical JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

ActionFormat = Literal["tags", "raw", "tool_call"]

_ACTION = re.compile(r"<action>(.*?)</action>", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class ParsedAction:
    action: str
    valid: bool
    error: str = ""
    thought: str = ""


def parse_action(
    text: str, action_format: ActionFormat = "tags", require_think: bool = False
) -> ParsedAction:
    """Extracts the action from ``text``; an unusable completion gives ``valid=False``, never raises."""
    if action_format == "raw":
        return ParsedAction(text.strip(), bool(text.strip()), "" if text.strip() else "empty completion")
    if action_format == "tool_call":
        return _parse_tool_call(text)
    thoughts = _THINK.findall(text)
    actions = _ACTION.findall(_THINK.sub("", text))  # an action quoted in the thought is not one
    thought = thoughts[0].strip() if thoughts else ""
    if len(actions) != 1:
        error = (
            "no <action>...</action> block"
            if not actions
            else f"{len(actions)} <action> blocks, expected one"
        )
        return ParsedAction(actions[-1].strip() if actions else "", False, error, thought)
    action = actions[0].strip()
    if not action:
        return ParsedAction("", False, "empty <action> block", thought)
    if require_think and not thoughts:
        return ParsedAction(action, False, "no <think>...</think> block", thought)
    return ParsedAction(action, True, "", thought)


def _parse_tool_call(text: str) -> ParsedAction:
    calls = _TOOL_CALL.findall(text)
    if len(calls) != 1:
        return ParsedAction("", False, "expected exactly one <tool_call> block")
    try:
        call = json.loads(calls[0])
        name, arguments = call["name"], call.get("arguments", {})
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise TypeError("name must be a string and arguments an object")
    # RecursionError: JSON nested past the parser's depth (a sampler stuck repeating "[")
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        return ParsedAction("", False, f"malformed tool call: {error}")
    return ParsedAction(json.dumps({"name": name, "arguments": arguments}, sort_keys=True), True)


def format_action(action: str, action_format: ActionFormat = "tags", thought: str = "") -> str:
    """The completion text that :func:`parse_action` reads back as ``action`` (for scripted policies)."""
    if action_format == "raw":
        return action
    if action_format == "tool_call":
        return f"<tool_call>{action}</tool_call>"
    think = f"<think>{thought}</think>" if thought else ""
    return f"{think}<action>{action}</action>"
