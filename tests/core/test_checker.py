from typing import Any

import numpy as np
import pytest
from toy_envs import KeyDoorEnv

import agentgym
from agentgym.checker import check_env


def test_a_conforming_env_passes_every_check():
    report = check_env("test-keydoor", fuzz_steps=100)
    assert report.passed, report.failures()
    assert [r.name for r in report.results] == ["gymnasium", "reset", "tasks", "determinism", "fuzz"]


@pytest.mark.parametrize(
    ("env_id", "check", "message"),
    [
        ("test-nondeterministic", "determinism", "not deterministic"),
        ("test-invalid-moves", "fuzz", "changed the state"),
        ("test-crash-on-garbage", "fuzz", "raised ValueError"),
    ],
)
def test_broken_envs_fail_the_right_check_with_a_useful_message(env_id, check, message):
    report = check_env(env_id, fuzz_steps=100)
    failed = {result.name: result.message for result in report.failures()}
    assert check in failed, report.results
    assert message in failed[check]


class NumpyAnchorEnv(KeyDoorEnv):
    """Numpy scalars in anchor and task_id: JSON cannot hold them, but they are Python values inside."""

    def _info(self, **extra: Any) -> dict[str, Any]:
        info = super()._info(**extra)
        return {
            **info,
            "task_id": np.int64(info["task_id"]),
            "anchor": (np.int64(len(self.here)), self.has_key),
        }


class SetAnchorEnv(KeyDoorEnv):
    """A hashable task id and anchor that traces.jsonl cannot store."""

    def _info(self, **extra: Any) -> dict[str, Any]:
        info = super()._info(**extra)
        return {**info, "task_id": frozenset({info["task_id"]}), "anchor": frozenset({self.here})}


class BareGoldEnv(KeyDoorEnv):
    """One gold answer given as a string instead of a list of answers."""

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {**super()._info(**extra), "gold": self.goal}


class PerInstanceKeyEnv(KeyDoorEnv):
    """Places the key by a draw made once per instance, outside the seed (as an environment that
    shuffles its layout in __init__ does); a count of instances stands for the draw, so that two
    instances always differ. The rollout engine runs the members of a group on separate instances."""

    instances = 0

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        PerInstanceKeyEnv.instances += 1
        self.draw = PerInstanceKeyEnv.instances

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed, options=options)
        self.key_room = self.rooms[self.draw % len(self.rooms)]
        return self._observe(self._describe()), self._info()


class PercentScoreEnv(KeyDoorEnv):
    """Reports its score in percent, as some benchmarks print it; the contract says [0, 1]."""

    def step(self, action: str):
        observation, reward, terminated, truncated, info = super().step(action)
        if "score" in info:
            info["score"] = 100.0 * info["score"]
        return observation, reward, terminated, truncated, info


class OddLastTaskEnv(KeyDoorEnv):
    """The last test task's observation has a bell character, outside the declared space."""

    def reset(self, *, seed=None, options=None):
        observation, info = super().reset(seed=seed, options=options)
        return (observation + "\a" if self.task_id == 1004 else observation), info


@pytest.fixture
def registered():
    ids = {
        "test-numpy-anchor": NumpyAnchorEnv,
        "test-set-anchor": SetAnchorEnv,
        "test-bare-gold": BareGoldEnv,
        "test-per-instance-key": PerInstanceKeyEnv,
        "test-percent-score": PercentScoreEnv,
        "test-odd-last-task": OddLastTaskEnv,
    }
    for env_id, env_class in ids.items():
        agentgym.register(env_id, env_class, max_episode_steps=20)
    yield
    for env_id in ids:
        agentgym.deregister(env_id)


def test_anchors_must_serialise_to_json_and_numpy_scalars_do(registered):
    assert check_env("test-numpy-anchor", fuzz_steps=50).passed
    failed = {
        result.name: result.message for result in check_env("test-set-anchor", fuzz_steps=50).failures()
    }
    assert (
        failed["reset"].startswith("info['task_id'] = frozenset({")
        and "not serialise to JSON" in failed["reset"]
    )
    assert (
        failed["fuzz"].startswith("info['anchor'] = frozenset({")
        and "not serialise to JSON" in failed["fuzz"]
    )


def test_gold_answers_must_be_a_list_of_strings(registered):
    failed = {result.name: result.message for result in check_env("test-bare-gold", fuzz_steps=10).failures()}
    assert failed["reset"].startswith("info['gold'] must be a list of answer strings, got '")


def test_two_instances_reset_with_one_seed_must_agree(registered):
    failed = {r.name: r.message for r in check_env("test-per-instance-key", fuzz_steps=10).failures()}
    assert "not deterministic" in failed.get("determinism", ""), failed
    assert "fresh instance" in failed["determinism"]


def test_a_score_outside_zero_one_fails_the_fuzz(registered):
    failed = {r.name: r.message for r in check_env("test-percent-score", fuzz_steps=300).failures()}
    assert set(failed) == {"fuzz"}, failed
    assert "info['score'] = 100.0" in failed["fuzz"] and "[0, 1]" in failed["fuzz"]


def test_an_observation_outside_the_space_in_any_task_fails(registered):
    # reset(seed=0) draws a train task; the test split's last task is reached only by its id.
    failed = {r.name: r.message for r in check_env("test-odd-last-task", fuzz_steps=10).failures()}
    assert "outside observation_space" in failed.get("tasks", ""), failed
    assert "'task_id': 1004" in failed["tasks"]
