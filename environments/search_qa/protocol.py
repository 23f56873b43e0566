"""Search-R1's text protocol: the agent writes ``<search>`` or ``<answer>``, the env answers ``<information>``.

Parsing follows Search-R1's generation loop: the *first* ``<search>q</search>`` or
``<answer>a</answer>`` block of the completion is the action (``<(search|answer)>(.*?)</\\1>``,
tags case-sensitive, content stripped); anything around it, such as a ``<think>`` block, is ignored.
A completion without such a block, or with an empty one, is an invalid action.

Retrieved documents are shown as Search-R1 shows them, one per line:
``Doc 1(Title: <first line of contents>) <rest of contents>``, wrapped in ``<information>...</information>``.

Observations stay inside the environment's ``Text`` space (:func:`printable`): characters outside
:func:`agentgym.core.text_charset` become spaces, and the verdict quotes at most
:data:`ANSWER_ECHO` characters of the answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agentgym.core import text_charset
from agentgym.tools.retrieval import Hit

INSTRUCTIONS = """\
Answer the question using a search engine. Reason inside <think> and </think> whenever you get new information.
To search, write <search> your query </search>; the best matching documents come back between <information> and </information>.
You may search several times, but turns are limited (4 by default, the answer included).
When you know the answer, write it inside <answer> and </answer> without explanation, for example <answer> Tarsh </answer>.
Write one <search> or one <answer> per turn: only the first of them counts."""

_ACTION = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)
_NOT_ASCII_TEXT = re.compile(r"[^\t\n\x20-\x7e]")
#: Characters of the answer quoted back in the verdict: an answer may be as long as the action space
#: allows, and quoting all of it would overflow the observation space.
ANSWER_ECHO = 200


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


def verdict_observation(answer: str, correct: bool) -> str:
    quoted = answer if len(answer) <= ANSWER_ECHO else answer[:ANSWER_ECHO] + "..."
    return f"Answer {quoted!r} is {'correct' if correct else 'incorrect'}."


@functools.cache
def _charset() -> frozenset[str]:
    return frozenset(text_charset())


def printable(text: str) -> str:
    """``text`` with characters outside the observation space's charset replaced by spaces.

    The charset is the Basic Multilingual Plane's printable characters plus newline and tab; real
    corpora and questions also hold no-break spaces, soft hyphens, carriage returns and characters
    beyond that plane (mathematical letters, emoji), which would put an observation outside
    ``observation_space``. A space keeps the words around them apart (as WebShop does with pages).
    """
    if not _NOT_ASCII_TEXT.search(text):
        return text
    allowed = _charset()
    return "".join(char if char in allowed else " " for char in text)
