import numpy as np
import pytest

from agentgym.environments.alfworld.expert import Goal, parse_goal
from agentgym.environments.alfworld.generator import TASK_TYPES, generate_game, split_task_types


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_goals_are_read_from_the_pddl_problem(task_type):
    index = split_task_types("valid_seen").index(task_type)
    spec, game = generate_game("valid_seen", index)
    expected = Goal(
        object_type=f"{spec.object_target}type".lower(),
        receptacle_type=f"{spec.parent_target}type".lower() if spec.parent_target else None,
        lamp_type=f"{spec.toggle_target}type".lower() if spec.toggle_target else None,
        treatment={
            "pick_clean_then_place_in_recep": "isclean",
            "pick_heat_then_place_in_recep": "ishot",
            "pick_cool_then_place_in_recep": "iscool",
        }.get(task_type),
        count=2 if task_type == "pick_two_obj_and_place" else 1,
    )
    assert parse_goal(game["pddl_problem"]) == expected


def test_a_problem_without_an_alfworld_goal_is_rejected():
    with pytest.raises(ValueError, match="names no object type"):
        parse_goal("(define (problem p) (:goal (and (atLocation agent1 loc1))))")


def test_the_expert_cleans_up_a_useless_object_first(make_env):
    env = make_env(split="valid_seen")
    env.reset(options={"task_id": 0})  # put a remotecontrol in drawer; the pen is in the way
    for command in ["go to shelf 4", "take pen 1 from shelf 4", "go to sofa 1"]:
        env.step(command)
    first = env.unwrapped.expert_action()
    assert first.startswith("go to ")  # the sofa cannot hold a pen: to the first receptacle that can
    for _ in range(20):
        _, _, terminated, _, info = env.step(env.unwrapped.expert_action())
        if terminated:
            break
    assert info["won"]


@pytest.mark.parametrize(
    ("split", "task_id"),
    [("valid_seen", i) for i in range(0, 140, 23)] + [("valid_unseen", i) for i in range(0, 134, 27)],
)
def test_the_expert_finishes_from_wherever_a_random_agent_left_off(make_env, split, task_id):
    env = make_env(split=split)
    _, info = env.reset(options={"task_id": task_id})
    rng = np.random.default_rng(task_id)
    for _ in range(20):  # a random prefix: things opened, moved, treated, carried
        actions = info["available_actions"]
        _, _, terminated, _, info = env.step(actions[int(rng.integers(len(actions)))])
        if terminated:
            return
    for _ in range(30):
        _, _, terminated, _, info = env.step(env.unwrapped.expert_action())
        assert info["action_valid"]
        if terminated:
            break
    assert info["won"]
