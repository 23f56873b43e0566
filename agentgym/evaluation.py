"""Evaluation: roll a policy out on a split and summarise success, score, steps, validity and pass@k.

Example::

    metrics = evaluate(EvalConfig(env="webshop", policy="expert", episodes=50))
    metrics["success_rate"], metrics["pass@1"]

The run directory receives ``traces.jsonl`` (one trajectory per line, appended as episodes finish,
so an interrupted run loses nothing), ``metrics.json`` and ``settings.json`` (per environment, the
settings that shape its episodes). With ``resume=True`` the tasks whose groups are complete in
``traces.jsonl`` are kept and only the rest is rolled out (see :func:`evaluate`).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentgym.agents.chat import AgentConfig
from agentgym.config import CpuKernels, replace_text
from agentgym.core import AgentGymError
from agentgym.policies import Policy, SamplingParams, ScriptedPolicy, make_policy
from agentgym.rollout.engine import GroupRequest, RolloutEngine
from agentgym.trajectory import Trajectory, TrajectoryGroup, read_trajectories, write_jsonl


class EvalConfig(BaseModel):
    """``agentgym eval`` settings."""

    model_config = ConfigDict(extra="forbid")

    env: str = Field(description="environment id, e.g. webshop")
    policy: str = Field(
        default="expert",
        description="policy spec: expert, random, tiny, a model directory or .gguf file (after hf: or "
        "vllm: to choose the backend), a hub id, openai:<url>#<model>",
    )
    split: str = Field(default="test", description="task split to evaluate on")
    episodes: int | None = Field(
        default=None, ge=1, description="number of tasks (the first N of the split); None = all"
    )
    attempts: int = Field(default=1, ge=1, description="rollouts per task (k of pass@k)")
    # gymnasium refuses a negative seed at reset: every episode would fail instead of the config.
    seed: int = Field(default=0, ge=0, description="base seed; task i uses seed + i")
    out: Path | None = Field(
        default=None, description="run directory (default runs/eval-<env>-<policy>-<split>)"
    )
    resume: bool = Field(default=False, description="keep the complete tasks found in the run directory")
    overwrite: bool = Field(default=False, description="replace an existing run directory's traces")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="options passed to agentgym.make")
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=256))
    agent: AgentConfig = Field(default_factory=AgentConfig)
    max_steps: int | None = Field(
        default=None, ge=1, description="turns per episode (default: the environment's)"
    )
    workers: int = Field(default=16, ge=1, description="environments run at once")
    threads: int | None = Field(
        default=None, ge=1, description="torch CPU threads of a local model (default: torch's choice)"
    )
    cpu_kernels: CpuKernels | None = Field(
        default=None,
        description="x86 instruction set of torch's and MKL's CPU kernels (a training run's own, so "
        "that its model computes the sums it was evaluated with)",
    )
    timeout: float = Field(default=120.0, gt=0, description="seconds an environment call may take")

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: keep the traces or replace them")
        return self

    def run_dir(self) -> Path:
        if self.out is not None:
            return self.out
        policy = re.sub(r"[^A-Za-z0-9._-]+", "_", self.policy).strip("_")[-40:]
        return Path("runs") / f"eval-{self.env.replace('/', '_')}-{policy}-{self.split}"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` attempts with ``c`` successes: 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} attempts, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def summarize(groups: Sequence[TrajectoryGroup]) -> dict[str, Any]:
    """Metrics over complete groups: episode averages plus pass@j (j = 1..attempts) over tasks."""
    trajectories = [t for group in groups for t in group.trajectories]
    if not trajectories:
        return {"episodes": 0, "tasks": 0}
    steps = [step for t in trajectories for step in t.steps]
    scores = [t.episode_score for t in trajectories]
    attempts = min(len(group.trajectories) for group in groups)
    metrics: dict[str, Any] = {
        "episodes": len(trajectories),
        "tasks": len(groups),
        "attempts": attempts,
        "success_rate": sum(t.won for t in trajectories) / len(trajectories),
        "mean_score": sum(scores) / len(scores),
        "mean_steps": sum(len(t.steps) for t in trajectories) / len(trajectories),
        "valid_action_ratio": sum(step.valid for step in steps) / len(steps) if steps else 1.0,
        "failed_episodes": sum(t.failed for t in trajectories),
    }
    for k in range(1, attempts + 1):
        metrics[f"pass@{k}"] = sum(
            pass_at_k(len(g.trajectories), sum(t.won for t in g.trajectories), k) for g in groups
        ) / len(groups)
    by_type: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        if t.task_type is not None:
            by_type[t.task_type].append(t)
    if by_type:
        metrics["by_task_type"] = {
            name: {"episodes": len(ts), "success_rate": sum(t.won for t in ts) / len(ts)}
            for name, ts in sorted(by_type.items())
        }
    return metrics


# The settings that decide what an episode is: traces made under other ones cannot be continued.
EPISODE_SETTINGS = ("policy", "sampling", "agent", "env_kwargs", "max_steps")


def _episode_settings(config: EvalConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", include=set(EPISODE_SETTINGS))


def _check_resumable(settings_file: Path, config: EvalConfig) -> None:
    """Refuses to continue traces that another policy or other settings made, naming what differs."""
    if not settings_file.exists():  # a directory an older version wrote: nothing to compare
        return
    recorded = json.loads(settings_file.read_text()).get(config.env)
    if recorded is None:
        return
    ours = _episode_settings(config)
    differ = [name for name in EPISODE_SETTINGS if recorded.get(name) != ours[name]]
    if differ:
        described = ", ".join(f"{name} {recorded.get(name)!r} (now {ours[name]!r})" for name in differ)
        raise AgentGymError(
            f"{settings_file.parent} holds {config.env} episodes made with {described}: resume with "
            "those settings, or pass --overwrite or another --out"
        )


def _record_settings(settings_file: Path, config: EvalConfig, keep_others: bool) -> None:
    recorded = json.loads(settings_file.read_text()) if keep_others and settings_file.exists() else {}
    recorded[config.env] = _episode_settings(config)
    replace_text(settings_file, json.dumps(recorded, indent=2, sort_keys=True) + "\n")


def _key(trajectory: Trajectory) -> tuple[str, str]:
    return trajectory.env_id, trajectory.group


def _first_attempts(group: TrajectoryGroup, attempts: int) -> list[Trajectory]:
    """The group's members 0..attempts-1: traces.jsonl holds them in the order they finished, and
    the first to finish are the shortest episodes, not a fair sample of the group."""
    return sorted(group.trajectories, key=lambda trajectory: trajectory.traj)[:attempts]


def evaluate(
    config: EvalConfig,
    policy: Policy | ScriptedPolicy | None = None,
    on_trajectory: Callable[[Trajectory], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Runs the evaluation and writes ``traces.jsonl`` and ``metrics.json`` into the run directory.

    With ``resume``, this run's tasks (environment, split, task id and seed) whose groups are
    complete in ``traces.jsonl`` are kept and the rest is rolled out again; the directory's episodes
    of this environment must have been made with the same policy, sampling, agent, environment
    options and turn limit (``settings.json``), or nothing runs. Episodes of other tasks,
    splits or environments in that file (an earlier run with more episodes, another split) stay in
    it untouched, but the metrics cover this run's tasks alone, each with its first ``attempts``
    members (by member index).
    ``on_start(total_episodes)`` and ``on_trajectory`` let a caller draw progress.
    """
    run_dir = config.run_dir()
    if run_dir.exists() and not run_dir.is_dir():  # --out naming a file, say its traces.jsonl
        raise AgentGymError(f"the run directory {run_dir} is a file: give a directory")
    traces = run_dir / "traces.jsonl"
    settings_file = run_dir / "settings.json"
    existing: list[Trajectory] = []
    if traces.exists() and traces.stat().st_size > 0:
        if config.resume:
            _check_resumable(settings_file, config)
            try:
                existing = read_trajectories(traces)
            except ValueError as error:  # another run's file, say: leave it as it is
                first_line = str(error).splitlines()[0]
                raise AgentGymError(f"{traces} is not a traces file: {first_line}") from None
        elif not config.overwrite:
            raise AgentGymError(
                f"{traces} already exists: pass --resume to continue it or --overwrite to replace it"
            )

    if config.threads is not None or config.cpu_kernels is not None:
        from agentgym.policies.hf import pin_cpu_arithmetic  # torch, only where a setting asks for it

        pin_cpu_arithmetic(config.threads, config.cpu_kernels)
    made_here = policy is None
    policy = policy or make_policy(config.policy, env_id=config.env)
    new_dir = not run_dir.exists()
    try:
        with RolloutEngine(
            config.env,
            config.env_kwargs,
            num_slots=config.workers,
            timeout=config.timeout,
            max_steps=config.max_steps,
            agent_config=config.agent,
        ) as engine:
            task_ids = engine.task_ids(config.split)
            if not task_ids:
                raise AgentGymError(f"{config.env}: split {config.split!r} has no tasks")
            task_ids = task_ids[: config.episodes] if config.episodes else task_ids
            requests = [
                GroupRequest(task_id=task_id, split=config.split, seed=config.seed + index)
                for index, task_id in enumerate(task_ids)
            ]
            # A group id names its (split, task id, seed) but not the environment: another
            # environment's run in the same directory has the same ones, so both tell this run's tasks.
            wanted = {(engine.env_id, request.group_id) for request in requests}
            # A group is complete when its members 0..attempts-1 are there: a killed run with more
            # attempts may have finished later members first, and those are not what a fresh run reports.
            # An episode an environment failure ended says nothing of the policy: it is rolled out again.
            members: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
            for trajectory in existing:
                if not trajectory.failed:
                    members[_key(trajectory)].add(trajectory.traj)
            done = {key for key in wanted if set(range(config.attempts)) <= members[key]}
            # This run's incomplete groups are dropped (they are rolled out again); the rest stays.
            run_dir.mkdir(parents=True, exist_ok=True)  # once the policy and the split are known good
            write_jsonl(traces, [t for t in existing if _key(t) not in wanted or _key(t) in done])
            _record_settings(settings_file, config, keep_others=config.resume)
            # An earlier run's metrics no longer describe these traces: a run cut off before it writes
            # its own must not leave them standing.
            (run_dir / "metrics.json").unlink(missing_ok=True)
            requests = [request for request in requests if (engine.env_id, request.group_id) not in done]
            if on_start is not None:
                on_start(len(requests) * config.attempts)

            def record(trajectory: Trajectory) -> None:
                write_jsonl(traces, [trajectory], append=True)
                if on_trajectory is not None:
                    on_trajectory(trajectory)

            engine.run(
                policy, requests, group_size=config.attempts, sampling=config.sampling, on_trajectory=record
            )
    except BaseException:
        # A run that failed before its first episode (a policy that cannot constrain decoding, say)
        # leaves no directory behind, so that the corrected command runs as typed.
        if new_dir and traces.exists() and traces.stat().st_size == 0:
            settings_file.unlink(missing_ok=True)
            traces.unlink()
            if not any(run_dir.iterdir()):
                run_dir.rmdir()
        raise
    finally:
        if made_here and hasattr(policy, "close"):
            policy.close()  # the vLLM engine or HTTP client this call made for itself

    ours = [t for t in read_trajectories(traces) if _key(t) in wanted]
    groups = [
        group.model_copy(update={"trajectories": _first_attempts(group, config.attempts)})
        for group in TrajectoryGroup.from_trajectories(ours)
    ]
    metrics = summarize(groups)
    metrics.update({"env": config.env, "policy": config.policy, "split": config.split})
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
