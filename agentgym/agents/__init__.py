"""Agents turn observations into chat prompts and completions into environment actions."""

from agentgym.agents.chat import AgentConfig, ChatAgent
from agentgym.agents.parsing import ActionFormat, ParsedAction, format_action, parse_action

__all__ = ["ActionFormat", "AgentConfig", "ChatAgent", "ParsedAction", "format_action", "parse_action"]
