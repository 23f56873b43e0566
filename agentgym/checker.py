"""``agentgym check-env``: conformance checks a user can run on any text environment.

Example::

    report = check_env("webshop")
    assert report.passed, report.failures()

The checks, each a small function that returns a message on failure:

1. ``gymnasium``: gymnasium's own ``env_checker`` (spaces, reset/step types, seeding, render, close);
   its warnings count as failures.
2. ``reset``: the observation is a string inside ``observation_space``; ``info`` is a dict with
   ``task``, ``task_id`` and ``split``, and an ``anchor`` where it gives one (optional: the rollout
   engine falls back to the observation) that is hashable; ``task_id`` and ``anchor`` serialise to
   JSON, as traces.jsonl stores them (numpy scalars count as the Python values they hold); a
   ``gold`` is a list of answer strings.
3. ``tasks``: each split's task ids reset to episodes that report that id and split, with an
   observation inside ``observation_space``.
4. ``determinism``: two resets with one seed and task, then the same actions, give the same
   transitions, on one instance and on a fresh one (group members run on separate instances).
5. ``fuzz``: random admissible and malformed actions never raise and keep observations inside
   the space; an action reported as ``action_valid=False`` explains itself in ``info["error"]`` and
   leaves the state (``info["anchor"]``, else the observation) unchanged; anchors stay hashable and
   serialise to JSON; a ``score`` lies in [0, 1]; ended episodes report ``won``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from agentgym.core import is_hashable, text_space
from agentgym.registry import make
from agentgym.trajectory import freeze

MALFORMED_ACTIONS = (
    "",
    "   ",
    "\n",
    "click[",
    "search[]",
    "]]][[[",
    "<action></action>",
    "a" * 5000,
    "ünïcødé › 你好 🙂",
    "\x00\x01\x02",
    "None",
    "{'name': 'x'}",
)


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""


@dataclass
class CheckReport:
    env_id: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]


class CheckFailed(AssertionError):
    pass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _require_json(info: dict[str, Any], key: str) -> None:
    """Rollouts store ``info[key]`` in traces.jsonl (through ``freeze``, as Step does)."""
    if key not in info:
        return
    try:
        json.dumps(freeze(info[key]))
    except (TypeError, ValueError) as error:
        raise CheckFailed(
            f"info[{key!r}] = {info[key]!r} does not serialise to JSON ({error}); traces.jsonl stores it"
        ) from None


def check_gymnasium(env: gymnasium.Env, **_: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gymnasium_check_env(env.unwrapped, skip_close_check=False)
    relevant = [str(w.message) for w in caught if "is different from the unwrapped" not in str(w.message)]
    _require(not relevant, "gymnasium's env_checker warned: " + " | ".join(relevant[:3]))


def check_reset(env: gymnasium.Env, seed: int, **_: Any) -> None:
    observation, info = env.reset(seed=seed)
    _require(
        isinstance(observation, str),
        f"reset() must return a str observation, got {type(observation).__name__}",
    )
    _require(
        observation in env.observation_space,
        "the observation has characters outside observation_space (use agentgym.core.text_space())",
    )
    _require(isinstance(info, dict), f"reset() must return an info dict, got {type(info).__name__}")
    missing = [key for key in ("task", "task_id", "split") if key not in info]
    _require(not missing, f"reset() info lacks {missing}; see agentgym.core for the info keys")
    if "anchor" in info:
        _require(
            is_hashable(info["anchor"]),
            f"info['anchor'] must be hashable, got {type(info['anchor']).__name__}",
        )
    _require_json(info, "task_id")
    _require_json(info, "anchor")
    if "gold" in info:  # IGPO probes each answer; a bare string would be probed letter by letter
        gold = info["gold"]
        _require(
            isinstance(gold, list | tuple) and all(isinstance(answer, str) for answer in gold),
            f"info['gold'] must be a list of answer strings, got {gold!r}",
        )


def check_tasks(env: gymnasium.Env, seed: int, **_: Any) -> None:
    unwrapped = env.unwrapped
    try:
        splits = {split: list(unwrapped.task_ids(split)) for split in unwrapped.splits}
    except NotImplementedError:
        return  # an environment without fixed task lists has nothing to check here
    for split, ids in splits.items():
        _require(len(ids) > 0, f"split {split!r} has no task ids")
        _require(len(set(map(str, ids))) == len(ids), f"split {split!r} repeats task ids")
        for task_id in ids[:2] + ids[-1:]:
            call = f"reset(options={{'task_id': {task_id!r}, 'split': {split!r}}})"
            observation, info = env.reset(seed=seed, options={"task_id": task_id, "split": split})
            # The other checks reset by seed alone, which may never draw this split or task.
            _require(
                isinstance(observation, str) and observation in env.observation_space,
                f"{call} returned an observation outside observation_space",
            )
            _require(
                str(info.get("task_id")) == str(task_id) and info.get("split") == split,
                f"{call} reported task_id={info.get('task_id')!r}, split={info.get('split')!r}",
            )


def _pick_action(info: dict[str, Any], rng: np.random.Generator) -> str:
    actions = info.get("available_actions")
    if actions and rng.random() < 0.8:
        return str(actions[int(rng.integers(len(actions)))])
    if rng.random() < 0.5:
        return MALFORMED_ACTIONS[int(rng.integers(len(MALFORMED_ACTIONS)))]
    # Short random text: sampling up to the action space's maximum length (100k characters) would
    # cost far more than the environment step under test.
    space = text_space(200)
    space.seed(int(rng.integers(2**31)))
    return space.sample()


def _transcript(env: gymnasium.Env, seed: int, steps: int) -> list[Any]:
    observation, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    record: list[Any] = [(observation, info)]
    for _ in range(steps):
        action = _pick_action(info, rng)
        observation, reward, terminated, truncated, info = env.step(action)
        record.append((action, observation, float(reward), terminated, truncated, info))
        if terminated or truncated:
            break
    return record


def check_determinism(
    env: gymnasium.Env, seed: int, make_env: Callable[[], gymnasium.Env] | None = None, **_: Any
) -> None:
    first = _transcript(env, seed, 20)
    _require_same(first, _transcript(env, seed, 20), "")
    if make_env is None:
        return
    # The rollout engine runs the members of a group on separate instances: a draw made once per
    # instance (a layout shuffled in __init__) gives them different episodes, yet one instance agrees
    # with itself.
    other = make_env()
    try:
        _require_same(first, _transcript(other, seed, 20), " on a fresh instance")
    finally:
        other.close()


def _require_same(first: list[Any], second: list[Any], where: str) -> None:
    for index, (a, b) in enumerate(zip(first, second, strict=False)):
        _require(
            _equal(a, b),
            f"the same seed and actions diverged at step {index}{where}: the environment is not "
            "deterministic (does reset call super().reset(seed=seed) and draw only from self.np_random?)",
        )
    _require(
        len(first) == len(second), f"the same seed and actions gave episodes of different lengths{where}"
    )


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return a == b


def check_fuzz(env: gymnasium.Env, seed: int, fuzz_steps: int = 300, **_: Any) -> None:
    rng = np.random.default_rng(seed + 1)
    observation, info = env.reset(seed=seed)
    for step in range(fuzz_steps):
        action = _pick_action(info, rng)
        anchor_before = info.get("anchor", observation)
        try:
            next_observation, reward, terminated, truncated, next_info = env.step(action)
        except Exception as error:
            raise CheckFailed(f"step({action[:60]!r}) raised {type(error).__name__}: {error}") from None
        _require(
            isinstance(next_observation, str),
            f"step() returned a {type(next_observation).__name__} observation",
        )
        _require(
            next_observation in env.observation_space,
            f"step({action[:60]!r}) returned characters outside observation_space",
        )
        _require(np.isfinite(float(reward)), f"step({action[:60]!r}) returned a non-finite reward {reward!r}")
        _require("action_valid" in next_info, "step() info must carry 'action_valid'")
        if next_info["action_valid"] is False:
            anchor_after = next_info.get("anchor", next_observation)
            _require(
                anchor_after == anchor_before,
                f"the invalid action {action[:60]!r} changed the state (anchor {anchor_before!r} -> {anchor_after!r})",
            )
            _require(
                "error" in next_info,
                f"the invalid action {action[:60]!r} gave no info['error'] explaining why",
            )
        if "anchor" in next_info:
            _require(is_hashable(next_info["anchor"]), "info['anchor'] must be hashable")
            _require_json(next_info, "anchor")
        if "score" in next_info:  # mean_score averages it with other environments' and tasks' scores
            score = next_info["score"]
            _require(
                isinstance(score, int | float | np.number) and 0.0 <= float(score) <= 1.0,
                f"info['score'] = {score!r} after step({action[:60]!r}): the score is a number in [0, 1]",
            )
        if terminated or truncated:
            if terminated:
                _require("won" in next_info, "an episode ended (terminated) without info['won']")
            observation, info = env.reset(seed=seed + step + 1)
        else:
            observation, info = next_observation, next_info


CHECKS: dict[str, Callable[..., None]] = {
    "gymnasium": check_gymnasium,
    "reset": check_reset,
    "tasks": check_tasks,
    "determinism": check_determinism,
    "fuzz": check_fuzz,
}


def check_env(
    env_id: str, env_kwargs: dict[str, Any] | None = None, seed: int = 0, fuzz_steps: int = 300
) -> CheckReport:
    """Runs every check on a fresh instance of ``env_id``; never raises for a failing check."""
    report = CheckReport(env_id)

    def make_env() -> gymnasium.Env:
        return make(env_id, **(env_kwargs or {}))

    for name, check in CHECKS.items():
        env = make_env()
        try:
            check(env, seed=seed, fuzz_steps=fuzz_steps, make_env=make_env)
            report.results.append(CheckResult(name, True))
        except CheckFailed as failure:
            report.results.append(CheckResult(name, False, str(failure)))
        except Exception as error:
            report.results.append(CheckResult(name, False, f"{type(error).__name__}: {error}"))
        finally:
            env.close()
    return report
