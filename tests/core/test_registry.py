import gymnasium
import pytest

import agentgym
from agentgym.core import AgentGymError
from agentgym.registry import turn_limit


def test_make_by_short_and_full_id_and_through_gymnasium():
    for env in (
        agentgym.make("test-keydoor"),
        agentgym.make("agentgym/test-keydoor"),
        gymnasium.make("agentgym/test-keydoor"),
    ):
        observation, info = env.reset(seed=0, options={"task_id": 1, "split": "train"})
        assert isinstance(observation, str) and info["task_id"] == 1
        env.close()


def test_list_envs_has_builtins_and_registered_ids():
    envs = agentgym.list_envs()
    assert {"webshop", "alfworld", "search-qa", "test-keydoor"} <= set(envs)
    assert envs == sorted(envs)


def test_spec_carries_defaults_and_make_merges_kwargs():
    agentgym.register("test-keydoor-big", "toy_envs:KeyDoorEnv", max_episode_steps=7, num_rooms=6)
    try:
        env_spec = agentgym.spec("test-keydoor-big")
        assert env_spec.max_episode_steps == 7 and env_spec.kwargs == {"num_rooms": 6}
        assert agentgym.make("test-keydoor-big").unwrapped.num_rooms == 6
        assert agentgym.make("test-keydoor-big", num_rooms=3).unwrapped.num_rooms == 3
    finally:
        agentgym.deregister("test-keydoor-big")


def test_unknown_id_suggests_a_close_match():
    with pytest.raises(
        AgentGymError, match=r"unknown environment 'test-keydor'. Did you mean 'test-keydoor'\?"
    ):
        agentgym.make("test-keydor")


def test_unknown_kwarg_names_the_accepted_ones():
    with pytest.raises(AgentGymError, match=r"unknown option\(s\) colour; accepted: .*num_rooms"):
        agentgym.make("test-keydoor", colour="red")


def test_the_time_limit_option_is_never_called_unknown():
    with pytest.raises(AgentGymError, match=r"unknown option\(s\) colour; accepted: .*max_episode_steps"):
        agentgym.make("test-keydoor", max_episode_steps=5, colour="red")


def test_registering_a_taken_id_differently_is_an_error_and_same_is_idempotent():
    agentgym.register("test-keydoor", "toy_envs:KeyDoorEnv", max_episode_steps=20)
    with pytest.raises(AgentGymError, match="already registered"):
        agentgym.register("test-keydoor", "toy_envs:FaultyEnv")
    with pytest.raises(AgentGymError, match="already registered"):
        agentgym.register("test-keydoor", "toy_envs:KeyDoorEnv", max_episode_steps=99)


def test_an_id_gymnasium_cannot_hold_is_a_one_line_error():
    with pytest.raises(AgentGymError, match="cannot register environment id 'bad id!'"):
        agentgym.register("bad id!", "toy_envs:KeyDoorEnv")


def test_an_environment_whose_module_is_missing_names_it():
    agentgym.register("test-needs-extra", "no_such_optional_dependency.env:Env")
    try:
        with pytest.raises(
            AgentGymError, match=r"test-needs-extra: cannot import .*no_such_optional_dependency"
        ):
            agentgym.make("test-needs-extra")
    finally:
        agentgym.deregister("test-needs-extra")


def test_an_instance_whose_first_reset_was_refused_still_steps():
    env = agentgym.make("test-keydoor")
    with pytest.raises(ValueError):
        env.reset(seed=0, options={"task_id": "no such task"})
    env.reset(seed=0, options={"task_id": 1})
    observation, _, terminated, _, info = env.step("look around")
    assert isinstance(observation, str) and not terminated and "action_valid" in info


def test_time_limit_comes_from_the_registration():
    env = agentgym.make("test-keydoor")
    env.reset(seed=0)
    truncated = False
    for _ in range(20):
        *_, truncated, _ = env.step("look around")
    assert truncated


def test_a_turn_limit_of_minus_one_is_no_limit_as_in_gymnasium():
    # gymnasium.make(max_episode_steps=-1) applies no TimeLimit; the engine and the env server read
    # the limit through turn_limit, which must not report -1 (every episode would end after a turn).
    env = agentgym.make("test-keydoor", max_episode_steps=-1)
    assert not isinstance(env, gymnasium.wrappers.TimeLimit)
    assert turn_limit(agentgym.spec("test-keydoor"), {"max_episode_steps": -1}) is None
    assert turn_limit(agentgym.spec("test-keydoor"), {"max_episode_steps": 5}) == 5
    assert turn_limit(agentgym.spec("test-keydoor"), {}) == 20


def test_an_entry_point_string_without_a_colon_is_refused_when_registered():
    try:
        with pytest.raises(AgentGymError, match=r"entry point 'toy_envs.KeyDoorEnv' .*'module:Class'"):
            agentgym.register("test-dotted", "toy_envs.KeyDoorEnv")
        assert "test-dotted" not in agentgym.list_envs()
    finally:
        agentgym.deregister("test-dotted")


def test_an_unversioned_id_names_the_latest_version_as_in_gymnasium(toy_envs):
    for version in (1, 2):
        agentgym.register(f"test-versioned-v{version}", "toy_envs:KeyDoorEnv")
    try:
        assert agentgym.spec("test-versioned").id == "agentgym/test-versioned-v2"
        assert agentgym.make("test-versioned").spec.id == gymnasium.make("agentgym/test-versioned").spec.id
    finally:
        for version in (1, 2):
            agentgym.registry.deregister(f"test-versioned-v{version}")
