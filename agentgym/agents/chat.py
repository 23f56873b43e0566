"""The default agent: step-independent chat prompts with a memory of the last K steps.

Each turn's prompt is rebuilt from scratch (system instructions, the task, the last K
observation/action pairs, the current observation and the admissible actions) instead of growing
one long conversation, so prompt length stays bounded however long the episode runs.

Example::

    agent = ChatAgent(AgentConfig(memory=2), instructions=env.unwrapped.instructions)
    agent.start(obs, info)
    messages = agent.prompt()
    parsed = agent.parse(completion_text)          # ParsedAction(action, valid, error)
    agent.record(parsed.action, next_obs, next_info)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentgym.agents.parsing import ActionFormat, ParsedAction, format_action, parse_action
from agentgym.core import AgentGymError
from agentgym.policies.base import Message
from agentgym.policies.constraints import PLACEHOLDER, AllowedCompletions

BASE_SYSTEM_PROMPT = (
    "You are an agent acting in a text environment to accomplish a task. "
    "At each step you see the current observation and choose one action."
)

FORMAT_HINTS: dict[str, str] = {
    "tags": "Reason briefly inside <think>...</think>, then give exactly one action inside <action>...</action>.",
    "raw": "",
    "tool_call": 'Call exactly one tool as <tool_call>{"name": ..., "arguments": {...}}</tool_call>.',
}

# A word a query may copy: whitespace-separated text without the brackets that delimit actions.
_WORD = re.compile(r"[^\s\[\]]+")
_CLOSING_PUNCTUATION = ",.;:!? "  # the space too, for a run that ends in words of punctuation only
# The argument of a verb[argument] action, replaced by the position under ``ordinal_items``.
_ARGUMENT = re.compile(r"\[[^\[\]]*\]$")


def ordinal_action(item_action: str, position: int) -> str:
    """``click[b0abc12345]`` at position 1 -> ``click[1]``; an action without an argument -> ``1``."""
    if _ARGUMENT.search(item_action):
        return _ARGUMENT.sub(f"[{position}]", item_action)
    return str(position)


def number_items(observation: str, item_actions: Sequence[str | None]) -> str:
    """``observation`` with ``(k) `` written before the k-th item's label, where the label (the
    action's argument, case-insensitive) is found in order. A None item keeps its position but is
    not numbered (its ordinal is taken by another action)."""
    pieces, start = [], 0
    for position, action in enumerate(item_actions, start=1):
        if action is None:
            continue
        found = _ARGUMENT.search(action)
        label = found.group(0)[1:-1] if found else action
        match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", observation[start:], re.IGNORECASE)
        if match is None:
            continue
        cut = start + match.start()
        pieces += [observation[start:cut], f"({position}) "]
        start = cut
    return "".join([*pieces, observation[start:]])


def _fill_with_spans(action: str, text: str) -> list[str]:
    """A template action (``search[<query>]``) once for every run of consecutive words of ``text``,
    the run's last word without the punctuation that ends it (``2.5 oz`` from ``2.5 oz, and ...``,
    as a query is written); any other action as it is."""
    placeholder = PLACEHOLDER.search(action)
    if placeholder is None:
        return [action]
    words = _WORD.findall(text)
    head, tail = action[: placeholder.start()], action[placeholder.end() :]
    spans = (
        " ".join(words[start:stop]).rstrip(_CLOSING_PUNCTUATION)
        for start in range(len(words))
        for stop in range(start + 1, len(words) + 1)
    )
    return list(dict.fromkeys(f"{head}{span}{tail}" for span in spans if span))


class AgentConfig(BaseModel):
    """How the agent builds prompts and reads actions."""

    model_config = ConfigDict(extra="forbid")

    memory: int = Field(default=2, ge=0, description="how many previous steps the prompt shows (K)")
    action_format: ActionFormat | None = Field(
        default=None, description="tags | raw | tool_call; None takes the environment's own format"
    )
    require_think: bool = Field(default=False, description="reject completions without a <think> block")
    show_available_actions: bool = Field(default=True, description="list the admissible actions when known")
    constrain_actions: bool = Field(
        default=False,
        description="constrained decoding: the model writes only admissible actions where the environment "
        "lists them (policies that support it: hf, vllm; not with the tool_call format)",
    )
    copy_free_text: bool | Literal["span"] = Field(
        default=False,
        description="with constrain_actions: free text in an action (a search query) is written with the "
        "tokens of the task's and the current observation's words only (true: any sequence of those "
        "tokens, not necessarily whole words), or is a run of consecutive words of the task without the "
        "punctuation that ends it ('span')",
    )
    ordinal_items: bool = Field(
        default=False,
        description="refer to the items an environment lists (info['item_actions'], e.g. the products of a "
        "WebShop results page) by position: the observation numbers them '(1) ...', the model writes "
        "click[1] for the first, and the agent sends the item's own action",
    )
    max_history_chars: int = Field(
        default=600, ge=0, description="observations in the memory are cut to this; 0 shows the actions alone"
    )
    max_listed_actions: int = Field(
        default=50, ge=1, description="at most this many admissible actions are listed"
    )
    system_prompt: str | None = Field(
        default=None, description="replaces the default system prompt ('' drops it)"
    )
    include_instructions: bool = Field(
        default=True, description="add the environment's action grammar to the system prompt"
    )

    @model_validator(mode="after")
    def _check(self) -> AgentConfig:
        if self.constrain_actions and self.require_think:
            raise ValueError("constrain_actions writes bare actions, which require_think would reject")
        if self.copy_free_text and not self.constrain_actions:
            raise ValueError(
                "copy_free_text limits constrained decoding: set constrain_actions=true, or copy_free_text=false"
            )
        return self


def _tool_list(tools: Sequence[dict[str, Any]] | None) -> str:
    """The environment's tool specs (JSON schema, OpenAI function format), one per line: a model
    calls tools it is shown, and the chat prompt is the one place it sees them."""
    if not tools:
        return ""
    return "Tools:\n" + "\n".join(json.dumps(tool, sort_keys=True) for tool in tools)


@dataclass
class _Turn:
    observation: str
    action: str


class ChatAgent:
    """Turns observations into chat prompts and completions into actions, for one episode at a time."""

    def __init__(
        self,
        config: AgentConfig | None = None,
        instructions: str = "",
        action_format: ActionFormat = "tags",
        tools: Sequence[dict[str, Any]] | None = None,
    ):
        self.config = config or AgentConfig()
        self.action_format: ActionFormat = self.config.action_format or action_format
        if self.action_format not in FORMAT_HINTS:
            raise AgentGymError(
                f"unknown action format {self.action_format!r}; use one of {', '.join(FORMAT_HINTS)}"
            )
        if self.config.constrain_actions and self.action_format == "tool_call":
            raise AgentGymError(
                "constrain_actions writes the admissible actions as they are, which are not tool calls: "
                "use the tags or raw action format, or constrain_actions=false"
            )
        base = BASE_SYSTEM_PROMPT if self.config.system_prompt is None else self.config.system_prompt
        parts = [
            base,
            instructions if self.config.include_instructions else "",
            _tool_list(tools) if self.action_format == "tool_call" else "",
            FORMAT_HINTS[self.action_format],
        ]
        self.system_prompt = "\n\n".join(part.strip() for part in parts if part and part.strip())
        self.task = ""
        self.history: list[_Turn] = []
        self._observe("", {})

    def start(self, observation: str, info: dict[str, Any]) -> None:
        self.task = str(info.get("task", ""))
        self.history = []
        self._observe(observation, info)

    def prompt(self) -> list[Message]:
        config = self.config
        lines = []
        if self.task and self.task not in self.observation:
            lines.append(f"Task: {self.task}\n")
        shown = self.history[-config.memory :] if config.memory else []
        if shown:
            lines.append(f"You have taken {len(self.history)} step(s). The last {len(shown)}:")
            for offset, turn in enumerate(shown, start=len(self.history) - len(shown) + 1):
                if config.max_history_chars:
                    observation = turn.observation
                    if len(observation) > config.max_history_chars:
                        observation = observation[: config.max_history_chars] + " ..."
                    lines.append(f"[step {offset}] observation: {observation}")
                lines.append(f"[step {offset}] action: {turn.action}")
            lines.append("")
        observation = self.observation
        if self._ordinals:
            # by the position each item's ordinal names, also when an ordinal before it was left out
            items = [
                item if ordinal_action(item, k) in self._ordinals else None
                for k, item in enumerate(self._items, start=1)
            ]
            observation = number_items(observation, items)
        lines.append(f"Current observation (step {len(self.history) + 1}):\n{observation}")
        actions = self.info.get("available_actions")
        if config.show_available_actions and actions:
            listed = [self._written(str(action)) for action in actions[: config.max_listed_actions]]
            more = f" (and {len(actions) - len(listed)} more)" if len(actions) > len(listed) else ""
            lines.append("\nAdmissible actions: " + ", ".join(listed) + more)
        user = {"role": "user", "content": "\n".join(lines)}
        return [{"role": "system", "content": self.system_prompt}, user] if self.system_prompt else [user]

    def allowed_completions(self) -> AllowedCompletions | None:
        """The completions constrained decoding allows now: the admissible actions in this agent's
        format (None when not constraining or the environment lists no actions)."""
        actions = self.info.get("available_actions")
        if not self.config.constrain_actions or not actions:
            return None
        actions = [str(action) for action in actions]
        words = None
        if self.config.copy_free_text == "span":
            actions = [filled for action in actions for filled in _fill_with_spans(action, self.task)]
        elif self.config.copy_free_text:
            words = _WORD.findall(f"{self.task} {self.observation}")
        allowed = AllowedCompletions.from_actions(actions, self.format, words)
        # nothing left to write (a span of an empty task): leave the turn free rather than stuck
        return allowed if allowed.exact or allowed.open_prefixes else None

    def parse(self, completion: str) -> ParsedAction:
        parsed = parse_action(completion, self.action_format, self.config.require_think)
        item = self._ordinals.get(parsed.action)
        return parsed if item is None else replace(parsed, action=item)

    def format(self, action: str, thought: str = "") -> str:
        """The completion a model would write to take ``action`` (scripted policies, SFT targets);
        under ``require_think`` it has a think block, empty when no ``thought`` is given."""
        completion = format_action(self._written(action), self.action_format, thought)
        if self.config.require_think and self.action_format == "tags" and not thought:
            # an empty thought still passes require_think, so SFT on these targets is not all invalid
            completion = "<think></think>" + completion
        return completion

    def _observe(self, observation: str, info: dict[str, Any]) -> None:
        self.observation, self.info = observation, info
        # Under ordinal_items: ordinal action -> the listed item's action on this page, and back. An
        # ordinal that another admissible action already spells is left out.
        items = [str(item) for item in info.get("item_actions") or []] if self.config.ordinal_items else []
        self._items = items
        taken = {str(action) for action in info.get("available_actions") or []} - set(items)
        ordinals = {ordinal_action(item, k): item for k, item in enumerate(items, start=1)}
        self._ordinals = {ordinal: item for ordinal, item in ordinals.items() if ordinal not in taken}
        self._ordinal_of = {item: ordinal for ordinal, item in self._ordinals.items()}

    def _written(self, action: str) -> str:
        """How the model writes ``action``: its ordinal when it is a listed item, else itself."""
        return self._ordinal_of.get(action, action)

    def record(self, action: str, observation: str, info: dict[str, Any]) -> None:
        """Appends the step just taken and moves to the new observation."""
        self.history.append(_Turn(self.observation, action))
        self._observe(observation, info)
