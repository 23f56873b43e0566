import re
import time

import pytest

import agentgym
from agentgym.agents import AgentConfig
from agentgym.core import AgentGymError
from agentgym.policies import ExpertPolicy, SamplingParams
from agentgym.policies.base import Completion
from agentgym.policies.hf import HFPolicy
from agentgym.rollout import GroupRequest, RolloutEngine
from agentgym.trainers.models import load_model


class TextPolicy:
    """A policy over prompts: ``choose(admissible_actions, prompt_text) -> completion text``."""

    def __init__(self, choose):
        self.choose = choose
        self.batch_sizes: list[int] = []

    def generate(self, prompts, sampling):
        self.batch_sizes.append(len(prompts))
        completions = []
        for messages in prompts:
            text = messages[-1]["content"]
            found = re.search(r"Admissible actions: (.*)$", text)
            actions = found.group(1).split(", ") if found else []
            completions.append(
                Completion(
                    self.choose(actions, text), token_ids=[1, 2], logprobs=[-0.1, -0.2], prompt_ids=[5]
                )
            )
        return completions


def keydoor_greedy(actions, text):
    for wanted in ("take key", "open door"):
        if wanted in actions:
            return f"<action>{wanted}</action>"
    goal = re.search(r"Task: Reach the (\w+)\.", text).group(1)
    return f"<action>go {goal}</action>" if f"go {goal}" in actions else f"<action>{actions[-1]}</action>"


def requests(n, split="train"):
    return [GroupRequest(task_id=i, split=split, seed=100 + i) for i in range(n)]


def test_expert_groups_share_their_initial_state_and_win():
    with RolloutEngine("test-keydoor", num_slots=4) as engine:
        groups = engine.run(ExpertPolicy(), requests(3), group_size=3)
    assert [g.task_id for g in groups] == [0, 1, 2]
    for group in groups:
        assert len(group.trajectories) == 3 and [t.traj for t in group.trajectories] == [0, 1, 2]
        first_steps = {(t.steps[0].observation, t.steps[0].anchor) for t in group.trajectories}
        assert len(first_steps) == 1
        assert all(t.won and not t.failed and t.steps[-1].terminated for t in group.trajectories)
        assert group.trajectories[0].steps[0].completion.startswith("<action>")


def test_finished_episodes_generate_nothing_and_waves_reuse_slots():
    policy = TextPolicy(keydoor_greedy)
    with RolloutEngine("test-keydoor", num_slots=3) as engine:
        groups = engine.run(policy, requests(4), group_size=2, sampling=SamplingParams(max_tokens=8))
    trajectories = [t for g in groups for t in g.trajectories]
    assert len(trajectories) == 8
    assert sum(policy.batch_sizes) == sum(len(t.steps) for t in trajectories)
    assert max(policy.batch_sizes) <= 3
    step = trajectories[0].steps[0]
    assert step.response_ids == [1, 2] and step.response_logprobs == [-0.1, -0.2] and step.prompt_ids == [5]


def test_constrained_decoding_takes_only_admissible_actions(tiny_model_dir):
    policy = HFPolicy(*load_model(str(tiny_model_dir), device="cpu"))
    sampling = SamplingParams(temperature=1.0, max_tokens=24, seed=0)
    constrained = AgentConfig(constrain_actions=True, show_available_actions=False)
    with RolloutEngine("test-keydoor", num_slots=4, max_steps=6, agent_config=constrained) as engine:
        groups = engine.run(policy, requests(2), group_size=2, sampling=sampling)
    steps = [step for group in groups for t in group.trajectories for step in t.steps]
    assert len(steps) >= 4 and all(step.valid for step in steps)
    with RolloutEngine("test-keydoor", num_slots=4, max_steps=6) as engine:  # the untrained model, free
        groups = engine.run(policy, requests(2), group_size=2, sampling=sampling)
    assert not any(step.valid for group in groups for t in group.trajectories for step in t.steps)


def test_constrained_decoding_needs_a_policy_that_supports_it():
    config = AgentConfig(constrain_actions=True)
    with (
        RolloutEngine("test-keydoor", num_slots=2, agent_config=config) as engine,
        pytest.raises(AgentGymError, match="constrained decoding"),
    ):
        engine.run(TextPolicy(keydoor_greedy), requests(1))


def test_unparseable_completions_cost_a_turn_but_never_reach_the_env():
    # FaultyEnv raises on "raise": if the unparsed text reached it, the episode would fail.
    policy = TextPolicy(lambda actions, text: "raise")
    with RolloutEngine("test-faulty", num_slots=2, max_steps=5) as engine:
        [group] = engine.run(policy, requests(1), group_size=2)
    for trajectory in group.trajectories:
        assert not trajectory.failed
        assert len(trajectory.steps) == 5 and trajectory.steps[-1].truncated
        assert all(not s.valid and s.reward == 0 for s in trajectory.steps)
        assert len({s.observation for s in trajectory.steps}) == 1
        assert "no <action>" in trajectory.steps[0].info["error"]


def _faulty_choice(bad_action):
    def choose(actions, text):
        if "Reach the garden" in text:  # task 1 of the toy env
            return f"<action>{bad_action}</action>"
        return keydoor_greedy(actions, text)

    return choose


@pytest.mark.parametrize("parallelism", ["thread", "process"])
def test_a_raising_env_fails_its_episode_only(parallelism):
    with RolloutEngine("test-faulty", num_slots=4, parallelism=parallelism, num_processes=2) as engine:
        groups = engine.run(TextPolicy(_faulty_choice("raise")), requests(3), group_size=2)
    by_task = {g.task_id: g.trajectories for g in groups}
    assert all(t.failed and "RuntimeError: boom" in t.error for t in by_task[1])
    assert all(t.won and not t.failed for task in (0, 2) for t in by_task[task])


@pytest.mark.parametrize("parallelism", ["thread", "process"])
def test_a_hung_env_times_out_instead_of_hanging_the_rollout(parallelism):
    start = time.monotonic()
    with RolloutEngine(
        "test-faulty", num_slots=4, parallelism=parallelism, num_processes=2, timeout=1.0
    ) as engine:
        groups = engine.run(TextPolicy(_faulty_choice("hang")), requests(3), group_size=1)
        after = engine.run(ExpertPolicy(), requests(4), group_size=1)
    assert time.monotonic() - start < 60
    hung = groups[1].trajectories[0]
    assert hung.failed and "timed out" in hung.error
    assert all(t.won for g in after for t in g.trajectories)  # the pool recovered


def test_a_dying_worker_process_is_restarted_and_its_episodes_fail():
    with RolloutEngine("test-faulty", num_slots=4, parallelism="process", num_processes=2) as engine:
        groups = engine.run(TextPolicy(_faulty_choice("die")), requests(3), group_size=2)
        assert engine.pool.restarts and "died" in engine.pool.restarts[0]
        after = engine.run(ExpertPolicy(), requests(4), group_size=2)
    died = groups[1].trajectories
    assert all(t.failed and "died" in t.error for t in died)
    assert sum(t.won for g in groups for t in g.trajectories) >= 2
    assert all(t.won for g in after for t in g.trajectories)


def wander(actions, text):
    return "<action>look around</action>"


@pytest.mark.parametrize(
    ("engine_kwargs", "turns"),
    [
        ({}, 20),  # the registered limit
        ({"max_steps": 30}, 30),  # longer than the registered one
        ({"max_steps": 7}, 7),
        ({"env_kwargs": {"max_episode_steps": 9}}, 9),  # the limit the environment is made with
    ],
)
def test_episodes_end_at_the_turn_limit_asked_for(engine_kwargs, turns):
    with RolloutEngine("test-keydoor", num_slots=1, **engine_kwargs) as engine:
        (group,) = engine.run(TextPolicy(wander), requests(1), sampling=SamplingParams(max_tokens=8))
    (trajectory,) = group.trajectories
    assert len(trajectory.steps) == turns and trajectory.steps[-1].truncated


def test_requests_for_the_same_group_are_refused():
    with (
        RolloutEngine("test-keydoor", num_slots=1) as engine,
        pytest.raises(AgentGymError, match="repeat group id"),
    ):
        engine.run(ExpertPolicy(), [*requests(1), *requests(1)])


def test_a_tool_calling_environment_shows_its_tools_in_the_prompt():
    agentgym.register("test-tool-keydoor", "toy_envs:ToolKeyDoorEnv", max_episode_steps=20)
    try:
        with RolloutEngine("test-tool-keydoor", num_slots=1, record_prompts=True) as engine:
            [group] = engine.run(ExpertPolicy(), [GroupRequest(task_id=1000, split="test", seed=0)])
    finally:
        agentgym.deregister("test-tool-keydoor")
    [trajectory] = group.trajectories
    assert trajectory.won
    system = trajectory.steps[0].prompt[0]
    assert system["role"] == "system"
    assert '"name": "act"' in system["content"] and '"command": {"type": "string"}' in system["content"]


def test_a_gold_answer_given_as_one_string_is_one_answer_not_its_letters(toy_envs):
    from toy_envs import KeyDoorEnv

    class OneGold(KeyDoorEnv):
        def _info(self, **extra):
            return {**super()._info(**extra), "gold": "Paris"}

    agentgym.register("test-one-gold", OneGold)
    try:
        with RolloutEngine("test-one-gold", num_slots=1) as engine:
            [group] = engine.run(ExpertPolicy(), [GroupRequest(task_id=0, split="test")])
        assert group.trajectories[0].gold == ["Paris"]
    finally:
        agentgym.registry.deregister("test-one-gold")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"num_slots": 0}, "num_slots"),
        ({"max_steps": 0}, "max_steps"),
        ({"num_processes": 0}, "num_processes"),
    ],
)
def test_engine_settings_that_could_run_nothing_are_refused(toy_envs, option, message):
    with pytest.raises(AgentGymError, match=message):
        RolloutEngine("test-keydoor", **option)
