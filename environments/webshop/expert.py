"""The scripted expert: shops for the goal it was given through the site's public actions.

It reads its goal and what the pages show, never the reward:

1. on the search page, it searches the instruction without its price clause;
2. on the results of that search, it pages to the goal's product and clicks it; when the product
   is not among the hits, it searches the product's name instead, and when that fails too it
   takes the listed product with most of the goal's attributes in its title within the price
   limit; results of anyone else's search send it back to the search page;
3. on the item page, it selects, for each goal option, the value that matches it best (one per
   group), then buys; a sub-page or the wrong product takes it back (``< prev`` to its own
   results, else ``back to search``).

Episodes take 3 + (number of goal options) steps when the product is on the first results page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agentgym.environments.webshop.catalogue import Catalogue
from agentgym.environments.webshop.data import Goal, Product
from agentgym.environments.webshop.pages import RESULTS_PER_PAGE, PageState
from agentgym.environments.webshop.reward import (
    MATCH_THRESHOLD,
    fuzzy_score,
    goal_option_items,
    normalize_color,
)

_PRICE_CLAUSE = re.compile(r",? and price lower than [\d.]+ dollars\s*$")
_BRACKETS = re.compile(r"[\[\]]")


def _query(text: str) -> str:
    # Brackets would end the search[...] command early.
    return " ".join(_BRACKETS.sub(" ", text).lower().split())


def instruction_query(goal: Goal) -> str:
    return _query(_PRICE_CLAUSE.sub("", goal.instruction_text)) or name_query(goal)


def name_query(goal: Goal) -> str:
    return _query(goal.name)


def option_clicks(goal: Goal, product: Product) -> list[tuple[str, str]]:
    """``(group, value)`` to select for the goal's options: the best match of each, one per group."""
    picks: dict[str, str] = {}
    for wanted in goal_option_items(goal.goal_options):
        target = normalize_color(wanted)
        best: tuple[tuple[bool, int], str, str] | None = None
        for group, values in product.options.items():
            for value in values:
                exact = wanted in (value, (group, value))
                rank = (exact, fuzzy_score(normalize_color(value), target))
                if best is None or rank > best[0]:
                    best = (rank, group, value)
        if best is not None and (best[0][0] or best[0][1] > MATCH_THRESHOLD) and best[1] not in picks:
            picks[best[1]] = best[2]
    return list(picks.items())


def _visible_score(goal: Goal, product: Product) -> tuple[int, bool]:
    title = product.title.lower()
    return sum(attribute in title for attribute in goal.attributes), product.price <= goal.price_upper


def expert_action(
    state: PageState, goal: Goal, catalogue: Catalogue, clickables: Mapping[str, PageState]
) -> str:
    """The next action from ``state`` (``clickables``: the current page's labels and their targets)."""
    own_query, fallback_query = instruction_query(goal), name_query(goal)
    if state.kind in ("search", "done"):
        return f"search[{own_query}]"
    hits = catalogue.search(state.query)
    positions = {product.asin: index for index, product in enumerate(hits)}
    target_listed = goal.asin in positions
    ours = state.query in (own_query, fallback_query)
    if state.kind == "results":
        if target_listed:
            target_page = positions[goal.asin] // RESULTS_PER_PAGE + 1
            if target_page == state.page:
                return f"click[{goal.asin.lower()}]"
            if ours:
                return "click[next >]" if target_page > state.page else "click[< prev]"
        if not ours:
            return "click[back to search]"
        if state.query == own_query:
            return f"search[{fallback_query}]"
        shown = hits[(state.page - 1) * RESULTS_PER_PAGE : state.page * RESULTS_PER_PAGE]
        if not shown:
            return "click[< prev]" if state.page > 1 else "click[back to search]"
        best = max(shown, key=lambda product: _visible_score(goal, product))
        return f"click[{best.asin.lower()}]"
    if state.subpage is not None:
        return "click[< prev]"
    settled = state.asin == goal.asin or (state.query == fallback_query and not target_listed)
    if not settled:
        return "click[< prev]" if target_listed and ours else "click[back to search]"
    selected = {value for _, value in state.options}
    for _, value in option_clicks(goal, catalogue.by_asin[state.asin]):
        target = clickables.get(value)
        if value not in selected and target is not None and target.kind == "item" and target.subpage is None:
            return f"click[{value}]"
    return "click[buy now]"
