"""Shared fixtures: the toy environments of tests/toy_envs.py registered under test ids."""

from __future__ import annotations

import pytest

import agentgym

TOY_ENVS = {
    "test-keydoor": "toy_envs:KeyDoorEnv",
    "test-faulty": "toy_envs:FaultyEnv",
    "test-nondeterministic": "toy_envs:NondeterministicEnv",
    "test-invalid-moves": "toy_envs:StateChangingInvalidEnv",
    "test-crash-on-garbage": "toy_envs:CrashOnGarbageEnv",
}


@pytest.fixture(scope="session", autouse=True)
def toy_envs():
    for env_id, entry_point in TOY_ENVS.items():
        agentgym.register(env_id, entry_point, max_episode_steps=20)
    yield TOY_ENVS
    for env_id in TOY_ENVS:
        agentgym.deregister(env_id)
