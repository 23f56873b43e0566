"""Search-R1's text protocol: the agent writes ``<search>`` or ``<answer>``, the env answers ``<information>``.

Parsing follows Search-R1's generation loop: the *first* ``<search>q</search>`` or
``<answer>a</answer>`` block of the completion is the action (``<(search|answer)>(.*?)</\\1>``,
tags case-sensitive, content stripped); anything around it, such as a ``<think>`` block, is ignored.
A completion without such a block, or with an empty one, is an invalid action.

Retrieved documents are shown as Search-R1 shows them, one per line:
``Doc 1(Title: <first line of contents>) <rest of contents>``, wrapped in ``<information>...</information>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agentgym.tools.retrieval import Hit

INSTRUCTIONS = """\
Answer the question using a search engine. Reason inside <think> and </think> whenever you get new information.
To search, write <search> your query </search>; the best matching documents come back between <information> and </information>.
You may search several times, but turns are limited (4 by default, the answer included).
When you know the answer, write it inside <answer> and </answer> without explanation, for example <answer> Tarsh </answer>.
Write one <search> or one <answer> per turn: only the first of them counts."""

_ACTION = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)


@dataclass(frozen=True)
class Action:
    """A parsed completion: ``kind`` is None when it holds no usable action, and ``error`` says why."""

    kind: Literal["search", "answer"] | None
    content: str = ""
    error: str = ""


def parse_action(text: str) -> Action:
    match = _ACTION.search(text)
    if match is None:
        unclosed = [tag for tag in ("search", "answer") if f"<{tag}>" in text and f"</{tag}>" not in text]
        if unclosed:
            return Action(None, error=f"<{unclosed[0]}> is never closed with </{unclosed[0]}>")
        return Action(None, error="no <search>...</search> or <answer>...</answer> block")
    kind, content = match.group(1), match.group(2).strip()
    if not content:
        return Action(None, error=f"the <{kind}> block is empty")
    return Action(kind, content)  # type: ignore[arg-type]


def format_information(hits: Sequence[Hit]) -> str:
    if not hits:
        return "<information>No document matches the query.</information>"
    lines = [f"Doc {rank}(Title: {hit.title}) {hit.text}" for rank, hit in enumerate(hits, start=1)]
    return "<information>" + "\n".join(lines) + "</information>"


def invalid_observation(error: str) -> str:
    return (
        f"Invalid action: {error}. To search, put the query between <search> and </search>; "
        "to give the final answer, put it between <answer> and </answer>."
    )
