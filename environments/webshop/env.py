"""``webshop``: WebShop (Yao et al., 2022) as an agentgym text environment.

Example::

    env = agentgym.make("webshop")                       # generated catalogue, 6,000 goals
    obs, info = env.reset(seed=0, options={"task_id": 0})   # goal 0 of the test split
    obs, reward, terminated, truncated, info = env.step("search[sulfate free shampoo]")
    obs, reward, terminated, truncated, info = env.step(info["available_actions"][2])

The original's data files load with ``agentgym.make("webshop", data_dir=..., goals="human")``.
See docs/webshop.md for the pages, actions, reward and data formats.
"""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

import numpy as np
from gymnasium.error import ResetNeeded

from agentgym.core import TextEnv, task_index, text_charset
from agentgym.environments.webshop.catalogue import Catalogue, get_catalogue
from agentgym.environments.webshop.data import Goal
from agentgym.environments.webshop.expert import expert_action
from agentgym.environments.webshop.pages import START, Page, PageState, done_page, render
from agentgym.environments.webshop.real_data import GoalKind, Subset
from agentgym.environments.webshop.reward import purchase_reward

SEARCH_TEMPLATE = "search[<query>]"
# The original's parser: greedy, anchored at the start only, text after the last "]" ignored.
_COMMAND = re.compile(r"(.+)\[(.+)\]")
_NOT_ASCII_TEXT = re.compile(r"[^\t\n\x20-\x7e]")


def _printable(text: str) -> str:
    """``text`` with characters outside the observation space's charset replaced by spaces."""
    if not _NOT_ASCII_TEXT.search(text):
        return text
    allowed = _charset()
    return "".join(char if char in allowed else " " for char in text)


@functools.cache
def _charset() -> frozenset[str]:
    return frozenset(text_charset())


class WebShopEnv(TextEnv):
    """A WebShop site: search, browse results, pick options, buy; rewarded by the original's formula.

    Args:
        catalogue: ``"default"`` (1,200 generated products, 6,000 goals; test = goals 0-499, train
            = the rest) or ``"small"`` (160 products, 480 goals; test = 0-99, train = the rest),
            for quick runs. Exclusive with ``data_dir``.
        data_dir: a folder with the original WebShop files; then goals and products come from
            there and the splits are the original's (test 0-499, eval 500-1499, train the rest,
            empty splits left out).
        goals: with ``data_dir``, ``"human"`` (default) or ``"synthetic"`` goals.
        subset: with ``data_dir``, which product file: ``"1000"`` (``items_shuffle_1000.json``),
            ``"full"`` (``items_shuffle.json``) or ``"auto"`` (the 1000 file when present).
        seed: the catalogue generator's seed; with ``data_dir``, the seed of the draws the original
            makes from Python's unseeded ``random`` (range prices, price ceilings).
        show_attributes: adds the original's optional ``Attributes`` button to item pages.

    ``reset(options={"task_id": i})`` plays goal ``i`` (the original's goal index with real data);
    its split is implied, and an explicit ``split`` must agree. Without a task id, a goal of
    ``split`` (default ``train``) is drawn with ``np_random``, in proportion to the goal weights
    (equal except for the original's synthetic goals).

    ``info``: ``task``, ``task_id``, ``split``, ``task_type`` (the product category), ``anchor``
    (``(page kind, query, page, asin, selected options, sub-page)``), ``available_actions`` (the
    clickable labels as ``click[...]`` commands, plus ``search[<query>]`` where the page has a
    search bar), ``item_actions`` (on a results page, the clicks on the listed products in display
    order; empty elsewhere), ``has_search_bar``, ``action_valid`` and ``error``; after ``buy now``: ``won``
    (reward == 1), ``score`` (the reward) and ``reward_details`` (its components).
    """

    instructions: ClassVar[str] = (
        "You are shopping on WebShop for the product the instruction describes. "
        "Actions: search[<query>] searches the shop (from the search page); click[<label>] clicks a "
        "button, a product id on a results page or an option value on a product page, e.g. "
        "click[next >], click[< prev], click[back to search], click[b0abc12345], click[navy blue], "
        "click[description], click[buy now]. Buy the product that has every requested attribute and "
        "option and costs less than the price limit: open it, select its options, then click[buy now]. "
        "The episode ends when you buy."
    )
    parallelism: ClassVar[str] = "thread"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")

    def __init__(
        self,
        catalogue: str = "default",
        data_dir: str | None = None,
        goals: GoalKind | None = None,
        subset: Subset = "auto",
        seed: int = 0,
        show_attributes: bool = False,
        render_mode: str | None = None,
    ):
        super().__init__(render_mode=render_mode)
        if data_dir is not None and catalogue != "default":
            raise ValueError(f"webshop: catalogue={catalogue!r} and data_dir are exclusive; give one")
        self.catalogue: Catalogue = get_catalogue(catalogue, data_dir, goals, subset, seed)
        self.splits = tuple(self.catalogue.split_ranges)
        self.show_attributes = show_attributes
        self.goal: Goal | None = None
        self.task_id: int | None = None
        self.split: str | None = None
        self.state: PageState = START
        self._page: Page | None = None
        self._actions: list[str] = []
        self._cumulative_weights: dict[str, np.ndarray] = {}

    # -- tasks ---------------------------------------------------------------------------------
    def task_ids(self, split: str) -> list[int]:
        if split not in self.catalogue.split_ranges:
            raise ValueError(f"webshop: unknown split {split!r}; this catalogue has {list(self.splits)}")
        start, stop = self.catalogue.split_ranges[split]
        return list(range(start, stop))

    def _draw(self, split: str) -> int:
        if split not in self._cumulative_weights:
            start, stop = self.catalogue.split_ranges[split]
            weights = np.array([goal.weight for goal in self.catalogue.goals[start:stop]], dtype=np.float64)
            self._cumulative_weights[split] = np.cumsum(weights)
        cumulative = self._cumulative_weights[split]
        offset = int(np.searchsorted(cumulative, self.np_random.random() * cumulative[-1], side="right"))
        return self.catalogue.split_ranges[split][0] + min(offset, len(cumulative) - 1)

    def _choose_task(self, options: dict[str, Any]) -> tuple[int, str]:
        split = options.get("split")
        if split is not None and split not in self.splits:  # a tuple: an unhashable value is simply not in it
            raise ValueError(f"webshop: unknown split {split!r}; this catalogue has {list(self.splits)}")
        if options.get("task_id") is None:
            split = split or ("train" if "train" in self.splits else self.splits[0])
            return self._draw(split), split
        task_id = task_index(options["task_id"], len(self.catalogue.goals), "webshop's catalogue")
        own_split = self.catalogue.split_of(task_id)
        if split is not None and split != own_split:
            start, stop = self.catalogue.split_ranges[split]
            raise ValueError(
                f"webshop: task_id {task_id} belongs to split {own_split!r}; {split!r} holds {start}..{stop - 1}"
            )
        return task_id, own_split

    # -- episode -------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.task_id, self.split = self._choose_task(options or {})
        self.goal = self.catalogue.goals[self.task_id]
        self._show(START)
        return self._last_observation, self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.goal is None:
            raise ResetNeeded("webshop: call reset() before step()")
        target, error = self._target(action)
        if target is None:
            return self._last_observation, 0.0, False, False, self._info(action_valid=False, error=error)
        if target.kind != "done":
            self._show(target)
            return self._last_observation, 0.0, False, False, self._info(action_valid=True)
        chosen = dict(target.options)
        outcome = purchase_reward(self.goal, self.catalogue.by_asin[target.asin], chosen)
        self.state, self._page, self._actions = target, done_page(target.asin, chosen, outcome.reward), []
        self._observe(_printable(self._page.observation))
        info = self._info(
            action_valid=True,
            won=outcome.reward == 1.0,
            score=outcome.reward,
            reward_details=outcome.as_dict(),
        )
        return self._last_observation, outcome.reward, True, False, info

    def _target(self, action: str) -> tuple[PageState | None, str]:
        """The state ``action`` leads to, or ``None`` and why it is invalid."""
        if self.state.kind == "done":
            return None, "the episode has ended (the product was bought); call reset()"
        match = _COMMAND.match(action.strip()) if isinstance(action, str) else None
        if match is None:
            return None, f"cannot parse {str(action)[:80]!r}: write search[<query>] or click[<label>]"
        name, argument = match.group(1).strip().lower(), match.group(2).lower()
        if name == "search":
            # As the original, a search runs from any page, and resets page, product and options.
            return PageState("results", " ".join(argument.split())), ""
        if name != "click":
            return None, f"unknown action {name[:40]!r}: write search[<query>] or click[<label>]"
        target = self._page.clickables.get(argument.strip())
        if target is None:
            if argument.strip() == "search":
                return None, "to search, write search[<query>]"
            listed = ", ".join(self._page.clickables) or "nothing"
            return None, f"{argument[:80]!r} is not clickable on this page; clickable: {listed[:600]}"
        return target, ""

    def _show(self, state: PageState) -> None:
        self.state = state
        self._page = render(state, self.goal.instruction_text, self.catalogue, self.show_attributes)
        self._actions = [f"click[{label}]" for label in self._page.clickables]
        if self._page.has_search_bar:
            self._actions.insert(0, SEARCH_TEMPLATE)
        self._observe(_printable(self._page.observation))

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {
            "task": self.goal.instruction_text,
            "task_id": self.task_id,
            "split": self.split,
            "task_type": self.goal.category,
            "anchor": tuple(self.state),
            "available_actions": list(self._actions),
            "item_actions": [f"click[{label}]" for label in self._page.items],
            "has_search_bar": self._page.has_search_bar,
            **extra,
        }

    def expert_action(self) -> str:
        if self.goal is None:
            raise ResetNeeded("webshop: call reset() before expert_action()")
        return expert_action(self.state, self.goal, self.catalogue, self._page.clickables)
