"""The generated catalogue: sizes, determinism, and the distractor design the reward relies on."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from agentgym.environments.webshop.catalogue import get_catalogue
from agentgym.environments.webshop.generator import (
    PRICE_LEVELS,
    PRODUCT_TYPES,
    SIZES,
    generate_catalogue,
    price_ceiling,
)
from agentgym.environments.webshop.reward import (
    attribute_matches,
    fuzzy_match,
    normalize_color,
    purchase_reward,
)


@pytest.fixture(scope="module")
def default():
    return get_catalogue("default")


def test_default_sizes(default):
    assert len(default.products) == 1200
    assert len(default.goals) == 6000
    assert len({p.query for p in default.products}) == 20
    assert {p.category for p in default.products} == {"beauty", "food", "fashion", "furniture", "electronics"}
    assert len({p.asin for p in default.products}) == 1200
    assert all(len(p.asin) == 10 for p in default.products)
    assert default.split_ranges == {"train": (500, 6000), "test": (0, 500)}


def test_small_sizes():
    small = get_catalogue("small")
    assert (len(small.products), len(small.goals)) == (160, 480)
    assert len({p.query for p in small.products}) == 10
    assert small.split_ranges == {"train": (100, 480), "test": (0, 100)}


def test_generation_is_seeded():
    products, goals = generate_catalogue(SIZES["small"], seed=3)
    again_products, again_goals = generate_catalogue(SIZES["small"], seed=3)
    other_products, _ = generate_catalogue(SIZES["small"], seed=4)
    assert [p.title for p in products] == [p.title for p in again_products]
    assert [g.instruction_text for g in goals] == [g.instruction_text for g in again_goals]
    assert [p.asin for p in products] != [p.asin for p in other_products]


def test_products_are_complete(default):
    for product in default.products[:200]:
        assert product.title and product.description and product.bullet_points and product.reviews
        assert 3 <= len(product.attributes) <= 4
        assert product.options and all(product.options.values())
        assert product.price_tag == f"${product.price}"
        assert product.product_category.count("›") >= 2


def test_goal_shapes(default):
    attribute_counts, option_counts = Counter(), Counter()
    for goal in default.goals:
        attribute_counts[len(goal.attributes)] += 1
        option_counts[len(goal.goal_options)] += 1
        assert goal.instruction_text.endswith(f", and price lower than {goal.price_upper:.2f} dollars")
        product = default.by_asin[goal.asin]
        levels = [level for level in PRICE_LEVELS if level > product.price][:4]
        assert goal.price_upper in levels[1:]
    assert set(attribute_counts) == {1, 2, 3}
    assert set(option_counts) == {0, 1, 2, 3}


def test_price_ceiling_follows_the_original_rule():
    rng = random.Random(0)
    # 14.99: the four levels above are 20, 30, 40, 50; the max of two distinct picks is never 20
    assert {price_ceiling(14.99, rng) for _ in range(200)} == {30.0, 40.0, 50.0}
    assert price_ceiling(985.0, rng) == 1_000_000.0  # only 990 lies above
    assert price_ceiling(979.0, rng) == 990.0  # 980 and 990: the max is always 990


@pytest.mark.parametrize("kind", PRODUCT_TYPES, ids=lambda kind: kind.noun)
def test_pools_are_distinct_under_the_reward(kind):
    for a, b in itertools.combinations(kind.attributes, 2):
        assert not fuzzy_match(a, b), (a, b)
        assert a not in b and b not in a
    values = [value for group in kind.options.values() for value in group]
    assert len(values) == len(set(values))
    for a, b in itertools.combinations(values, 2):
        assert not fuzzy_match(normalize_color(a), normalize_color(b)), (a, b)


def test_products_show_only_their_own_attributes(default):
    pools = {kind.query: kind.attributes for kind in PRODUCT_TYPES}
    for product in default.products:
        for attribute in pools[product.query]:
            assert attribute_matches([attribute], product) == (attribute in product.attributes)


def _best_options(goal, product):
    return {
        name: value
        for name, values in product.options.items()
        for value in values
        if value in goal.goal_options
    }


def test_targets_satisfy_their_goals_and_look_alikes_miss_one_point(default):
    families: dict[tuple[str, str], list] = {}
    for product in default.products:
        families.setdefault((product.query, product.title.split(" - ")[0]), []).append(product)
    for goal in default.goals:
        target = default.by_asin[goal.asin]
        assert purchase_reward(goal, target, _best_options(goal, target)).reward == 1.0
        one_short = (len(goal.attributes) + len(goal.goal_options)) / (
            len(goal.attributes) + len(goal.goal_options) + 1
        )
        look_alikes = [p for p in families[(target.query, target.title.split(" - ")[0])] if p is not target]
        rewards = [purchase_reward(goal, p, _best_options(goal, p)).reward for p in look_alikes]
        assert any(reward == pytest.approx(one_short) for reward in rewards), goal.instruction_text
