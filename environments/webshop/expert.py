"""The scripted expert: shops for the goal it was given through the site's public actions.

It reads its goal and what the pages show, never the reward:

1. on the search page, it searches the instruction without its price clause;
2. on the first results page of that search, it opens the first listed product within the price
   limit that shows the most of the goal's attributes in its title (:func:`visible_choice`), as a
   careful shopper would: it never uses the goal's product id; when the search finds nothing, it
   searches the product's name instead; results of anyone else's search send it back to the
   search page;
3. on that product's page, it selects, for each goal option, the value that matches it best (one
   per group), then buys; a sub-page or another product takes it back to the results (``< prev``).

Acting only on what the pages show makes its demonstrations learnable: a policy can imitate each
choice from the observation alone. Episodes take 3 + (number of goal options) steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

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


def visible_choice(goal: Goal, shown: Sequence[Product]) -> Product:
    """The product a careful shopper opens from a results page: the first listed one within the
    price limit with the most of the goal's attributes in its title (within the limit first)."""
    return max(
        shown, key=lambda p: (p.price <= goal.price_upper, sum(a in p.title.lower() for a in goal.attributes))
    )


def expert_action(
    state: PageState, goal: Goal, catalogue: Catalogue, clickables: Mapping[str, PageState]
) -> str:
    """The next action from ``state`` (``clickables``: the current page's labels and their targets)."""
    own_query, fallback_query = instruction_query(goal), name_query(goal)
    if state.kind in ("search", "done"):
        return f"search[{own_query}]"
    if state.query not in (own_query, fallback_query):
        return "click[back to search]"  # someone else's search: start over
    hits = catalogue.search(state.query)
    shown = hits[(state.page - 1) * RESULTS_PER_PAGE : state.page * RESULTS_PER_PAGE]
    if not shown:
        if state.page > 1:
            return "click[< prev]"
        return f"search[{fallback_query}]" if state.query == own_query else "click[back to search]"
    choice = visible_choice(goal, shown)
    if state.kind == "results":
        return f"click[{choice.asin.lower()}]"
    if state.subpage is not None or state.asin != choice.asin:
        return "click[< prev]"
    selected = {value for _, value in state.options}
    for _, value in option_clicks(goal, catalogue.by_asin[state.asin]):
        target = clickables.get(value)
        if value not in selected and target is not None and target.kind == "item" and target.subpage is None:
            return f"click[{value}]"
    return "click[buy now]"
