"""The original data files (a fixture in their format): cleaning, goal order, and scripted episodes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import agentgym
from agentgym.core import AgentGymError
from agentgym.environments.webshop.real_data import load_real_catalogue, parse_pricing

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("pricing", "values", "tag"),
    [
        ("$14.99", [14.99], "$14.99"),
        ("$64.00", [64.0], "$64.0"),
        ("$1,049.00", [1049.0], "$1049.0"),
        ("$21.50 - $24.00", [21.5, 24.0], "$21.5 to $24.0"),
        ("$25.00 - $30.00 - $35.00", [25.0, 30.0], "$25.0 to $30.0"),
        ("", [100.0], "$100.0"),
        (None, [100.0], "$100.0"),
    ],
)
def test_parse_pricing(pricing, values, tag):
    assert parse_pricing(pricing) == (values, tag)


@pytest.fixture(scope="module")
def human():
    return load_real_catalogue(FIXTURES, "human")


def test_products_are_cleaned(human):
    products, _ = human
    # "nan", the 11-character asin and the repeated B0FX000001 are skipped
    assert [p.asin for p in products] == [
        "B0FX000001", "B0FX000002", "B0FX000003", "B0FX000004", "B0FX000005", "B0FX000007",
    ]  # fmt: skip
    shampoo, conditioner, tea, chair, loose_tea, earbuds = products
    assert shampoo.title == "Thistlebrook Rosemary Mint Shampoo for Dry Hair, Sulfate Free"
    assert shampoo.query == "shampoo"  # " Shampoo " lower-cased and stripped
    assert dict(shampoo.options) == {
        "size": ("8.4 fl oz (pack of 1)", "16.9 fl oz (pack of 2)"),
        "scent": ("rosemary | mint", "unscented"),
    }
    assert dict(tea.options) == {  # the null "Style" group is dropped
        "flavor name": ("chamomile honey", "peppermint", "ginger lemon"),
        "size": ("20 count (pack of 6)", "40 count"),
    }
    assert conditioner.bullet_points == ("Argan oil conditioner for smooth hair",)  # a bare string
    assert conditioner.price_tag == "$21.5 to $24.0" and 21.5 <= conditioner.price <= 24.0
    assert (chair.price, chair.price_tag) == (1049.0, "$1049.0")
    assert (loose_tea.price, loose_tea.price_tag, loose_tea.attributes) == (100.0, "$100.0", ("DUMMY_ATTR",))
    assert earbuds.price_tag == "$25.0 to $30.0" and 25.0 <= earbuds.price <= 30.0
    assert shampoo.rating == "N.A." and shampoo.reviews == ()


def test_human_goals_in_the_original_order(human):
    _, goals = human
    # before the shuffle: B0FX000001 (its second record has no attributes), B0FX000003, B0FX000004,
    # B0FX000007; random.seed(233); random.shuffle(list(range(4))) gives [3, 0, 2, 1]
    assert [g.asin for g in goals] == ["B0FX000007", "B0FX000001", "B0FX000004", "B0FX000003"]
    earbuds, shampoo, chair, tea = goals
    assert earbuds.instruction_text.startswith(
        "i need noise cancelling wireless earbuds, and price lower than "
    )
    assert shampoo.goal_options == ("16.9 fl oz (pack of 2)", "rosemary | mint")
    assert shampoo.attributes == ("sulfate free", "dry hair")
    assert shampoo.name == "Thistlebrook Rosemary Mint Shampoo for Dry Hair, Sulfate Free"
    assert shampoo.price_upper in (30.0, 40.0, 50.0)  # 14.99: levels 20, 30, 40, 50 minus the first
    assert shampoo.instruction_text == (
        "i need a sulfate free rosemary mint shampoo for dry hair, the 16.9 fl oz two pack"
        f", and price lower than {shampoo.price_upper:.2f} dollars"
    )
    # 1049 dollars: no two levels above it, so no limit and no price text
    assert chair.price_upper == 1_000_000.0
    assert chair.instruction_text == "i'm looking for a button tufted wingback reading chair in navy blue"
    assert tea.price_upper in (20.0, 30.0, 40.0)
    assert all(goal.weight == 1.0 for goal in goals)


def test_shuffle_equals_the_original_global_shuffle():
    _, goals = load_real_catalogue(FIXTURES, "synthetic")
    unshuffled = [
        ("B0FX000001", {"scent": s, "size": z})
        for s in ("rosemary | mint", "unscented")
        for z in ("8.4 fl oz (pack of 1)", "16.9 fl oz (pack of 2)")
    ]
    unshuffled.append(("B0FX000002", {}))
    unshuffled += [
        ("B0FX000003", {"flavor name": f, "size": z})
        for f in ("chamomile honey", "peppermint", "ginger lemon")
        for z in ("20 count (pack of 6)", "40 count")
    ]
    unshuffled += [("B0FX000007", {"color": c}) for c in ("black", "white")]
    state = random.getstate()
    try:
        random.seed(233)
        random.shuffle(unshuffled)  # what the original does to its goal list
    finally:
        random.setstate(state)
    assert [(g.asin, dict(g.goal_options)) for g in goals] == unshuffled


def test_synthetic_goals():
    _, goals = load_real_catalogue(FIXTURES, "synthetic")
    assert len(goals) == 13  # 2 x 2 + 1 + 3 x 2 + 2; the chair and B0FX000005 have no instruction
    tea = next(g for g in goals if g.goal_options == {"flavor name": "peppermint", "size": "40 count"})
    assert tea.instruction_text == (
        "Find me caffeine free herbal tea bags with flavor name: peppermint, and size: 40 count"
        f", and price lower than {tea.price_upper:.2f} dollars"
    )
    # weight = mean over the goal's attributes of 1 / (goals carrying it): the tea's two attributes
    # each appear in its 6 goals -> 1/6; the shampoo's in 4 -> 1/4; the earbuds' in 2 -> 1/2
    weights = {g.asin: g.weight for g in goals}
    assert weights == pytest.approx(
        {"B0FX000001": 1 / 4, "B0FX000002": 1.0, "B0FX000003": 1 / 6, "B0FX000007": 1 / 2}
    )
    # one price ceiling per product, shared by its option combinations
    assert len({g.price_upper for g in goals if g.asin == "B0FX000003"}) == 1


def test_seed_makes_price_draws_reproducible():
    first = load_real_catalogue(FIXTURES, "human", seed=5)
    again = load_real_catalogue(FIXTURES, "human", seed=5)
    assert [p.price for p in first[0]] == [p.price for p in again[0]]
    assert [g.price_upper for g in first[1]] == [g.price_upper for g in again[1]]


def test_missing_files_explain_themselves(tmp_path):
    with pytest.raises(AgentGymError, match="items_shuffle"):
        agentgym.make("webshop", data_dir=str(tmp_path))
    with pytest.raises(AgentGymError, match="goals="):
        load_real_catalogue(FIXTURES, "nonsense")


def test_a_data_dir_under_the_home_directory_may_start_with_a_tilde(tmp_path, monkeypatch):
    (tmp_path / "webshop").symlink_to(FIXTURES)
    monkeypatch.setenv("HOME", str(tmp_path))
    env = agentgym.make("webshop", data_dir="~/webshop", goals="human")
    assert env.unwrapped.task_ids("test") == [0, 1, 2, 3]


def play(env, task_id, actions):
    env.reset(seed=0, options={"task_id": task_id})
    for action in actions:
        _, reward, terminated, _, info = env.step(action)
        assert info["action_valid"], (action, info.get("error"))
    assert terminated
    return reward, info


@pytest.fixture(scope="module")
def human_env():
    return agentgym.make("webshop", data_dir=str(FIXTURES), goals="human")


def test_splits_of_a_small_file(human_env):
    env = human_env.unwrapped
    assert env.splits == ("test",)  # 4 goals: eval (500-1499) and train (1500-) are empty
    assert env.task_ids("test") == [0, 1, 2, 3]


def test_replayed_episodes_earn_the_original_rewards(human_env):
    # goal 1: the shampoo (2 attributes, 2 options, ceiling >= 30)
    reward, info = play(
        human_env,
        1,
        ["search[sulfate free rosemary mint shampoo]", "click[b0fx000001]", "click[16.9 fl oz (pack of 2)]",
         "click[rosemary | mint]", "click[buy now]"],
    )  # fmt: skip
    assert reward == 1.0 and info["won"] and info["score"] == 1.0

    # wrong size and scent: "8.4 fl oz (pack of 1)" still scores 87 against the goal size, "unscented" fails:
    # (2 + 1 + 1) / (2 + 2 + 1) = 0.8
    reward, info = play(
        human_env,
        1,
        ["search[sulfate free shampoo]", "click[b0fx000001]", "click[8.4 fl oz (pack of 1)]",
         "click[unscented]", "click[buy now]"],
    )  # fmt: skip
    assert reward == pytest.approx(0.8) and not info["won"]

    # the conditioner: categories share 3 parts -> r_type 1; no attribute ("smooth hair" vs "dry hair" 67),
    # no option, price 21.5-24 under the ceiling: (0 + 0 + 1) / 5 = 0.2
    reward, _ = play(human_env, 1, ["search[argan oil conditioner]", "click[b0fx000002]", "click[buy now]"])
    assert reward == pytest.approx(0.2)

    # the chair for the shampoo goal: no shared noun, query or category -> r_type 0
    reward, info = play(human_env, 1, ["search[wingback chair]", "click[b0fx000004]", "click[buy now]"])
    assert reward == 0.0 and info["reward_details"]["r_type"] == 0.0

    # goal 2, the chair: no price limit, "navy blue" chosen: 1.0; without the option: (1 + 0 + 1) / 3
    assert (
        play(
            human_env,
            2,
            ["search[wingback chair]", "click[b0fx000004]", "click[navy blue]", "click[buy now]"],
        )[0]
        == 1.0
    )
    reward, _ = play(human_env, 2, ["search[wingback chair]", "click[b0fx000004]", "click[buy now]"])
    assert reward == pytest.approx(2 / 3)


def test_synthetic_episode_compares_name_value_pairs():
    env = agentgym.make("webshop", data_dir=str(FIXTURES), goals="synthetic")
    goals = env.unwrapped.catalogue.goals
    task_id = next(
        i
        for i, g in enumerate(goals)
        if g.goal_options == {"flavor name": "chamomile honey", "size": "40 count"}
    )
    actions = [
        "search[chamomile tea]",
        "click[b0fx000003]",
        "click[peppermint]",
        "click[40 count]",
        "click[buy now]",
    ]
    # ('flavor name', 'chamomile honey') vs "mint" (peppermint normalised): no; ('size', '40 count') ⊇ {40, count}:
    # 2 attributes + 1 option + price: 4 / 5
    assert play(env, task_id, actions)[0] == pytest.approx(0.8)


def test_expert_solves_the_fixture(human_env):
    env = human_env.unwrapped
    for task_id in env.task_ids("test"):
        env.reset(options={"task_id": task_id})
        for _ in range(15):
            *_, terminated, _, info = env.step(env.expert_action())
            if terminated:
                break
        assert info["won"], (task_id, info.get("reward_details"))


def test_full_file_names_load_too(tmp_path):
    for source, target in (
        ("items_shuffle_1000.json", "items_shuffle.json"),
        ("items_ins_v2_1000.json", "items_ins_v2.json"),
        ("items_human_ins.json", "items_human_ins.json"),
    ):
        (tmp_path / target).write_bytes((FIXTURES / source).read_bytes())
    _, goals = load_real_catalogue(tmp_path, "human", subset="auto")
    _, expected = load_real_catalogue(FIXTURES, "human", subset="1000")
    assert [g.instruction_text for g in goals] == [g.instruction_text for g in expected]
    with pytest.raises(AgentGymError, match=r"items_shuffle_1000\.json is missing"):
        load_real_catalogue(tmp_path, "human", subset="1000")


@pytest.mark.parametrize(
    ("broken", "content", "message"),
    [
        ("items_shuffle_1000.json", "<!DOCTYPE html><html>Google Drive</html>", "is not valid JSON"),
        ("items_human_ins.json", '{"B0FX000001": [', "is not valid JSON"),
        ("items_shuffle_1000.json", '{"B0FX000001": {}}', "should hold an array of product objects"),
        ("items_ins_v2_1000.json", "[]", "should hold an object keyed by asin"),
    ],
)
def test_unreadable_data_files_are_named(tmp_path, broken, content, message):
    for name in ("items_shuffle_1000.json", "items_ins_v2_1000.json", "items_human_ins.json"):
        (tmp_path / name).write_text((FIXTURES / name).read_text())
    (tmp_path / broken).write_text(content)
    with pytest.raises(AgentGymError, match=f"{broken} {message}"):
        load_real_catalogue(tmp_path, "human")


def test_an_empty_attribute_list_stays_empty(tmp_path):
    # The original copies the list as it is; only a product without one gets ["DUMMY_ATTR"].
    for name in ("items_shuffle_1000.json", "items_human_ins.json"):
        (tmp_path / name).write_text((FIXTURES / name).read_text())
    attributes = json.loads((FIXTURES / "items_ins_v2_1000.json").read_text())
    attributes["B0FX000002"]["attributes"] = []
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps(attributes))
    env = agentgym.make("webshop", data_dir=str(tmp_path), goals="human", show_attributes=True)
    conditioner = env.unwrapped.catalogue.by_asin["B0FX000002"]
    assert conditioner.attributes == ()
    assert env.unwrapped.catalogue.by_asin["B0FX000005"].attributes == ("DUMMY_ATTR",)  # null: none
    env.reset(seed=0, options={"task_id": 0})
    env.step("search[argan oil conditioner]")
    env.step("click[b0fx000002]")
    observation, *_, info = env.step("click[attributes]")
    # Nothing before the category, the query and the category path.
    tail = (
        f"< Prev [SEP] {conditioner.category} [SEP] {conditioner.query} [SEP] {conditioner.product_category}"
    )
    assert info["action_valid"] and observation.endswith(tail)
