"""Hand-computed values of every reward component and every r_type case."""

from __future__ import annotations

import pytest

from agentgym.environments.webshop.data import Goal, Product
from agentgym.environments.webshop.reward import (
    attribute_matches,
    fuzzy_match,
    fuzzy_score,
    normalize_color,
    option_matches,
    purchase_reward,
    title_nouns,
    type_reward,
)


def make_product(**fields) -> Product:
    defaults = dict(
        asin="B0TEST0001",
        title="Thistlebrook Rosemary Mint Shampoo for Dry Hair",
        description="",
        bullet_points=(),
        price=14.99,
        price_tag="$14.99",
        options={},
        attributes=(),
        query="shampoo",
        product_category="Beauty & Personal Care › Hair Care › Shampoos",
    )
    return Product(**{**defaults, **fields})


def make_goal(**fields) -> Goal:
    defaults = dict(
        asin="B0TEST0001",
        instruction_text="",
        attributes=(),
        goal_options=(),
        price_upper=30.0,
        name="Thistlebrook Rosemary Mint Shampoo for Dry Hair",
        query="shampoo",
        product_category="Beauty & Personal Care › Hair Care › Shampoos",
    )
    return Goal(**{**defaults, **fields})


# --- fuzzy matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "score"),
    [
        # tokens {4, ounce} / {8, ounce}: ratio("ounce 4", "ounce 8") = (14 - 2) / 14 = 85.7 -> 86
        ("4 ounce", "8 ounce", 86),
        # common "fl of oz pack" (13 chars); SA = "fl of oz pack 1 4 8" (19), SB = "fl of oz pack 16 2 9" (20);
        # difflib matches "fl of oz pack 1" (15), then " " and " " (1 + 1): 2 x 17 / 39 = 87.2 -> 87
        ("8.4 fl oz (pack of 1)", "16.9 fl oz (pack of 2)", 87),
        ("powder snow", "cool powder snow", 100),  # one token set contains the other
        ("Sulfate-Free", "sulfate free", 100),  # punctuation and case are dropped
        ("café", "caf", 100),  # thefuzz deletes code points 128-255 (é is 233)
        # S = "hair", SA = "hair dry" (8), SB = "hair smooth" (11): max(8/12, 10/19, ...) = 66.7 -> 67
        ("dry hair", "smooth hair", 67),
        # The pinned original (thefuzz 0.19.0 without python-Levenshtein) scores with difflib's
        # SequenceMatcher, which takes the longest block first: "nut" (3), then "co" (2) in "coco" vs
        # "ccop": 2 x 5 / 14 = 71.4 -> 71, no match. The indel (LCS) similarity would find "ccnut"
        # plus "o" (6): 12 / 14 = 85.7 -> 86, a match.
        ("coconut", "ccopnut", 71),
        ("", "anything", 0),
        ("!!!", "anything", 0),  # nothing left after preprocessing
    ],
)
def test_fuzzy_score(x, y, score):
    assert fuzzy_score(x, y) == score
    assert fuzzy_score(y, x) == score


def test_fuzzy_match_is_strictly_above_85():
    assert fuzzy_match("4 ounce", "8 ounce")  # 86
    # "ounce 12" vs "ounce 8": ratio("ounce", "ounce 8") = 10/12 = 83.3; ratio("ounce 12", "ounce 8") = 12/15 = 80
    assert fuzzy_score("12 ounce", "8 ounce") == 83
    assert not fuzzy_match("12 ounce", "8 ounce")


def test_fuzzy_score_keeps_the_original_argument_order():
    # difflib is not symmetric. ("regular", "regurlr"): "regu" (4), then in "lar" vs "rlr" the block
    # earliest in the first string, "l" (1), then "r" (1): 2 x 6 / 14 = 85.7 -> 86, a match.
    assert fuzzy_score("regular", "regurlr") == 86
    # ("regurlr", "regular"): "regu" (4), then in "rlr" vs "lar" the earliest block is "r" (the last
    # "r" of "lar"), leaving nothing on its right: 2 x 5 / 14 = 71.4 -> 71, no match.
    assert fuzzy_score("regurlr", "regular") == 71
    # The reward passes the product's attribute first and the goal's second, as the original:
    product = make_product(title="Thistlebrook Shampoo", attributes=("regular",))
    assert attribute_matches(["regurlr"], product) == 1  # token_set_ratio("regular", "regurlr") = 86
    product = make_product(title="Thistlebrook Shampoo", attributes=("regurlr",))
    assert attribute_matches(["regular"], product) == 0  # token_set_ratio("regurlr", "regular") = 71


def test_an_attribute_scored_71_by_the_original_is_not_matched():
    product = make_product(title="Thistlebrook Shampoo", attributes=("coconut", "dry hair"))
    goal = make_goal(attributes=("ccopnut", "dry hair"))
    # "ccopnut" vs "coconut": 71 (see test_fuzzy_score), and no substring of the title, bullets or
    # description; "dry hair" matches. r_type 1 x (1 attribute + 0 options + price ok) / (2 + 0 + 1) = 2/3
    result = purchase_reward(goal, product, {})
    assert (result.n_att, result.reward) == (1, pytest.approx(2 / 3))


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("navy blue", "blue"),
        ("light blue", "blue"),
        ("dark grey", "dark"),  # "dark" comes before "grey" in the sorted vocabulary
        ("rosemary | mint", "mint"),
        ("charcoal | grey", "charcoal"),
        ("standard", "tan"),  # a substring of a non-colour word counts
        ("Navy Blue", "Navy Blue"),  # case-sensitive: no lower-case colour word inside
        ("16.9 fl oz (pack of 2)", "16.9 fl oz (pack of 2)"),
        (("color", "navy blue"), ("color", "navy blue")),  # tuples compare whole elements
        (("color", "blue"), "blue"),
    ],
)
def test_normalize_color(value, normalized):
    assert normalize_color(value) == normalized


# --- attributes and options -----------------------------------------------------------------------


def test_attribute_matches_fuzzy_then_substring():
    product = make_product(
        title="Thistlebrook Shampoo",
        bullet_points=("Made With Argan Oil",),
        description="Paraben-free and gentle",
        attributes=("sulfate free", "dry hair"),
    )
    assert attribute_matches(["sulfate-free"], product) == 1  # fuzzy 100 against "sulfate free"
    assert attribute_matches(["argan oil"], product) == 1  # substring of the lower-cased bullets
    assert attribute_matches(["paraben free"], product) == 0  # "paraben-free" is no substring; fuzzy 58
    assert attribute_matches(["Argan Oil"], product) == 0  # the goal attribute is not lower-cased
    assert attribute_matches(["gentle"], product) == 1  # substring of the description
    assert attribute_matches(["sulfate-free", "argan oil", "paraben free", "Argan Oil"], product) == 2


def test_attribute_counted_once_even_when_both_rules_hold():
    product = make_product(title="Sulfate Free Shampoo", attributes=("sulfate free",))
    assert attribute_matches(["sulfate free"], product) == 1


def test_option_matches_human_values():
    goal_options = ("16.9 fl oz (pack of 2)", "rosemary | mint")
    # "8.4 fl oz (pack of 1)" scores 87 against the size; "unscented" is far from "mint"
    assert option_matches(goal_options, ["8.4 fl oz (pack of 1)", "unscented"]) == 1
    assert option_matches(goal_options, ["16.9 fl oz (pack of 2)", "rosemary | mint"]) == 2
    assert option_matches(goal_options, []) == 0
    assert option_matches(("light blue",), ["navy blue"]) == 1  # both normalise to "blue"
    # one chosen value may satisfy several goal options
    assert option_matches(("black", "black color"), ["black"]) == 2


def test_option_matches_synthetic_pairs():
    goal_options = {"color": "navy blue", "size": "large"}
    # ('color', 'navy blue') -> tokens {color, navy, blue} contain "blue" (the normalised choice): 100;
    # ('size', 'large') vs "small" or "blue": no token in common, ratio well below 85
    assert option_matches(goal_options, ["navy blue", "small"]) == 1
    assert option_matches(goal_options, ["navy blue", "large"]) == 2
    assert option_matches({"color": "blue"}, ["navy blue"]) == 1  # the tuple holds a colour word


# --- type reward ----------------------------------------------------------------------------------


def test_title_nouns():
    assert title_nouns("Meadowlark Organic Chamomile Honey Herbal Tea Bags, Caffeine-Free") == [
        "meadowlark", "chamomile", "honey", "herbal", "tea", "bags", "caffeine",
    ]  # fmt: skip
    assert title_nouns("16.9 fl oz, for the Best") == ["fl", "oz"]


OTHER_PATH = "Home & Kitchen › Bath › Shampoo Bars"


@pytest.mark.parametrize(
    ("goal_name", "product_title", "query", "path", "r_type", "title_score"),
    [
        # goal nouns: thistlebrook, rosemary, mint, shampoo, hair (5); shared {mint, shampoo}: 2/5 > 0.2
        ("Thistlebrook Rosemary Mint Shampoo for Dry Hair", "Larkspire Mint Shampoo", "bars", OTHER_PATH, 1.0, 0.4),
        # shared {shampoo}: 1/5 = 0.2 is not > 0.2, and neither the query nor the category agrees
        ("Thistlebrook Rosemary Mint Shampoo for Dry Hair", "Larkspire Shampoo Bar", "bars", OTHER_PATH, 0.5, 0.2),
        # the same names, but equal queries
        ("Thistlebrook Rosemary Mint Shampoo for Dry Hair", "Larkspire Shampoo Bar", "shampoo", OTHER_PATH, 1.0, 0.2),
        # the same names, categories sharing "Beauty & Personal Care" and "Hair Care"
        (
            "Thistlebrook Rosemary Mint Shampoo for Dry Hair", "Larkspire Shampoo Bar", "bars",
            "Beauty & Personal Care › Hair Care › Bars", 1.0, 0.2,
        ),
        # 12 goal nouns, 1 shared: 1/12 = 0.083 < 0.1 wins over the query match
        (
            "Thistlebrook Rosemary Mint Shampoo Bar Travel Tin Gift Set Bundle Kit Box", "Larkspire Box",
            "shampoo", OTHER_PATH, 0.1, 1 / 12,
        ),
        # nothing shared: 0.0 whatever the query and category say
        (
            "Thistlebrook Rosemary Mint Shampoo for Dry Hair", "Brisbury Reading Chair", "shampoo",
            "Beauty & Personal Care › Hair Care › Shampoos", 0.0, 0.0,
        ),
        # no goal nouns: title_score = 0.2, so the type rests on query/category
        ("The Best", "Brisbury Reading Chair", "bars", OTHER_PATH, 0.5, 0.2),
        ("The Best", "Brisbury Reading Chair", "shampoo", OTHER_PATH, 1.0, 0.2),
        # repeated goal nouns count in the denominator: [tea, tea, cup] vs {tea} = 1/3
        ("Tea Tea Cup", "Tea", "bars", OTHER_PATH, 1.0, 1 / 3),
    ],
)  # fmt: skip
def test_type_reward_cases(goal_name, product_title, query, path, r_type, title_score):
    goal = make_goal(name=goal_name)
    product = make_product(title=product_title, query=query, product_category=path)
    result = type_reward(goal, product)
    assert result.r_type == r_type
    assert result.title_score == pytest.approx(title_score)


def test_category_match_needs_two_shared_parts():
    goal = make_goal(product_category="A › B › C")
    assert type_reward(goal, make_product(product_category="A›B")).category_match
    assert not type_reward(goal, make_product(product_category="A › X › Y")).category_match


# --- the whole reward -----------------------------------------------------------------------------


@pytest.fixture
def shampoo() -> Product:
    return make_product(
        attributes=("sulfate free", "dry hair", "paraben free"),
        options={"size": ("8 fl oz", "32 fl oz"), "color": ("red", "green")},
        price=24.0,
    )


def test_worked_example_one_wrong_option(shampoo):
    goal = make_goal(
        attributes=("sulfate free", "dry hair", "paraben free"), goal_options=("32 fl oz", "red")
    )
    result = purchase_reward(goal, shampoo, {"size": "32 fl oz", "color": "green"})
    # r_type 1 x (3 attributes + 1 option + price ok) / (3 + 2 + 1) = 5/6
    assert result.reward == pytest.approx(5 / 6)
    assert (result.n_att, result.n_opt, result.r_price, result.r_type) == (3, 1, True, 1.0)


def test_full_match_and_price_limits(shampoo):
    goal = make_goal(attributes=("sulfate free",), goal_options=("32 fl oz",), price_upper=24.0)
    assert purchase_reward(goal, shampoo, {"size": "32 fl oz"}).reward == 1.0  # 24.0 <= 24.0: inclusive
    # paid 24.01 > 24: (1 + 1 + 0) / (1 + 1 + 1) = 2/3
    assert purchase_reward(goal, shampoo, {"size": "32 fl oz"}, price=24.01).reward == pytest.approx(2 / 3)
    # no option chosen: (1 + 0 + 1) / 3
    assert purchase_reward(goal, shampoo, {}).reward == pytest.approx(2 / 3)


def test_type_reward_scales_the_sum(shampoo):
    goal = make_goal(
        name="Larkspire Shampoo Bar", query="bars", product_category=OTHER_PATH, attributes=("dry hair",)
    )
    # product nouns {thistlebrook, rosemary, mint, shampoo, hair}; goal nouns [larkspire, shampoo, bar]:
    # title_score 1/3 > 0.2 -> r_type 1.0; now drop to 0.5 with a goal name sharing 1 of 5 nouns
    assert purchase_reward(goal, shampoo, {}).reward == 1.0
    goal = make_goal(
        name="Larkspire Soap Bar Travel Shampoo",
        query="bars",
        product_category=OTHER_PATH,
        attributes=("dry hair",),
    )
    # goal nouns [larkspire, soap, bar, travel, shampoo]: 1/5 = 0.2 -> 0.5 x (1 + 0 + 1)/(1 + 0 + 1) = 0.5
    assert purchase_reward(goal, shampoo, {}).reward == 0.5


def test_synthetic_goal_reward(shampoo):
    goal = make_goal(attributes=("dry hair", "argan oil"), goal_options={"color": "red", "size": "8 fl oz"})
    result = purchase_reward(goal, shampoo, {"color": "red", "size": "32 fl oz"})
    # attributes: "dry hair" yes, "argan oil" no -> 1; options: ('color','red') holds the colour "red" -> match;
    # ('size', '8 fl oz') vs "32 fl oz": S = "fl oz", SA = "fl oz 32", SB = "fl oz 8 size" -> 77, no match
    # (1 + 1 + 1) / (2 + 2 + 1) = 3/5
    assert result.reward == pytest.approx(3 / 5)
    assert result.as_dict()["n_opt"] == 1
