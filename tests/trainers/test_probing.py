import math

import pytest
import torch

from agentgym.policies.hf import render_chat
from agentgym.trainers.models import load_model
from agentgym.trainers.probing import answer_beliefs, flatten, information_gain, outcomes
from agentgym.trajectory import Step, Trajectory


def _trajectory(rewards, valid_last=True, terminated=True, gold=("tarsh",)):
    steps = [
        Step(
            t=t,
            observation=f"o{t}",
            action="a",
            reward=r,
            valid=True,
            prompt=[{"role": "user", "content": f"turn {t}"}],
        )
        for t, r in enumerate(rewards)
    ]
    steps[-1].valid, steps[-1].terminated = valid_last, terminated
    return Trajectory(env_id="x", task_id=0, group="g", steps=steps, gold=list(gold))


def test_information_gain_is_the_change_of_belief_and_the_last_turn_gets_none():
    gains = information_gain([[0.1, 0.25, 0.75], [0.5]])
    assert gains[0][:2] == pytest.approx([0.15, 0.5]) and math.isnan(gains[0][2])
    assert math.isnan(gains[1][0])
    assert flatten(gains)[:2].tolist() == pytest.approx([0.15, 0.5])


def test_outcomes_reward_valid_answers_and_penalise_the_rest():
    columns = outcomes(
        [
            _trajectory([0.0, 1.0]),
            _trajectory([0.0, 0.0], valid_last=False),
            _trajectory([0.0], terminated=False),
        ]
    )
    assert math.isnan(columns[0][0]) and columns[0][1] == 1.0
    assert columns[1][1] == -1.0 and columns[2][0] == -1.0


def test_outcomes_take_the_training_rewards_when_given():
    trajectories = [
        _trajectory([0.0, 0.3]),
        _trajectory([0.0, 0.0, 0.6]),
        _trajectory([0.5], valid_last=False),
    ]
    rewards = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0]  # rows in StepBatch.from_trajectories order, e.g. success
    columns = outcomes(trajectories, rewards=rewards)
    assert [column[-1] for column in columns] == [1.0, 0.0, -1.0]


def test_beliefs_are_geometric_means_of_the_gold_tokens(tiny_model_dir):
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    trajectory = _trajectory([0.0, 1.0], gold=("go hall", "kitchen"))
    beliefs = answer_beliefs(model, tokenizer, [trajectory], prefix="<action>", suffix="</action>")
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    for k, step in enumerate(trajectory.steps):
        expected = 0.0
        for gold in trajectory.gold:
            prompt, prefix, answer = (
                encode(render_chat(tokenizer, step.prompt)),
                encode("<action>"),
                encode(gold),
            )
            ids = prompt + prefix + answer + encode("</action>")
            with torch.no_grad():
                log_probs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
            start = len(prompt) + len(prefix)
            picked = [float(log_probs[start + i - 1, token]) for i, token in enumerate(answer)]
            expected = max(expected, math.exp(sum(picked) / len(picked)))
        assert beliefs[0][k] == pytest.approx(expected, rel=1e-4)
