"""Policies that act from the environment's state: the scripted expert and a random agent."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from agentgym.policies.base import ScriptedPolicy


class ExpertPolicy(ScriptedPolicy):
    """The environment's scripted expert (``env.expert_action()``): demos, SFT data and tests."""

    def act(self, env: gymnasium.Env, info: dict[str, Any], rng: np.random.Generator) -> str:
        return env.unwrapped.expert_action()


class RandomPolicy(ScriptedPolicy):
    """Uniform over ``available_actions`` when the environment lists them, else a random string."""

    def act(self, env: gymnasium.Env, info: dict[str, Any], rng: np.random.Generator) -> str:
        actions = info.get("available_actions")
        if actions:
            return str(actions[int(rng.integers(len(actions)))])
        env.action_space.seed(int(rng.integers(2**31)))
        return env.action_space.sample()[:64]
