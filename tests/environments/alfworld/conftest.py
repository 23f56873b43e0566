"""Fixtures for the ALFWorld tests: a shared cache of generated games, and no official data in sight."""

from __future__ import annotations

import pytest

import agentgym


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("alfworld-cache")


@pytest.fixture(autouse=True)
def no_official_data(monkeypatch, tmp_path):
    # Generated games unless a test asks for official ones, whatever the machine has downloaded.
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "no-official-data"))


@pytest.fixture
def make_env(cache_dir):
    envs = []

    def make(**kwargs):
        env = agentgym.make("alfworld", cache_dir=str(cache_dir), **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()
