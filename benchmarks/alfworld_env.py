"""ALFWorld throughput: steps/s through the rollout engine with 1 and 2 worker processes, and reset times.

    python benchmarks/alfworld_env.py
    python benchmarks/alfworld_env.py --tasks 16 --group 4 --slots 8 --repeats 5

Rollouts use the random policy (uniform over the admissible commands) on ``--tasks`` games of
``--split``, each ``--group`` times, in ``--slots`` environments spread over the worker processes.
Episodes mostly run to the 50-step limit, so stepping dominates. One untimed run first loads the
games in every worker (translations are cached per process, for at most 16 games: ``--tasks`` is
no more, as more would load a game anew at every reset), so the timed runs measure steady-state
stepping through ``ProcessEnvPool``: engine ticks, pickling, the engine's steps. Each number is the
median of ``--repeats`` runs. "Worker CPU cores busy" is the CPU time the workers got per second of
wall time: 2 worker processes can only scale 2x when they get 2 cores, so on a machine shared with
other work it shows how many they got (the load average is printed for the same reason); steps per
worker CPU-second is the throughput per core they did get, which a serial bottleneck in the pool
would lower for 2 workers.

Reset and step times are measured in this process: a reset to a game not seen before (grammar,
translation, first state) and a reset of the loaded game; a step is one admissible command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from arguments import at_least, between

from agentgym.environments.alfworld import ALFWorldEnv
from agentgym.environments.alfworld.engine import COMPILED_GAMES
from agentgym.policies import RandomPolicy
from agentgym.rollout.engine import GroupRequest, RolloutEngine


def _cpu_seconds(env: object) -> float:
    """CPU time of the worker process hosting ``env`` (run there through the pool)."""
    return time.process_time()


def steps_per_second(
    args: argparse.Namespace, env_kwargs: dict, processes: int
) -> tuple[list[float], float, float]:
    """Steps/s of each timed run, the worker CPU cores kept busy over all timed runs, and the steps
    of all timed runs per worker CPU-second they took."""
    requests = [GroupRequest(task_id=i, split=args.split, seed=i) for i in range(args.tasks)]
    rates = []
    with RolloutEngine(
        "alfworld", env_kwargs, num_slots=args.slots, parallelism="process", num_processes=processes
    ) as engine:
        engine.run(RandomPolicy(), requests, group_size=args.group)  # warm-up: load the games

        def worker_cpu() -> float:  # slot p lives in process p (round-robin placement)
            return sum(engine.pool.result(p, engine.pool.submit(p, _cpu_seconds)) for p in range(processes))

        cpu_before, wall, total_steps = worker_cpu(), 0.0, 0
        for _ in range(args.repeats):
            start = time.perf_counter()
            groups = engine.run(RandomPolicy(), requests, group_size=args.group)
            elapsed = time.perf_counter() - start
            steps = sum(len(t.steps) for group in groups for t in group.trajectories)
            rates.append(steps / elapsed)
            wall += elapsed
            total_steps += steps
        cpu = worker_cpu() - cpu_before
    # both over the same runs: the median run's rate over all runs' busy cores would mix them
    return rates, cpu / wall, total_steps / cpu


def reset_and_step_times(args: argparse.Namespace, env_kwargs: dict) -> dict[str, list[float]]:
    env = ALFWorldEnv(**env_kwargs)
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"new game": [], "loaded game": [], "step": []}
    # games the workers did not load (another process), as many as they rolled out where the split has them
    unseen = [task_id for task_id in env.task_ids(args.split) if task_id >= args.tasks][: args.tasks]
    for task_id in unseen:
        start = time.perf_counter()
        _, info = env.reset(options={"task_id": task_id, "split": args.split})
        times["new game"].append(time.perf_counter() - start)
        for _ in range(10):
            actions = info["available_actions"]
            action = actions[int(rng.integers(len(actions)))]
            start = time.perf_counter()
            _, _, terminated, _, info = env.step(action)
            times["step"].append(time.perf_counter() - start)
            if terminated:
                break
        start = time.perf_counter()
        env.reset(options={"task_id": task_id, "split": args.split})
        times["loaded game"].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="valid_seen")
    parser.add_argument(
        "--tasks",
        type=between(
            1,
            COMPILED_GAMES,
            "a worker process keeps that many games compiled; more would load a game anew at every reset",
        ),
        default=8,
        help=f"games rolled out (at most {COMPILED_GAMES}, the games a worker process keeps loaded)",
    )
    parser.add_argument("--group", type=at_least(1), default=4, help="rollouts per game")
    parser.add_argument(
        "--slots", type=at_least(2), default=8, help="environments in the pool (2 processes need 2)"
    )
    parser.add_argument("--repeats", type=at_least(1), default=3, help="timed runs per configuration")
    parser.add_argument("--cache-dir", default=None, help="generated games (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        env_kwargs = {"split": args.split, "cache_dir": args.cache_dir or temporary}
        print(
            f"alfworld {args.split}: random policy, {args.tasks} games x {args.group} rollouts, "
            f"{args.slots} slots, median of {args.repeats} runs; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at start"
        )
        rates, busy = {}, {}
        for processes in (1, 2):
            rates[processes], busy[processes], per_cpu = steps_per_second(args, env_kwargs, processes)
            runs = ", ".join(f"{r:.1f}" for r in rates[processes])
            rate = statistics.median(rates[processes])
            print(
                f"  {processes} worker process{'es' if processes > 1 else '  '}: {rate:7.1f} steps/s   "
                f"(runs: {runs}; worker CPU cores busy: {busy[processes]:.2f}, "
                f"{per_cpu:.1f} steps per worker CPU-second)"
            )
        ratio = statistics.median(rates[2]) / statistics.median(rates[1])
        print(f"  scaling, 2 vs 1 processes: {ratio:.2f}x")
        times = reset_and_step_times(args, env_kwargs)
        if not times["step"]:
            print(f"  no reset or step times: the {args.tasks} games rolled out are all of {args.split}")
        for name in ("new game", "loaded game") if times["step"] else ():
            print(
                f"  reset, {name:<11}: median {statistics.median(times[name]) * 1000:7.1f} ms over {len(times[name])}"
            )
        if times["step"]:
            print(
                f"  step (in process)  : median {statistics.median(times['step']) * 1000:7.1f} ms "
                f"over {len(times['step'])}"
            )
        print(f"  load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
