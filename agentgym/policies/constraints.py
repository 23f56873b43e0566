"""Constrained decoding: a policy writes only completions the environment would accept.

An :class:`AllowedCompletions` lists, for one prompt, the exact completions allowed (``click[...]``
commands, rendered in the agent's action format) and the prefixes after which the text is free
(``<action>search[`` for a search box). A :class:`TokenTrie` turns that into a token-level
automaton: at each generation step it names the tokens that keep the completion on an allowed path,
ends an exact completion with the end-of-turn token, and lets generation run unconstrained once an
open prefix is written. Sampling then draws from the model's distribution restricted to those tokens.

Completions are matched in their canonical tokenization (the tokenizer's own segmentation of the
whole text), which is the segmentation behaviour cloning trained on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: A placeholder in an admissible-action template, e.g. ``search[<query>]``.
PLACEHOLDER = re.compile(r"<[a-z_]+>")

_OPEN = -1  # the trie key that marks "free text from here on"


@dataclass(frozen=True)
class AllowedCompletions:
    """What a constrained policy may write for one prompt.

    ``exact``: whole completions, one of which is written verbatim. ``open_prefixes``: a completion
    may also start with one of these and continue freely (a search query, say).
    """

    exact: tuple[str, ...]
    open_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_actions(cls, actions: Sequence[str], render: Callable[[str], str]) -> AllowedCompletions:
        """From admissible actions (``click[x]``, templates such as ``search[<query>]``) and the agent's
        ``render(action) -> completion text``; a template allows its text up to the placeholder."""
        exact, open_prefixes = [], []
        for action in actions:
            placeholder = PLACEHOLDER.search(action)
            if placeholder is None:
                exact.append(render(action))
            else:
                marker = "\x00"
                rendered = render(action[: placeholder.start()] + marker + action[placeholder.end() :])
                open_prefixes.append(rendered.split(marker, 1)[0])
        return cls(tuple(dict.fromkeys(exact)), tuple(dict.fromkeys(open_prefixes)))


class TokenTrie:
    """The token paths of one prompt's allowed completions, walked token by token.

    ``allowed(state)`` gives the token ids that may come next (None: anything may), and
    ``advance(state, token)`` the state after one of them. The start state is ``trie.root``.
    """

    def __init__(self, exact: Sequence[Sequence[int]], open_prefixes: Sequence[Sequence[int]], end_id: int):
        self.root: dict[int, Any] = {}
        for ids in exact:
            self._insert([*ids, end_id])  # ends in an empty node: nothing may follow the end token
        for ids in open_prefixes:
            self._insert(ids)[_OPEN] = True

    def _insert(self, ids: Sequence[int]) -> dict[int, Any]:
        node = self.root
        for token in ids:
            node = node.setdefault(token, {})
        return node

    @staticmethod
    def allowed(state: dict[int, Any] | None) -> list[int] | None:
        if state is None or _OPEN in state:
            return None
        return list(state)

    @staticmethod
    def advance(state: dict[int, Any] | None, token: int) -> dict[int, Any] | None:
        if state is None or _OPEN in state:
            return None
        return state[token]


class TrieBuilder:
    """Builds :class:`TokenTrie` objects for one tokenizer, caching each text's token ids."""

    def __init__(self, tokenizer: Any, end_id: int, cache_size: int = 200_000):
        self.tokenizer = tokenizer
        self.end_id = end_id
        self.cache_size = cache_size
        self._ids: dict[str, list[int]] = {}

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        missing = [text for text in dict.fromkeys(texts) if text not in self._ids]
        if missing:
            if len(self._ids) + len(missing) > self.cache_size:
                self._ids.clear()
            encoded = self.tokenizer(missing, add_special_tokens=False)["input_ids"]
            self._ids.update(zip(missing, encoded, strict=True))
        return [self._ids[text] for text in texts]

    def build(self, allowed: AllowedCompletions) -> TokenTrie:
        if not allowed.exact and not allowed.open_prefixes:
            raise ValueError("constrained decoding needs at least one allowed completion")
        return TokenTrie(self.encode(allowed.exact), self.encode(allowed.open_prefixes), self.end_id)
