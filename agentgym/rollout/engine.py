"""The rollout engine: B tasks x G rollouts, batched generation, environments stepped in parallel.

Example::

    engine = RolloutEngine("webshop", num_slots=16)
    groups = engine.run(policy, [GroupRequest(task_id=i, split="train", seed=i) for i in range(4)],
                        group_size=4, sampling=SamplingParams(temperature=1.0, max_tokens=64))
    engine.close()

Each tick, every active episode contributes one prompt to a single ``policy.generate`` call; the
parsed actions are then stepped in parallel in the environment pool. Episodes that are done leave
the batch (no tokens are spent on them) and free their slot for the next queued episode, so more
episodes than slots simply run in waves. The members of a group reset with the same task and seed
and therefore share the initial state.

An unparseable completion costs a turn but never reaches the environment: the step is recorded
with ``valid=False``, zero reward and the state unchanged. An environment that raises, hangs past
``timeout`` or kills its process ends its episode with ``failed=True``; the other episodes go on.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np

from agentgym.agents.chat import AgentConfig, ChatAgent
from agentgym.agents.parsing import ParsedAction
from agentgym.core import AgentGymError, TaskId
from agentgym.policies.base import Completion, Policy, SamplingParams, ScriptedPolicy
from agentgym.registry import entry_point_of, short_id, spec, turn_limit
from agentgym.rollout.workers import EnvPool, EnvWorkerError, ProcessEnvPool, ThreadEnvPool
from agentgym.trajectory import Step, Trajectory, TrajectoryGroup

#: info keys copied into each recorded step (the rest, e.g. long action lists, stays out of traces)
STEP_INFO_KEYS = ("action_valid", "error", "won", "score", "task_type")


@dataclass(frozen=True)
class GroupRequest:
    """One task to roll out ``group_size`` times from the same initial state."""

    task_id: TaskId | None = None
    split: str | None = None
    seed: int = 0
    group: str | None = None

    @property
    def group_id(self) -> str:
        return self.group or f"{self.split or 'default'}/{self.task_id}/{self.seed}"


def make_env(
    env_spec: gymnasium.envs.registration.EnvSpec, kwargs: dict[str, Any], max_steps: int | None = None
) -> gymnasium.Env:
    """Module-level (picklable) environment factory for worker processes; ``max_steps`` replaces the
    registered time limit (which would otherwise cut a longer one short)."""
    if max_steps is not None:
        kwargs = {**kwargs, "max_episode_steps": max_steps}
    return gymnasium.make(env_spec, **kwargs)


# Functions executed next to the environment (in its thread or worker process). ---------------------


def _reset(env: gymnasium.Env, seed: int, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return env.reset(seed=seed, options=options)


def _step(env: gymnasium.Env, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
    observation, reward, terminated, truncated, info = env.step(action)
    return observation, float(reward), bool(terminated), bool(truncated), info


def _scripted_step(env: gymnasium.Env, policy: ScriptedPolicy, info: dict[str, Any], seed: int) -> tuple:
    action = policy.act(env, info, np.random.default_rng(seed))
    return (action, *_step(env, action))


def _task_ids(env: gymnasium.Env, split: str) -> list[TaskId]:
    return list(env.unwrapped.task_ids(split))


def _instance_facts(env: gymnasium.Env) -> tuple[str, str, list[dict[str, Any]] | None, int | None]:
    """What an instance says about itself: its instructions, action format, tools and, when it knows
    one better than its registration (a served environment: the server's), its turn limit."""
    inner = env.unwrapped
    limit = getattr(inner, "max_episode_steps", None)
    return inner.instructions, inner.action_format, getattr(inner, "tools", None), limit


@dataclass
class _Episode:
    request: GroupRequest
    member: int
    trajectory: Trajectory
    agent: ChatAgent
    slot: int = -1
    generation: int = 0
    observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def t(self) -> int:
        return len(self.trajectory.steps)


class RolloutEngine:
    """Owns an environment pool and rolls out groups of episodes with a policy.

    Args:
        env_id: a registered environment id (short or ``agentgym/...``).
        env_kwargs: options for ``agentgym.make``.
        num_slots: environments kept alive; the most episodes in flight at once.
        parallelism: ``"thread"`` or ``"process"``; default: the environment class's preference.
        num_processes: worker processes for process pools (default: CPU count).
        timeout: seconds one environment call may take before its episode is failed.
        max_steps: turns per episode (default: the environment's ``max_episode_steps``, as made with
            ``env_kwargs`` or as served, else 50).
        agent_config: prompt and parsing options of the default chat agent.
        record_prompts: keep each step's chat messages in the trajectories (large).
        agent_factory: makes each episode's agent (default: a ``ChatAgent`` with ``agent_config``
            and the environment's instructions and action format).
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        num_slots: int = 16,
        parallelism: str | None = None,
        num_processes: int | None = None,
        timeout: float | None = 120.0,
        max_steps: int | None = None,
        agent_config: AgentConfig | None = None,
        record_prompts: bool = False,
        agent_factory: Callable[[], ChatAgent] | None = None,
    ):
        for name, value in (
            ("num_slots", num_slots),
            ("num_processes", num_processes),
            ("max_steps", max_steps),
        ):
            if value is not None and value < 1:  # none would run an episode, or run it for a turn
                raise AgentGymError(f"{name} must be at least 1, got {value}")
        self.spec = spec(env_id)
        self.env_id = short_id(self.spec.id)
        self.env_kwargs = dict(env_kwargs or {})
        env_class = entry_point_of(self.spec)
        self.env_class = env_class if inspect.isclass(env_class) else None
        self.parallelism = parallelism or getattr(self.env_class, "parallelism", "thread")
        if self.parallelism not in ("thread", "process"):
            raise AgentGymError(f"parallelism must be 'thread' or 'process', got {self.parallelism!r}")
        # else the limit it is made with, or the one a served instance reports at the first run
        self.max_steps = max_steps or turn_limit(self.spec, self.env_kwargs)
        self.record_prompts = record_prompts
        self.generation_seconds = 0.0  # time spent inside policy.generate, for timing breakdowns
        self.agent_config = agent_config or AgentConfig()
        self.agent_factory = agent_factory
        factory = functools.partial(make_env, self.spec, self.env_kwargs, max_steps)
        self.pool: EnvPool
        if self.parallelism == "process":
            self.pool = ProcessEnvPool(
                factory, num_slots, num_processes or os.cpu_count() or 1, timeout=timeout
            )
        else:
            self.pool = ThreadEnvPool(factory, num_slots, timeout=timeout)

    def task_ids(self, split: str) -> list[TaskId]:
        """The environment's task ids for ``split`` (asked of the first slot's environment)."""
        try:
            return self.pool.result(0, self.pool.submit(0, _task_ids, split))
        except EnvWorkerError as error:
            raise AgentGymError(f"{self.env_id}: cannot list the tasks of split {split!r}: {error}") from None

    def run(
        self,
        policy: Policy | ScriptedPolicy,
        requests: Sequence[GroupRequest],
        group_size: int = 1,
        sampling: SamplingParams | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
    ) -> list[TrajectoryGroup]:
        """Rolls out every request ``group_size`` times; returns the groups in request order."""
        sampling = sampling or SamplingParams()
        repeated = [key for key, n in Counter(r.group_id for r in requests).items() if n > 1]
        if repeated:
            raise AgentGymError(
                f"requests repeat group id(s) {repeated[:3]}: give each a distinct seed or group name"
            )
        self._read_instance_facts()
        queue = deque(
            self._new_episode(request, member) for request in requests for member in range(group_size)
        )
        finished: list[Trajectory] = []
        free_slots = list(range(self.pool.num_slots))[::-1]
        active: list[_Episode] = []

        def finish(episode: _Episode, error: str | None = None) -> None:
            if error is not None:
                episode.trajectory.failed, episode.trajectory.error = True, error
            finished.append(episode.trajectory)
            free_slots.append(episode.slot)
            if on_trajectory is not None:
                on_trajectory(episode.trajectory)

        for tick in itertools.count():
            if not (queue or active):
                break
            starting = []
            while free_slots and queue:
                episode = queue.popleft()
                episode.slot = free_slots.pop()
                episode.generation = self.pool.generation[episode.slot]
                options = {
                    key: value
                    for key, value in (("task_id", episode.request.task_id), ("split", episode.request.split))
                    if value is not None
                }
                starting.append(
                    (episode, self.pool.submit(episode.slot, _reset, episode.request.seed, options))
                )
            for episode, future in starting:
                try:
                    observation, info = self.pool.result(episode.slot, future)
                except EnvWorkerError as error:
                    finish(episode, f"reset failed: {error}")
                    continue
                self._start(episode, observation, info)
                active.append(episode)
            if active:
                # A fresh seed per turn: one seed for every turn would draw the same random numbers each turn.
                turn_sampling = (
                    sampling
                    if sampling.seed is None
                    else sampling.model_copy(update={"seed": sampling.seed + tick})
                )
                active = [e for e in self._tick(policy, active, turn_sampling, finish) if e is not None]

        by_group: dict[str, list[Trajectory]] = {}
        for trajectory in finished:
            by_group.setdefault(trajectory.group, []).append(trajectory)
        groups = []
        for request in requests:
            members = sorted(by_group.get(request.group_id, []), key=lambda trajectory: trajectory.traj)
            groups.append(
                TrajectoryGroup(
                    group=request.group_id,
                    env_id=self.env_id,
                    task_id=members[0].task_id
                    if members
                    else (request.task_id if request.task_id is not None else -1),
                    split=members[0].split if members else (request.split or ""),
                    trajectories=members,
                )
            )
        return groups

    def _new_episode(self, request: GroupRequest, member: int) -> _Episode:
        trajectory = Trajectory(
            env_id=self.env_id,
            task_id=request.task_id if request.task_id is not None else -1,
            split=request.split or "",
            group=request.group_id,
            traj=member,
            seed=request.seed,
        )
        return _Episode(request, member, trajectory, self.agent_factory())

    def _read_instance_facts(self) -> None:
        """The agent's instructions and the turn limit, asked of an instance once, not of the class:
        a served environment learns them from its server."""
        if self.agent_factory is not None and self.max_steps is not None:
            return
        try:
            instructions, action_format, tools, limit = self.pool.result(
                0, self.pool.submit(0, _instance_facts)
            )
        except EnvWorkerError as error:
            raise AgentGymError(f"{self.env_id}: cannot make the environment: {error}") from None
        if self.agent_factory is None:
            self.agent_factory = functools.partial(
                ChatAgent, self.agent_config, instructions, action_format, tools
            )
        if self.max_steps is None:
            self.max_steps = limit or 50

    def _start(self, episode: _Episode, observation: str, info: dict[str, Any]) -> None:
        trajectory = episode.trajectory
        trajectory.task = str(info.get("task", ""))
        trajectory.task_id = info.get("task_id", trajectory.task_id)
        trajectory.split = str(info.get("split", trajectory.split))
        trajectory.task_type = info.get("task_type")
        gold = info.get("gold")
        if isinstance(gold, str):  # one answer, as search-qa's metrics also read it, not its letters
            gold = [gold]
        trajectory.gold = [str(answer) for answer in gold] if gold is not None else None
        episode.observation, episode.info = observation, info
        episode.agent.start(observation, info)

    def _tick(
        self,
        policy: Policy | ScriptedPolicy,
        active: list[_Episode],
        sampling: SamplingParams,
        finish: Callable[[_Episode, str | None], None],
    ) -> list[_Episode | None]:
        """One turn for every active episode; returns the episodes still running (None for done)."""
        for episode in active:
            if self.pool.generation[episode.slot] != episode.generation:
                finish(episode, "the environment worker was restarted during the episode")
        active = [e for e in active if self.pool.generation[e.slot] == e.generation]
        if not active:
            return []

        prompts: list[list[dict[str, str]] | None] = [None] * len(active)
        completions: list[Completion | None] = [None] * len(active)
        parsed: list[ParsedAction | None] = [None] * len(active)
        futures = []
        if isinstance(policy, ScriptedPolicy):
            if self.record_prompts:  # what a model would have been shown: SFT data, tokenizer corpora
                prompts = [episode.agent.prompt() for episode in active]
            for episode in active:
                entropy = [episode.request.seed, episode.member, episode.t]
                seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
                futures.append(self.pool.submit(episode.slot, _scripted_step, policy, episode.info, seed))
        else:
            prompts = [episode.agent.prompt() for episode in active]
            allowed = [episode.agent.allowed_completions() for episode in active]
            started = time.perf_counter()
            if any(choices is not None for choices in allowed):
                if not getattr(policy, "supports_allowed_completions", False):
                    raise AgentGymError(
                        f"{type(policy).__name__} does not support constrained decoding: "
                        "set agent.constrain_actions=false or use an hf or vllm policy"
                    )
                completions = list(policy.generate(prompts, sampling, allowed=allowed))  # type: ignore[call-arg]
            else:
                completions = list(policy.generate(prompts, sampling))
            self.generation_seconds += time.perf_counter() - started
            for i, (episode, completion) in enumerate(zip(active, completions, strict=True)):
                parsed[i] = episode.agent.parse(completion.text)
                futures.append(
                    self.pool.submit(episode.slot, _step, parsed[i].action) if parsed[i].valid else None
                )

        survivors: list[_Episode | None] = []
        for i, (episode, future) in enumerate(zip(active, futures, strict=True)):
            completion = completions[i]
            try:
                if isinstance(policy, ScriptedPolicy):
                    action, *result = self.pool.result(episode.slot, future)
                    text = episode.agent.format(action)
                    valid_parse, parse_error = True, ""
                else:
                    text, action = completion.text, parsed[i].action
                    valid_parse, parse_error = parsed[i].valid, parsed[i].error
                    if future is not None:
                        result = self.pool.result(episode.slot, future)
                    else:  # unparseable: the state stays as it was and the turn is spent
                        invalid_info = dict(episode.info, action_valid=False, error=parse_error)
                        result = [episode.observation, 0.0, False, False, invalid_info]
            except EnvWorkerError as error:
                finish(episode, f"step {episode.t} failed: {error}")
                survivors.append(None)
                continue
            observation, reward, terminated, truncated, info = result
            if episode.t + 1 >= self.max_steps and not terminated:
                truncated = True
            step = Step(
                t=episode.t,
                observation=episode.observation,
                completion=text,
                action=action,
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                valid=valid_parse and bool(info.get("action_valid", True)),
                anchor=episode.info.get("anchor", episode.observation),
                info={key: info[key] for key in STEP_INFO_KEYS if key in info},
                prompt=prompts[i] if self.record_prompts else None,
                prompt_ids=completion.prompt_ids if completion else None,
                response_ids=completion.token_ids if completion else None,
                response_logprobs=completion.logprobs if completion else None,
                response_allowed=completion.allowed_token_ids if completion else None,
            )
            episode.trajectory.steps.append(step)
            episode.agent.record(action, observation, info)
            episode.observation, episode.info = observation, info
            if terminated or truncated:
                episode.trajectory.won = bool(info.get("won", False))
                score = info.get("score")
                episode.trajectory.score = float(score) if score is not None else None
                finish(episode)
                survivors.append(None)
            else:
                survivors.append(episode)
        return survivors

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> RolloutEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
