import re
from collections import Counter

import pytest

from agentgym.checker import check_env
from agentgym.core import is_hashable
from agentgym.environments.alfworld import ALFWorldEnv, admissible_form
from agentgym.environments.alfworld.generator import TASK_TYPES, split_task_types
from agentgym.evaluation import EvalConfig, evaluate
from agentgym.policies import ExpertPolicy
from agentgym.rollout.engine import GroupRequest, RolloutEngine

# valid_seen game 0 is a living room: "put a remotecontrol in drawer". Its sofa 1 holds a creditcard and
# a newspaper, shelf 4 a pen and two remote controls, the closed drawer 1 a tissuebox.
LIVING_ROOM = 0


def play(env, commands, task_id=LIVING_ROOM):
    """Resets to the game and plays ``commands``; returns the (observation, anchor) after each."""
    observation, info = env.reset(options={"task_id": task_id, "split": "valid_seen"})
    trace = [(observation, info["anchor"])]
    for command in commands:
        observation, _, _, _, info = env.step(command)
        trace.append((observation, info["anchor"]))
    return trace


def test_reset_gives_alfworlds_observation_and_the_info_keys(make_env):
    env = make_env(split="valid_seen")
    observation, info = env.reset(seed=0, options={"task_id": LIVING_ROOM})
    assert observation.startswith("-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room.")
    assert observation.endswith("Your task is to: put a remotecontrol in drawer.")
    assert info["task"] == "put a remotecontrol in drawer."
    assert (info["task_id"], info["split"], info["task_type"]) == (0, "valid_seen", "pick_and_place_simple")
    assert info["won"] is False and is_hashable(info["anchor"])
    assert info["anchor"] == ("middle of the room", (), ())
    assert "go to drawer 1" in info["available_actions"] and "look" in info["available_actions"]
    assert env.unwrapped.game_path.name == "00000.tw-pddl"


def test_splits_and_task_type_filter(make_env):
    env = make_env(split="valid_unseen", task_types=["pick_heat_then_place_in_recep", 2])
    ids = env.unwrapped.task_ids("valid_unseen")
    wanted = {"pick_heat_then_place_in_recep", "look_at_obj_in_light"}  # ALFWorld's id 2 is look_at
    assert len(ids) == 23 + 18 and all(split_task_types("valid_unseen")[i] in wanted for i in ids)
    drawn = Counter(env.reset(seed=seed)[1]["task_type"] for seed in range(6))
    assert set(drawn) <= wanted
    assert env.reset(seed=3)[1]["task_id"] == env.reset(seed=3)[1]["task_id"]
    assert len(env.unwrapped.task_ids("train")) == 459 + 308
    with pytest.raises(ValueError, match="unknown task type 'cooking'"):
        ALFWorldEnv(task_types=["cooking"])
    for task_id in (140, "first", 1.5, [1], True):
        with pytest.raises(ValueError, match=re.escape(f"task_id {task_id!r} is not in split 'valid_seen'")):
            env.reset(options={"task_id": task_id, "split": "valid_seen"})


def test_a_single_task_type_is_one_type_not_its_letters(make_env):
    # as `env_kwargs.task_types=4` or `=pick_heat_then_place_in_recep` on the command line give it
    for task_type in ("pick_heat_then_place_in_recep", 4):
        env = make_env(split="valid_unseen", task_types=task_type)
        assert len(env.unwrapped.task_ids("valid_unseen")) == 23
        assert env.reset(seed=0)[1]["task_type"] == "pick_heat_then_place_in_recep"


def test_a_split_given_to_one_reset_leaves_the_default_split_for_the_next(make_env):
    env = make_env(split="valid_unseen")
    first = env.reset(seed=3)[1]
    env.reset(options={"split": "valid_seen", "task_id": 0})
    again = env.reset(seed=3)[1]
    assert (again["split"], again["task_id"]) == (first["split"], first["task_id"]) == ("valid_unseen", 108)
    # split=None, as for task_id=None, means "not given"
    assert env.reset(options={"split": None, "task_id": 1})[1]["split"] == "valid_unseen"


def test_a_non_admissible_command_changes_nothing(make_env):
    env = make_env()
    _, info = env.reset(options={"task_id": LIVING_ROOM, "split": "valid_seen"})
    env.step("go to shelf 4")
    _, _, _, _, before = env.step("take pen 1 from shelf 4")
    for action in ["take pen 1 from shelf 4", "fly to the moon", "", "go to   the fridge", None]:
        observation, reward, terminated, truncated, info = env.step(action)
        assert observation == "Nothing happens."
        assert (reward, terminated, truncated, info["action_valid"]) == (0.0, False, False, False)
        assert "not an admissible command" in info["error"]
        assert info["anchor"] == before["anchor"]
        assert info["available_actions"] == before["available_actions"]
    assert env.step("inventory")[0] == "You are carrying: a pen 1."


def test_commands_are_matched_leniently():
    admissible = ["go to shelf 4", "move pen 1 to shelf 4", "take pen 1 from shelf 4"]
    assert admissible_form("put pen 1 in/on shelf 4", admissible) == "move pen 1 to shelf 4"
    assert admissible_form("move pen 1 to shelf 4", ["put pen 1 in/on shelf 4"]) == "put pen 1 in/on shelf 4"
    assert (
        admissible_form("go to drawer 2", ["go to drawer 1, and drawer 2"]) == "go to drawer 1, and drawer 2"
    )
    assert admissible_form("go to drawer 3", ["go to drawer 1, and drawer 2"]) is None
    assert admissible_form("take pen 2 from shelf 4", admissible) is None


def test_actions_are_trimmed_and_lowercased(make_env):
    env = make_env()
    play(env, [])
    _, _, _, _, info = env.step("  Go to   SHELF 4 ")
    assert info["action_valid"] and info["anchor"][0] == "shelf 4"
    _, _, _, _, info = env.step("take pen 1 from shelf 4")
    observation, _, _, _, info = env.step("put pen 1 in/on shelf 4")
    assert info["action_valid"] and observation == "You move the pen 1 to the shelf 4."


def test_equal_texts_in_different_states_get_different_anchors(make_env):
    env = make_env()
    # Arriving at the sofa reads the same with empty hands and with the pen in hand.
    trace = play(env, ["go to sofa 1", "go to shelf 4", "take pen 1 from shelf 4", "go to sofa 1"])
    (empty_text, empty_anchor), (holding_text, holding_anchor) = trace[1], trace[4]
    assert (
        empty_text
        == holding_text
        == "You arrive at sofa 1. On the sofa 1, you see a creditcard 1, and a newspaper 1."
    )
    assert empty_anchor != holding_anchor and holding_anchor[1] == ("pen 1",)
    # "Nothing happens." in two places.
    trace = play(env, ["go to sofa 1", "jump", "go to shelf 4", "jump"])
    assert trace[2][0] == trace[4][0] == "Nothing happens."
    assert trace[2][1] != trace[4][1]
    # A closed drawer reads the same before and after a pen was put in it.
    trace = play(
        env,
        [
            "go to drawer 1",
            "go to shelf 4",
            "take pen 1 from shelf 4",
            "go to drawer 1",
            "open drawer 1",
            "move pen 1 to drawer 1",
            "close drawer 1",
            "go to sofa 1",
            "go to drawer 1",
        ],
    )
    assert trace[1][0] == trace[9][0] == "You arrive at drawer 1. The drawer 1 is closed."
    assert trace[9][1] == ("drawer 1", (), ("+pen 1 in drawer 1", "-pen 1 in shelf 4")) != trace[1][1]


def test_equal_states_reached_by_different_paths_share_an_anchor(make_env):
    env = make_env()
    direct = play(env, ["go to sofa 1"])[-1][1]
    detour = play(env, ["go to shelf 1", "go to tvstand 2", "go to sofa 1"])[-1][1]
    assert direct == detour == ("sofa 1", (), ())
    # Opening and closing a drawer, or taking a pen and putting it back, leaves the state as it was.
    at_shelf = play(env, ["go to shelf 4"])[-1][1]
    assert (
        play(env, ["go to drawer 1", "open drawer 1", "close drawer 1", "go to shelf 4"])[-1][1] == at_shelf
    )
    assert play(env, ["go to shelf 4", "take pen 1 from shelf 4", "move pen 1 to shelf 4"])[-1][1] == at_shelf
    # Real changes show: the open drawer, the moved remote.
    moved = play(
        env, ["go to shelf 4", "take remotecontrol 1 from shelf 4", "go to drawer 1", "open drawer 1"]
    )
    assert moved[-1][1] == (
        "drawer 1",
        ("remotecontrol 1",),
        ("+drawer 1 is open", "-remotecontrol 1 in shelf 4"),
    )


def test_winning_ends_the_episode_with_reward_one(make_env):
    env = make_env()
    commands = ["go to shelf 4", "take remotecontrol 1 from shelf 4", "go to drawer 1", "open drawer 1"]
    play(env, commands)
    observation, reward, terminated, truncated, info = env.step("move remotecontrol 1 to drawer 1")
    assert observation == "You move the remotecontrol 1 to the drawer 1."
    assert (reward, terminated, truncated, info["won"], info["action_valid"]) == (
        1.0,
        True,
        False,
        True,
        True,
    )


def test_after_a_win_the_episode_takes_no_more_commands(make_env):
    # A policy that keeps acting after the win must not collect the win's reward again.
    env = make_env()
    play(env, ["go to shelf 4", "take remotecontrol 1 from shelf 4", "go to drawer 1", "open drawer 1"])
    info = env.step("move remotecontrol 1 to drawer 1")[4]
    assert info["won"] and info["available_actions"] == []  # none is accepted any more
    for command in ["take remotecontrol 1 from drawer 1", "move remotecontrol 1 to drawer 1"]:
        _, reward, _, _, info = env.step(command)
        assert (reward, info["action_valid"], info["won"], info["available_actions"]) == (
            0.0,
            False,
            True,
            [],
        )
        assert "call reset()" in info["error"]


# One game of every task type from each evaluation split.
SAMPLE = [
    (split, i)
    for split in ("valid_seen", "valid_unseen")
    for t in TASK_TYPES
    for i in [j for j, tt in enumerate(split_task_types(split)) if tt == t][:1]
]


@pytest.mark.parametrize(("split", "task_id"), SAMPLE)
def test_scripted_expert_solves_sampled_games(make_env, split, task_id):
    env = make_env(split=split)
    _, info = env.reset(options={"task_id": task_id})
    for _ in range(50):
        _, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        assert info["action_valid"]
        if terminated or truncated:
            break
    assert info["won"] and reward == 1.0


@pytest.mark.slow
@pytest.mark.parametrize(("split", "games"), [("valid_seen", 140), ("valid_unseen", 134)])
def test_scripted_expert_solves_the_evaluation_splits(cache_dir, tmp_path, split, games):
    config = EvalConfig(
        env="alfworld",
        policy="expert",
        split=split,
        out=tmp_path,
        env_kwargs={"cache_dir": str(cache_dir)},
        workers=4,
    )
    metrics = evaluate(config)
    assert metrics["episodes"] == games and metrics["failed_episodes"] == 0
    assert metrics["success_rate"] == 1.0, metrics  # as docs/alfworld.md reports
    assert set(metrics["by_task_type"]) == set(TASK_TYPES)
    assert metrics["valid_action_ratio"] == 1.0


def test_planner_expert_solves_a_game(make_env):
    env = make_env(split="valid_seen", expert="planner")
    play(env, ["go to sofa 1", "go to shelf 4", "take pen 1 from shelf 4"])  # off the plan: it replans
    steps = 0
    while True:
        _, _, terminated, _, info = env.step(env.unwrapped.expert_action())
        steps += 1
        if terminated or steps == 20:
            break
    assert info["won"] and steps <= 8


def test_process_pool_rollouts_carry_task_types_and_anchors(cache_dir):
    requests = [GroupRequest(task_id=i, split="valid_seen", seed=i) for i in range(3)]
    with RolloutEngine("alfworld", {"cache_dir": str(cache_dir)}, num_slots=4, num_processes=2) as engine:
        assert engine.parallelism == "process"
        groups = engine.run(ExpertPolicy(), requests, group_size=2)
    trajectories = [t for group in groups for t in group.trajectories]
    assert len(trajectories) == 6 and all(t.won and not t.failed for t in trajectories)
    assert [t.task_type for t in trajectories[::2]] == [split_task_types("valid_seen")[i] for i in range(3)]
    for group in groups:  # group members share the initial state, hence their first anchor
        first, second = group.trajectories
        assert first.steps[0].anchor == second.steps[0].anchor == ("middle of the room", (), ())


def test_check_env_passes(cache_dir):
    report = check_env("alfworld", {"cache_dir": str(cache_dir)})
    assert report.passed, report.failures()


def test_a_step_before_any_reset_asks_for_a_reset(make_env):
    from gymnasium.error import ResetNeeded

    with pytest.raises(ResetNeeded, match="call reset"):
        make_env().unwrapped.step("look")
