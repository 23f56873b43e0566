"""What serving an environment costs: WebShop local against WebShop behind `agentgym serve env`.

Usage::

    python benchmarks/env_server.py [--catalogue small] [--tasks 64] [--group 4] [--repeats 5]

The server runs as its own process on loopback (``agentgym serve env``). Measured in one run:

- step latency: one environment, the expert's episodes stepped one call at a time (median of
  every step's wall time, local and remote);
- rollout throughput: the rollout engine runs the expert on ``--tasks`` test goals x ``--group``
  with 16 environment slots, local and remote in turn, ``--repeats`` times; the median run of each
  (each on a new engine, after an untimed run that makes its slots' environments).

Both print the remote/local ratio. On loopback the difference is the HTTP and JSON round trip; over
a network add its latency per step.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

from arguments import at_least

import agentgym
from agentgym.policies import ExpertPolicy
from agentgym.rollout import GroupRequest, RolloutEngine
from agentgym.tools.servers import wait_until_ready


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def step_latencies(env_id: str, kwargs: dict, episodes: int) -> list[float]:
    env = agentgym.make(env_id, **kwargs)
    latencies = []
    for episode in range(episodes):
        env.reset(seed=episode, options={"split": "test", "task_id": episode})
        while True:
            action = env.unwrapped.expert_action()
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            latencies.append(time.perf_counter() - start)
            if terminated or truncated:
                break
    env.close()
    return latencies


def rollout_seconds(env_id: str, kwargs: dict, tasks: int, group: int) -> tuple[float, int, int]:
    """Seconds of one timed run, its steps, and its tasks (fewer than ``tasks`` where the split has fewer)."""
    engine = RolloutEngine(env_id, kwargs, num_slots=16)
    requests = [GroupRequest(task_id=t, split="test", seed=t) for t in engine.task_ids("test")[:tasks]]
    # untimed: the slots make their environments on first use (a served one opens a session), which
    # a training run pays once, not every iteration
    engine.run(ExpertPolicy(), requests, group)
    start = time.perf_counter()
    groups = engine.run(ExpertPolicy(), requests, group)
    elapsed = time.perf_counter() - start
    engine.close()
    return elapsed, sum(len(t.steps) for g in groups for t in g.trajectories), len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default="small")
    parser.add_argument("--tasks", type=at_least(1), default=64)
    parser.add_argument("--group", type=at_least(1), default=4)
    parser.add_argument("--repeats", type=at_least(1), default=5)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "agentgym", "serve", "env", "--env", "webshop"]
    command += [f"catalogue={args.catalogue}", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(url, timeout=120, process=server)
        setups = {"local": ("webshop", {"catalogue": args.catalogue}), "remote": ("remote", {"url": url})}

        latency = {
            name: statistics.median(step_latencies(*setup, episodes=50)) for name, setup in setups.items()
        }
        print(
            f"step latency, median over the expert's steps on 50 test goals: local {latency['local'] * 1e3:.2f} ms, "
            f"remote {latency['remote'] * 1e3:.2f} ms, {latency['remote'] / latency['local']:.1f}x"
        )

        runs: dict[str, list[float]] = {name: [] for name in setups}
        for _ in range(args.repeats):
            for name, setup in setups.items():
                seconds, steps, tasks = rollout_seconds(*setup, tasks=args.tasks, group=args.group)
                runs[name].append(steps / seconds)
        rate = {name: statistics.median(values) for name, values in runs.items()}
        print(
            f"expert rollouts ({tasks} tasks x {args.group}, 16 slots), median of {args.repeats}: "
            f"local {rate['local']:,.0f} steps/s, remote {rate['remote']:,.0f} steps/s, "
            f"remote/local {rate['remote'] / rate['local']:.2f}"
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # not left running behind the benchmark
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
