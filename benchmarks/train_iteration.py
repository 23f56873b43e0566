"""Where the time of one RL iteration goes: generation, environment, probing, advantages, update,
weight sync.

    python benchmarks/train_iteration.py [--env webshop] [--algo gigpo] [--iterations 6] [k=v ...]
    python benchmarks/train_iteration.py --env search-qa --algo igpo     # IGPO's probing share
    python benchmarks/train_iteration.py model.generator=vllm            # generation with vLLM

Runs the real trainer (the environment's recipe without its SFT stage, a one-task evaluation) for a
few iterations and reads its per-iteration timings back from metrics.jsonl. An untrained model writes
long gibberish, so pass a warm-started one for representative numbers: `model.spec=<run>/sft`.
"environment" is the rollout minus the time inside the policy's generate call: environment steps,
prompt building and action parsing. The first iteration is dropped as warm-up; the medians of the
rest are printed with each phase's share of the median iteration (medians, so the shares need not
add up to 100%), then the tokens per second of generation and of the update and, on a GPU, the peak
memory. The first line says how many torch threads the trainer ran on. Extra k=v arguments are
training-config overrides.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from arguments import at_least

from agentgym.config import load_config
from agentgym.trainers.config import TrainConfig
from agentgym.trainers.recipes import recipe_path
from agentgym.trainers.rl import Trainer

PHASES = {
    "generation": lambda m: m["timing/generation"],
    "environment": lambda m: m["timing/rollout"] - m["timing/generation"],
    "probing": lambda m: m.get("timing/probing", 0.0),
    "advantages": lambda m: m["timing/advantages"],
    "update": lambda m: m["timing/update"],
    "weight sync": lambda m: m.get("timing/weight_sync", 0.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--algo", default=None, help="estimator [default: the recipe's]")
    parser.add_argument("--iterations", type=at_least(1), default=6)
    parser.add_argument("overrides", nargs="*", help="training-config overrides, e.g. rollout.group_size=4")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        values = {
            "env": args.env,
            "iterations": args.iterations,
            "out": out,
            "overwrite": True,
            "checkpoint_every": 0,
            "sft": {"enabled": False},
            "eval": {"episodes": 1, "every": 0},
        }
        if args.algo:
            values["algo"] = args.algo
        config = load_config(TrainConfig, [recipe_path(args.env)], values, args.overrides)
        Trainer(config).fit()
        threads = torch.get_num_threads()  # the trainer sets model.threads when given
        metrics = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]

    measured = metrics[1:] or metrics
    medians = {name: statistics.median(phase(m) for m in measured) for name, phase in PHASES.items()}
    # the median iteration's time, not the sum of the phases' medians (which no iteration need take)
    total = statistics.median(sum(phase(m) for phase in PHASES.values()) for m in measured)
    rollout = config.rollout
    which = (
        f"median of {len(measured)} iterations"
        if len(metrics) > 1
        else "the only iteration, warm-up included"
    )
    print(
        f"\n{config.env} / {config.algo} / {config.model.spec}: B={rollout.tasks_per_iteration} tasks x "
        f"G={rollout.group_size} rollouts, {which} "
        f"({statistics.median(m['rollout/steps'] for m in measured):.1f} steps per episode); "
        f"{threads} torch thread{'s' if threads > 1 else ''}"
    )
    print(f"{'phase':<14}{'median s':>10}{'share':>9}")
    for name, seconds in medians.items():
        print(f"{name:<14}{seconds:>10.3f}{seconds / total:>9.1%}")
    print(f"{'iteration':<14}{total:>10.3f}{1:>9.0%}")
    for name, unit in (
        ("throughput/generation_tokens_per_s", "generated tokens/s"),
        ("throughput/update_tokens_per_s", "update tokens/s (prompt + response, forward + backward)"),
        ("memory/peak_gib", "GiB peak accelerator memory"),
    ):
        if name in measured[0]:
            print(f"{statistics.median(m[name] for m in measured):,.1f} {unit}")


if __name__ == "__main__":
    main()
