"""WebShop environment speed: env steps per second for a realistic action mix, and search latency.

Usage::

    python benchmarks/webshop_env.py [--catalogue default|small] [--episodes 2000] [--seed 0]

Pinned to one CPU core. The action mix: on each step the scripted expert's action with probability
0.7, otherwise a uniformly drawn admissible action (the search template filled with words of the
instruction); episodes end at ``buy now`` or at the registered 15-step limit, so the mix holds
searches, result pages, item pages, option clicks, sub-pages and purchases, as agent rollouts do.
Only ``env.step`` is timed, not the choice of action. Search latency is measured on fresh queries (the
memo cleared) and on repeated ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from arguments import at_least

import agentgym


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", default="default")
    parser.add_argument("--episodes", type=at_least(1), default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    start = time.perf_counter()
    env = agentgym.make("webshop", catalogue=args.catalogue)
    first_make = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(64):
        agentgym.make("webshop", catalogue=args.catalogue)
    later_make = (time.perf_counter() - start) / 64
    inner = env.unwrapped
    catalogue = inner.catalogue
    print(
        f"catalogue {args.catalogue}: {len(catalogue.products)} products, {len(catalogue.goals)} goals; "
        f"first make {first_make * 1e3:.0f} ms (generate + index), later makes {later_make * 1e3:.2f} ms"
    )

    rng = np.random.default_rng(args.seed)
    steps = searches = wins = 0
    elapsed = 0.0  # in env.step only: choosing the action (the expert's search, say) is not the env's time
    for episode in range(args.episodes):
        _, info = env.reset(seed=args.seed + episode)
        words = info["task"].split()
        while True:
            if rng.random() < 0.7:
                action = inner.expert_action()
            else:
                action = info["available_actions"][int(rng.integers(len(info["available_actions"])))]
                if action == "search[<query>]":
                    picked = rng.choice(words, size=min(4, len(words)), replace=False)
                    action = f"search[{' '.join(picked)}]"
            searches += action.startswith("search[")
            start = time.perf_counter()
            _, _, terminated, truncated, info = env.step(action)
            elapsed += time.perf_counter() - start
            steps += 1
            if terminated or truncated:
                wins += bool(info.get("won"))
                break
    print(
        f"env steps: {steps} in {elapsed:.2f} s = {steps / elapsed:,.0f} steps/s on one core "
        f"({args.episodes} episodes, {searches / steps:.0%} searches, expert-led win rate {wins / args.episodes:.0%})"
    )

    # distinct queries: goals that differ only in their price limit would repeat a search, which the
    # memo would answer
    queries = list(
        dict.fromkeys(
            goal.instruction_text.rsplit(", and price lower than", 1)[0] for goal in catalogue.goals[:2000]
        )
    )
    catalogue.engine.search.cache_clear()
    fresh = []
    for query in queries:
        start = time.perf_counter()
        catalogue.search(query)
        fresh.append(time.perf_counter() - start)
    repeated = []
    for query in queries[:500]:
        start = time.perf_counter()
        catalogue.search(query)
        repeated.append(time.perf_counter() - start)
    print(
        f"search latency (median of {len(fresh)} fresh queries): {statistics.median(fresh) * 1e3:.3f} ms; "
        f"p95 {np.percentile(fresh, 95) * 1e3:.3f} ms; repeated query: {statistics.median(repeated) * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()
