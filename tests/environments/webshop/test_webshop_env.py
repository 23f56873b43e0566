"""The site's page flow, observations, actions and info keys, on the fixture and generated catalogues."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import agentgym
from agentgym.checker import check_env
from agentgym.environments.webshop.env import WebShopEnv

FIXTURES = Path(__file__).parent / "fixtures"
TEA_TASK = 3  # the fixture's human goal for B0FX000003


@pytest.fixture
def env():
    made = agentgym.make("webshop", data_dir=str(FIXTURES), goals="human")
    made.reset(seed=0, options={"task_id": TEA_TASK})
    return made


def instruction(env) -> str:
    return env.unwrapped.goal.instruction_text


def test_search_page(env):
    observation, info = env.reset(seed=0, options={"task_id": TEA_TASK})
    assert observation == f"WebShop [SEP] Instruction: [SEP] {instruction(env)} [SEP] Search"
    assert info["available_actions"] == ["search[<query>]"] and info["has_search_bar"]
    assert info["item_actions"] == []
    assert info["anchor"] == ("search", "", 1, None, (), None)
    assert (info["task"], info["task_id"], info["split"], info["task_type"]) == (
        instruction(env),
        3,
        "test",
        "food",
    )


def test_results_page(env):
    observation, reward, terminated, truncated, info = env.step("search[Chamomile Honey Tea]")
    assert (reward, terminated, truncated, info["action_valid"]) == (0.0, False, False, True)
    head = f"Instruction: [SEP] {instruction(env)} [SEP] Back to Search [SEP] Page 1 (Total results: "
    assert observation.startswith(head)
    assert (
        "[SEP] Next > [SEP] B0FX000003 [SEP] Meadowlark Organic Chamomile Honey Herbal Tea Bags, Caffeine Free [SEP] $8.75"
        in observation
    )
    assert "< Prev" not in observation
    assert info["available_actions"][:2] == ["click[back to search]", "click[next >]"]
    assert "click[b0fx000003]" in info["available_actions"]
    products = [a for a in info["available_actions"] if a.startswith("click[b0")]
    assert info["item_actions"] == products and products[0] == "click[b0fx000003]"  # in display order
    assert not info["has_search_bar"]
    assert info["anchor"] == ("results", "chamomile honey tea", 1, None, (), None)


def test_item_page_options_and_sub_pages(env):
    env.step("search[chamomile honey tea]")
    observation, *_, info = env.step("click[B0FX000003]")  # the argument is lower-cased, as the original
    assert observation == (
        f"Instruction: [SEP] {instruction(env)} [SEP] Back to Search [SEP] < Prev [SEP] flavor name [SEP] "
        "chamomile honey [SEP] peppermint [SEP] ginger lemon [SEP] size [SEP] 20 count (pack of 6) [SEP] 40 count "
        "[SEP] Meadowlark Organic Chamomile Honey Herbal Tea Bags, Caffeine Free [SEP] Price: $8.75 [SEP] "
        "Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    assert info["available_actions"] == [
        "click[back to search]", "click[< prev]", "click[description]", "click[features]", "click[reviews]",
        "click[buy now]", "click[chamomile honey]", "click[peppermint]", "click[ginger lemon]",
        "click[20 count (pack of 6)]", "click[40 count]",
    ]  # fmt: skip
    env.step("click[peppermint]")
    *_, info = env.step("click[chamomile honey]")  # a later click in the group replaces the earlier
    query_page = ("chamomile honey tea", 1, "B0FX000003")
    assert info["anchor"] == ("item", *query_page, (("flavor name", "chamomile honey"),), None)
    observation, *_, info = env.step("click[features]")
    assert observation.endswith(
        "< Prev [SEP] USDA organic herbal tea [SEP] Naturally caffeine free [SEP] Individually wrapped tea bags"
    )
    assert info["available_actions"] == ["click[back to search]", "click[< prev]"]
    assert info["anchor"] == ("item", *query_page, (("flavor name", "chamomile honey"),), "features")
    *_, info = env.step("click[< prev]")  # back to the item, options kept
    assert info["anchor"] == ("item", *query_page, (("flavor name", "chamomile honey"),), None)
    observation, *_, info = env.step("click[reviews]")
    assert observation.endswith("[SEP] Back to Search [SEP] < Prev")  # the original loads no reviews
    env.step("click[< prev]")
    *_, info = env.step("click[< prev]")  # back to the results: options are cleared
    assert info["anchor"] == ("results", "chamomile honey tea", 1, None, (), None)


def test_buy_now_ends_the_episode(env):
    for action in (
        "search[chamomile honey tea]",
        "click[b0fx000003]",
        "click[40 count]",
        "click[chamomile honey]",
    ):
        env.step(action)
    observation, reward, terminated, truncated, info = env.step("click[buy now]")
    assert (reward, terminated, truncated, info["won"], info["score"]) == (1.0, True, False, True, 1.0)
    assert observation.startswith("Thank you for shopping with us! [SEP] Your code: [SEP] None")
    assert '[SEP] options [SEP] {"flavor name": "chamomile honey", "size": "40 count"} [SEP]' in observation
    assert observation.endswith("Your score (min 0.0, max 1.0) [SEP] 1.0 [SEP] Reward Details [SEP] None")
    assert info["available_actions"] == []
    after = env.step("click[buy now]")
    assert after[4]["action_valid"] is False and "reset" in after[4]["error"]


def test_paging(env):
    *_, info = env.step("search[tea]")
    assert "click[< prev]" not in info["available_actions"]
    observation, *_, info = env.step("click[next >]")
    # page 2 of 2 hits (the two teas) lists nothing, but still offers Next > (as the original)
    assert observation.endswith("Page 2 (Total results: 2) [SEP] < Prev [SEP] Next >")
    assert info["available_actions"] == ["click[back to search]", "click[< prev]", "click[next >]"]
    assert info["item_actions"] == []
    *_, info = env.step("click[< prev]")
    assert info["anchor"][:3] == ("results", "tea", 1)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("click[buy now]", "not clickable"),
        ("click[search]", "search[<query>]"),
        ("search[]", "cannot parse"),
        ("buy it", "cannot parse"),
        ("jump[high]", "unknown action"),
        ("", "cannot parse"),
    ],
)
def test_invalid_actions_leave_the_state(env, action, reason):
    before = env.render()
    observation, reward, terminated, truncated, info = env.step(action)
    assert (observation, reward, terminated, truncated) == (before, 0.0, False, False)
    assert info["action_valid"] is False and reason in info["error"]
    assert info["anchor"] == ("search", "", 1, None, (), None)


def test_search_runs_from_any_page_and_text_after_the_bracket_is_ignored(env):
    env.step("search[chamomile honey tea]")
    env.step("click[b0fx000003]")
    env.step("click[40 count]")
    *_, info = env.step("search[ wingback   chair ]")  # as the original: search works everywhere
    assert info["action_valid"] and info["anchor"] == ("results", "wingback chair", 1, None, (), None)
    *_, info = env.step("click[back to search]xyz")
    assert info["anchor"] == ("search", "", 1, None, (), None)


def test_reset_chooses_tasks():
    env = agentgym.make("webshop", catalogue="small")
    inner = env.unwrapped
    assert inner.splits == ("train", "test")
    assert inner.task_ids("test") == list(range(100)) and inner.task_ids("train") == list(range(100, 480))
    _, info = env.reset(options={"task_id": 7})
    assert (info["task_id"], info["split"]) == (7, "test")
    _, info = env.reset(options={"task_id": "120", "split": "train"})
    assert (info["task_id"], info["split"]) == (120, "train")
    with pytest.raises(ValueError, match="belongs to split 'test'"):
        env.reset(options={"task_id": 7, "split": "train"})
    for task_id in (480, -1, "seven", 7.5, [7], True):
        with pytest.raises(ValueError, match=rf"task_id {re.escape(repr(task_id))} is not in webshop's"):
            env.reset(options={"task_id": task_id})
    for split in ("valid", ["test"]):
        with pytest.raises(ValueError, match="unknown split"):
            env.reset(options={"split": split})
    drawn = [env.reset(seed=seed)[1]["task_id"] for seed in range(20)]
    assert all(task_id >= 100 for task_id in drawn)  # the default split is train
    assert drawn == [env.reset(seed=seed)[1]["task_id"] for seed in range(20)]
    assert len(set(drawn)) > 10


def test_instances_share_the_catalogue():
    first, second = WebShopEnv(catalogue="small"), WebShopEnv(catalogue="small")
    assert first.catalogue is second.catalogue
    assert WebShopEnv().catalogue is not first.catalogue


def test_constructor_errors():
    with pytest.raises(agentgym.core.AgentGymError, match="catalogue='huge'"):
        WebShopEnv(catalogue="huge")
    with pytest.raises(ValueError, match="exclusive"):
        WebShopEnv(catalogue="small", data_dir=str(FIXTURES))
    with pytest.raises(agentgym.core.AgentGymError, match="data_dir"):
        WebShopEnv(goals="human")
    with pytest.raises(agentgym.core.AgentGymError, match=r"subset='full' selects .* give data_dir"):
        WebShopEnv(subset="full")


def test_show_attributes_adds_the_attributes_page():
    env = agentgym.make("webshop", data_dir=str(FIXTURES), goals="human", show_attributes=True)
    env.reset(options={"task_id": TEA_TASK})
    env.step("search[chamomile honey tea]")
    observation, *_ = env.step("click[b0fx000003]")
    assert "[SEP] Reviews [SEP] Attributes [SEP] Buy Now" in observation
    observation, *_ = env.step("click[attributes]")
    assert observation.endswith(
        "< Prev [SEP] caffeine free [SEP] usda organic [SEP] non gmo [SEP] food [SEP] herbal tea "
        "[SEP] Grocery & Gourmet Food › Beverages › Tea › Herbal"
    )


def test_generated_item_page_has_reviews_and_rating():
    env = agentgym.make("webshop", catalogue="small")
    env.reset(seed=0, options={"task_id": 0})
    inner = env.unwrapped
    product = inner.catalogue.by_asin[inner.goal.asin]
    env.step(inner.expert_action())
    observation, *_ = env.step(f"click[{product.asin}]")
    assert f"[SEP] Rating: {product.rating} [SEP]" in observation
    observation, *_ = env.step("click[reviews]")
    review = product.reviews[0]
    assert f'< Prev [SEP] "{review.title}" [SEP] {review.score} [SEP] {review.body}' in observation


@pytest.mark.parametrize(("catalogue", "documented_wins"), [("default", 497), ("small", 100)])
def test_expert_wins_the_test_split_as_documented(catalogue, documented_wins):
    env = agentgym.make("webshop", catalogue=catalogue)
    inner = env.unwrapped
    wins = 0
    for task_id in inner.task_ids("test"):
        env.reset(options={"task_id": task_id})
        terminated = truncated = False
        while not (terminated or truncated):
            *_, terminated, truncated, info = env.step(inner.expert_action())
        wins += bool(info.get("won"))
    assert wins >= documented_wins


def test_expert_recovers_from_random_detours():
    env = agentgym.make("webshop", catalogue="small")
    inner = env.unwrapped
    rng = np.random.default_rng(0)
    wins = 0
    for episode in range(100):
        _, info = env.reset(seed=episode, options={"split": "test"})
        for _ in range(int(rng.integers(1, 6))):  # a detour of random admissible actions, never buying
            actions = [a for a in info["available_actions"] if a != "click[buy now]"]
            action = actions[int(rng.integers(len(actions)))].replace("<query>", "red lipstick")
            *_, info = env.step(action)
        for _ in range(12):
            *_, terminated, _, info = env.step(inner.expert_action())
            if terminated:
                break
        wins += bool(info.get("won"))
    assert wins == 100


@pytest.mark.parametrize("options", [{}, {"catalogue": "small"}, {"data_dir": str(FIXTURES)}])
def test_check_env_passes(options):
    report = check_env("webshop", options)
    assert report.passed, report.failures()


def test_a_step_before_any_reset_asks_for_a_reset():
    # gymnasium's signal for it, which the env server answers as a refusal rather than a failure
    from gymnasium.error import ResetNeeded

    with pytest.raises(ResetNeeded, match="call reset"):
        WebShopEnv(catalogue="small").step("search[lamp]")


def test_an_option_value_spelled_like_a_button_does_what_the_button_does_as_in_the_original(env):
    """The original dispatches a click on its text (buy now, back to search, < prev, the sub-pages)
    before it looks at options, so such an option value can never be selected."""
    import dataclasses

    from agentgym.environments.webshop.catalogue import Catalogue
    from agentgym.environments.webshop.pages import PageState, render

    catalogue = env.unwrapped.catalogue
    tea = catalogue.by_asin["B0FX000003"]
    styled = dataclasses.replace(tea, options={**tea.options, "style": ("reviews", "next >")})
    products = [styled if product is tea else product for product in catalogue.products]
    shop = Catalogue(products, catalogue.goals, catalogue.split_ranges)
    item = PageState("item", "tea", 1, tea.asin)
    clickables = render(item, "a tea", shop).clickables
    assert clickables["reviews"] == item._replace(subpage="reviews")
    assert clickables["next >"] == item.with_option("style", "next >")  # no such button on an item page
