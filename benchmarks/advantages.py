"""Times every advantage estimator on ~100k step rows and prints its cost relative to GRPO.

    python benchmarks/advantages.py [--trajectories 2000] [--group-size 8] [--steps 50] [--repeats 7]

The batch imitates one rollout of a text environment: 2,000 trajectories of 40-60 steps (≈100k rows)
in groups of 8 that share a task; each task has its own few dozen states whose observation texts
repeat within and across trajectories, one step in ten is an invalid action that leaves the state
unchanged, rewards are sparse (success at the end), IGPO columns are filled, and the rows are shuffled.
Each timing runs on a fresh copy of the batch, new string objects included, because a StepBatch
caches its group and trajectory codes, a string caches its hash, and a training iteration sees each
batch once. The estimators take turns within each repeat, so that load from other processes falls
on all of them alike; the median over the repeats is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from arguments import at_least

from agentgym.trainers import compute_advantages
from agentgym.trajectory import StepBatch

CASES: list[tuple[str, dict]] = [
    ("grpo", {}),
    ("rloo", {}),
    ("gigpo", {}),
    ("gigpo", {"invalid_penalty": 0.1, "similarity": 0.9}),
    ("hgpo", {}),
    ("hgpo", {"base_group": True}),
    ("salt", {}),
    ("salt", {"merge": "prefix"}),
    ("igpo", {}),
]
ACTIONS = [
    "go north",
    "go south",
    "Go  North",
    "take key",
    "open door",
    "look",
    "inventory",
    "click[buy now]",
]


def rollout_batch(trajectories: int, group_size: int, steps: int, states: int, seed: int) -> StepBatch:
    """One synthetic rollout as a shuffled StepBatch (see the module docstring)."""
    rng = np.random.default_rng(seed)
    # at least one step each: a trajectory of none would not be one (and a batch of none has no groups)
    lengths = rng.integers(max(1, int(steps * 0.8)), int(steps * 1.2) + 1, size=trajectories)
    rows = int(lengths.sum())
    traj = np.repeat(np.arange(trajectories), lengths)
    group = traj // group_size
    t = np.arange(rows) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    valid = rng.random(rows) > 0.1
    # a random walk over each task's states; an invalid action leaves the state where it was
    move = rng.integers(states, size=rows)
    state = np.where(t == 0, 0, move)
    for i in np.flatnonzero(~valid[:-1] & (t[1:] > 0)):
        state[i + 1] = state[i]
    final = np.r_[t[1:] == 0, True]
    success = rng.random(trajectories) < 0.3
    reward = np.where(final, success[traj].astype(float), 0.0)
    info_gain = np.where(final, np.nan, rng.normal(0.0, 0.1, rows))
    outcome = np.where(final, reward, np.nan)

    def column(values: list) -> np.ndarray:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array

    # fresh string objects per row, as an environment produces them (their hashes are not cached yet)
    anchor = column(
        [
            f"Task {g}. You are in room {s} of the house; you see a desk and a lamp."
            for g, s in zip(group, state, strict=True)
        ]
    )
    action = column([ACTIONS[a] for a in rng.integers(len(ACTIONS), size=rows)])
    order = rng.permutation(rows)
    return StepBatch(
        group=column([f"task-{g}" for g in group])[order],
        traj=(traj % group_size)[order],
        t=t[order],
        anchor=anchor[order],
        action=action[order],
        reward=reward[order],
        valid=valid[order],
        done=final[order],
        role=column(["agent"] * rows)[order],
        info_gain=info_gain[order],
        outcome=outcome[order],
    )


def fresh_copy(batch: StepBatch) -> StepBatch:
    """All rows of ``batch`` in a new StepBatch (no cached codes) whose strings are new objects too:
    CPython caches a string's hash in the string, so strings hashed before (by an earlier timing, or
    by counting the anchors) would spare an estimator the hashing of a rollout's fresh strings."""
    copy = batch.select(np.arange(len(batch)))
    for name in ("group", "anchor", "action", "role"):
        column = getattr(copy, name)
        fresh = np.empty(len(column), dtype=object)
        fresh[:] = [text.encode().decode() for text in column]
        setattr(copy, name, fresh)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=at_least(1), default=2000)
    parser.add_argument("--group-size", type=at_least(1), default=8)
    parser.add_argument(
        "--steps", type=at_least(1), default=50, help="mean steps per trajectory (lengths vary ±20%%)"
    )
    parser.add_argument("--states", type=at_least(1), default=40, help="distinct states per task")
    parser.add_argument("--repeats", type=at_least(1), default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    batch = rollout_batch(args.trajectories, args.group_size, args.steps, args.states, args.seed)
    anchors_per_group = len({(g, a) for g, a in zip(batch.group, batch.anchor, strict=True)}) / len(
        set(batch.group)
    )
    print(
        f"{len(batch):,} rows, {args.trajectories:,} trajectories in groups of {args.group_size}, "
        f"{anchors_per_group:.0f} distinct anchors per group, median of {args.repeats} runs each"
    )
    for name, params in CASES:  # imports and first-call costs stay out of the timing
        compute_advantages(name, fresh_copy(batch.select(np.arange(min(1000, len(batch))))), **params)
    seconds: dict[tuple, list[float]] = {(name, tuple(params.items())): [] for name, params in CASES}
    for _ in range(args.repeats):  # round-robin, so that load from other processes hits every estimator alike
        for name, params in CASES:
            fresh = fresh_copy(batch)  # off the clock
            start = time.perf_counter()
            compute_advantages(name, fresh, **params)
            seconds[(name, tuple(params.items()))].append(time.perf_counter() - start)
    medians = {case: statistics.median(times) for case, times in seconds.items()}

    grpo = medians[("grpo", ())]
    print(f"{'estimator':<44} {'median ms':>10} {'x GRPO':>8}")
    for (name, params), seconds in medians.items():
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in params)})" if params else "")
        print(f"{label:<44} {seconds * 1e3:>10.1f} {seconds / grpo:>8.2f}")


if __name__ == "__main__":
    main()
