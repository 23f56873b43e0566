"""Constrained decoding: a policy writes only completions the environment would accept.

An :class:`AllowedCompletions` lists, for one prompt, the exact completions allowed (``click[...]``
commands, rendered in the agent's action format) and the prefixes after which the text is free
(``<action>search[`` for a search box). A :class:`TokenTrie` turns that into a token-level
automaton: at each generation step it names the tokens that keep the completion on an allowed path,
ends an exact completion with the end-of-turn token, and lets generation run unconstrained once an
open prefix is written, or, given ``free_words``, limits that free text to those words' tokens (a
query copied from the page) and then closes the action. Sampling then draws from the model's
distribution restricted to those tokens.

Completions are matched in their canonical tokenization (the tokenizer's own segmentation of the
whole text), which is the segmentation behaviour cloning trained on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: A placeholder in an admissible-action template, e.g. ``search[<query>]``.
PLACEHOLDER = re.compile(r"<[a-z_]+>")

_OPEN = -1  # the trie key that marks "free text from here on"
_MARKER = "\x00"  # stands in for a template's placeholder while the agent renders the template


@dataclass(frozen=True)
class AllowedCompletions:
    """What a constrained policy may write for one prompt.

    ``exact``: whole completions, one of which is written verbatim. ``open_prefixes``: a completion
    may also start with one of these and continue freely (a search query, say). ``free_words``: when
    given, that free text is written with these words' tokens only and ends with the template's text
    after its placeholder (``closings``, one per open prefix), so a query is made of the tokens of
    the words it is shown (in any order, not necessarily whole words).
    """

    exact: tuple[str, ...]
    open_prefixes: tuple[str, ...] = ()
    closings: tuple[str, ...] = ()
    free_words: tuple[str, ...] | None = None

    @classmethod
    def from_actions(
        cls,
        actions: Sequence[str],
        render: Callable[[str], str],
        free_words: Sequence[str] | None = None,
    ) -> AllowedCompletions:
        """From admissible actions (``click[x]``, templates such as ``search[<query>]``) and the agent's
        ``render(action) -> completion text``; a template allows its text up to the placeholder, then
        free text (made of ``free_words`` when given) and the rest of the template."""
        exact, open_templates = [], {}
        for action in actions:
            placeholder = PLACEHOLDER.search(action)
            if placeholder is None:
                exact.append(render(action))
            else:
                rendered = render(action[: placeholder.start()] + _MARKER + action[placeholder.end() :])
                prefix, closing = rendered.split(_MARKER, 1)
                open_templates.setdefault(prefix, closing)
        return cls(
            tuple(dict.fromkeys(exact)),
            tuple(open_templates),
            tuple(open_templates.values()),
            None if free_words is None else tuple(dict.fromkeys(free_words)),
        )


@dataclass(frozen=True)
class _FreeText:
    """The state inside a template's free text: any ``vocabulary`` token, until ``closing`` starts."""

    vocabulary: frozenset[int]
    closing: dict[int, Any]
    allowed: list[int]


class TokenTrie:
    """The token paths of one prompt's allowed completions, walked token by token.

    ``allowed(state)`` gives the token ids that may come next (None: anything may), and
    ``advance(state, token)`` the state after one of them. The start state is ``trie.root``.
    ``free_vocabulary`` (optional) limits the free text after an open prefix to those tokens; it
    then ends with the prefix's closing tokens and the end token.
    """

    def __init__(
        self,
        exact: Sequence[Sequence[int]],
        open_prefixes: Sequence[Sequence[int]],
        end_id: int,
        closings: Sequence[Sequence[int]] = (),
        free_vocabulary: Collection[int] | None = None,
    ):
        nodes: dict[int, Any] = {}
        for ids in exact:
            _insert(nodes, [*ids, end_id])  # ends in an empty node: nothing may follow the end token
        if free_vocabulary is not None and len(closings) != len(open_prefixes):
            raise ValueError("limiting free text needs one closing per open prefix")
        for index, ids in enumerate(open_prefixes):
            free: _FreeText | None = None
            if free_vocabulary is not None:
                closing: dict[int, Any] = {}
                _insert(closing, [*closings[index], end_id])
                # A token that may start the closing always does, so the free text cannot swallow it.
                vocabulary = frozenset(free_vocabulary) - closing.keys()
                free = _FreeText(vocabulary, closing, sorted(vocabulary | closing.keys()))
            _insert(nodes, ids)[_OPEN] = free
        self.root = _enter(nodes)

    @staticmethod
    def allowed(state: dict[int, Any] | _FreeText | None) -> list[int] | None:
        if state is None:
            return None
        if isinstance(state, _FreeText):
            return state.allowed
        return list(state)

    @staticmethod
    def advance(state: dict[int, Any] | _FreeText | None, token: int) -> dict[int, Any] | _FreeText | None:
        if state is None:
            return None
        if isinstance(state, _FreeText):
            if token in state.closing:
                return _enter(state.closing[token])
            if token not in state.vocabulary:
                raise KeyError(token)
            return state
        return _enter(state[token])


def _insert(node: dict[int, Any], ids: Sequence[int]) -> dict[int, Any]:
    for token in ids:
        node = node.setdefault(token, {})
    return node


def _enter(node: dict[int, Any]) -> dict[int, Any] | _FreeText | None:
    """The state a node stands for: the free text it opens (None when unlimited), else itself."""
    return node.get(_OPEN, node)


class TrieBuilder:
    """Builds :class:`TokenTrie` objects for one tokenizer, caching each text's token ids."""

    def __init__(self, tokenizer: Any, end_id: int, cache_size: int = 200_000):
        self.tokenizer = tokenizer
        self.end_id = end_id
        self.cache_size = cache_size
        self._ids: dict[str, list[int]] = {}

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        unique = list(dict.fromkeys(texts))
        missing = [text for text in unique if text not in self._ids]
        if missing:
            if len(self._ids) + len(missing) > self.cache_size:
                self._ids.clear()
                missing = unique  # the texts of this call that were cached went with the rest
            encoded = self.tokenizer(missing, add_special_tokens=False)["input_ids"]
            self._ids.update(zip(missing, encoded, strict=True))
        return [self._ids[text] for text in texts]

    def token_specs(
        self,
        allowed: Sequence[AllowedCompletions | None] | None,
        num_prompts: int,
        max_tokens: int | None = None,
    ) -> list[dict[str, Any] | None]:
        """Per prompt, ``TokenTrie``'s arguments for its ``allowed`` entry as plain lists (what a
        generator running elsewhere, a vLLM engine, needs to build the same trie), None where the
        prompt is free; ``allowed`` None leaves every prompt free. See :meth:`token_spec` for
        ``max_tokens``."""
        if allowed is None:
            return [None] * num_prompts
        if len(allowed) != num_prompts:
            raise ValueError(f"allowed has {len(allowed)} entries for {num_prompts} prompts")
        return [self.token_spec(entry, max_tokens) if entry is not None else None for entry in allowed]

    def token_spec(self, allowed: AllowedCompletions, max_tokens: int | None = None) -> dict[str, Any]:
        """``TokenTrie``'s arguments for one prompt's ``allowed``. Given the ``max_tokens`` a
        completion may take, exact completions longer than that (their end token counted) are left
        out, as generation would cut them short of an action; all are kept when none fits."""
        if not allowed.exact and not allowed.open_prefixes:
            raise ValueError("constrained decoding needs at least one allowed completion")
        exact = self.encode(allowed.exact)
        if max_tokens is not None:
            exact = [ids for ids in exact if len(ids) < max_tokens] or exact
        vocabulary, closings = None, []
        if allowed.free_words is not None and allowed.open_prefixes:  # a page of clicks has no free text
            # A word is written with or without the space before it (the first word of a query).
            spellings = [spelling for word in allowed.free_words for spelling in (word, " " + word)]
            vocabulary = sorted({token for ids in self.encode(spellings) for token in ids})
            closings = self.encode(allowed.closings)
        return {
            "exact": exact,
            "open_prefixes": self.encode(allowed.open_prefixes),
            "end_id": self.end_id,
            "closings": closings,
            "free_vocabulary": vocabulary,
        }


def allowed_token_mask(
    allowed: Sequence[list[int] | None], shape: tuple[int, ...] | torch.Size, device: torch.device
) -> torch.Tensor:
    """A (rows, vocabulary) boolean mask, True where a row's token is allowed (everywhere on a row
    whose entry is None). One scatter for the whole batch: a per-row loop costs a device round trip
    per row on a GPU. An empty list only follows the end token, where a row has stopped: it is left
    unrestricted."""
    import torch  # here, so that agents can use this module without loading torch

    keep = torch.ones(shape, dtype=torch.bool, device=device)
    rows = [row for row, tokens in enumerate(allowed) if tokens]
    if rows:
        keep[rows] = False
        row_index = torch.tensor([row for row in rows for _ in allowed[row]], dtype=torch.long)
        token_index = torch.tensor([token for row in rows for token in allowed[row]], dtype=torch.long)
        keep[row_index.to(device), token_index.to(device)] = True
    return keep
