"""The site's pages: a page state, its text observation and what can be clicked on it.

A :class:`PageState` is the whole browsing state (the original's session: keywords, page, asin,
options, plus which page is shown). :func:`render` turns it into the original's ``text``
observation (every visible string of the page, stripped, joined with ``" [SEP] "``) and the map
from clickable labels (lower case, as the original's ``get_available_actions``) to the state each
click leads to. States are immutable, so an invalid action cannot leave half a change behind.

Flow (as the original):

- search page: ``search[...]`` only (the ``Search`` button is not clickable);
- results page ``n``: ``back to search``, ``< prev`` (from page 2), ``next >`` (always, even past
  the last hit), then the asins of its 10 products;
- item page: ``back to search``, ``< prev`` (results page, options cleared), ``description``,
  ``features``, ``reviews`` (``attributes`` with ``show_attributes``), ``buy now``, then the
  option values (a click selects the value in its group; options are kept on sub-pages);
- sub-pages: ``back to search``, ``< prev`` (the item page, options kept).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from agentgym.environments.webshop.catalogue import Catalogue
from agentgym.environments.webshop.data import Product

SEP = " [SEP] "
RESULTS_PER_PAGE = 10
SUB_PAGES = ("description", "features", "reviews", "attributes")


class PageState(NamedTuple):
    """The browsing state; as a tuple it is also the environment's ``anchor``."""

    kind: str = "search"
    """``search``, ``results``, ``item`` or ``done``."""
    query: str = ""
    page: int = 1
    asin: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    """The selected ``(group, value)`` pairs, sorted by group."""
    subpage: str | None = None
    """On an item: ``description``, ``features``, ``reviews`` or ``attributes``."""

    def with_option(self, group: str, value: str) -> PageState:
        chosen = dict(self.options)
        chosen[group] = value
        return self._replace(options=tuple(sorted(chosen.items())))


@dataclass(frozen=True)
class Page:
    observation: str
    clickables: Mapping[str, PageState]
    has_search_bar: bool = False
    items: tuple[str, ...] = ()
    """On a results page: the clickable labels of the listed products, in display order."""


START = PageState()


def _join(parts: list[str]) -> str:
    return SEP.join(part.strip() for part in parts if part and part.strip())


def render(state: PageState, instruction: str, catalogue: Catalogue, show_attributes: bool = False) -> Page:
    """The observation and clickables of ``state`` (not for ``done``: see :func:`done_page`)."""
    head = ["Instruction:", instruction]
    if state.kind == "search":
        return Page(_join(["WebShop", *head, "Search"]), {}, has_search_bar=True)
    back = {"back to search": START}
    if state.kind == "results":
        hits = catalogue.search(state.query)
        shown = hits[(state.page - 1) * RESULTS_PER_PAGE : state.page * RESULTS_PER_PAGE]
        parts = [*head, "Back to Search", f"Page {state.page} (Total results: {len(hits)})"]
        clickables = dict(back)
        if state.page > 1:
            parts.append("< Prev")
            clickables["< prev"] = state._replace(page=state.page - 1)
        parts.append("Next >")
        clickables["next >"] = state._replace(page=state.page + 1)
        for product in shown:
            parts += [product.asin, product.title, product.price_tag]
            clickables.setdefault(
                product.asin.lower(), PageState("item", state.query, state.page, product.asin)
            )
        items = tuple(label for label, target in clickables.items() if target.kind == "item")
        return Page(_join(parts), clickables, items=items)

    product = catalogue.by_asin[state.asin]
    item = state._replace(subpage=None)
    if state.subpage is not None:
        parts = [*head, "Back to Search", "< Prev", *_sub_page_text(product, state.subpage)]
        return Page(_join(parts), {**back, "< prev": item})
    parts = [*head, "Back to Search", "< Prev"]
    clickables = {**back, "< prev": PageState("results", state.query, state.page)}
    for name, values in product.options.items():
        parts += [name, *values]
    parts += [product.title, f"Price: {product.price_tag}", f"Rating: {product.rating}"]
    pages = SUB_PAGES if show_attributes else SUB_PAGES[:3]
    for sub in pages:
        parts.append(sub.capitalize())
        clickables[sub] = item._replace(subpage=sub)
    parts.append("Buy Now")
    clickables["buy now"] = item._replace(kind="done")
    buttons = set(clickables)
    for name, values in product.options.items():
        for value in values:
            if value not in buttons:  # the original dispatches on the text: the button acts
                clickables[value] = item.with_option(name, value)  # a value shared by groups: the later
    return Page(_join(parts), clickables)


def _sub_page_text(product: Product, subpage: str) -> list[str]:
    if subpage == "description":
        return [product.description]
    if subpage == "features":
        return list(product.bullet_points)
    if subpage == "reviews":
        return [
            part
            for review in product.reviews
            for part in (f'"{review.title}"', str(review.score), review.body)
        ]
    return [*product.attributes, product.category, product.query, product.product_category]


def done_page(asin: str, options: Mapping[str, str], reward: float) -> Page:
    """The original's confirmation page (its unused debug fields show through in text mode)."""
    parts = [
        "Thank you for shopping with us!", "Your code:", "None", "(Paste it in your MTurk interface.)",
        "Purchased", "asin", asin, "options", json.dumps(dict(options), sort_keys=True),
        "attrs", "None", "category", "None", "query", "None", "product category", "None",
        "Target", "asin", "options", "attrs", "price upper", "instuction text", "category",
        "product category", "query", "Goal", "None", "Reward", "Your score (min 0.0, max 1.0)",
        repr(float(reward)), "Reward Details", "None",
    ]  # fmt: skip
    return Page(_join(parts), {})
