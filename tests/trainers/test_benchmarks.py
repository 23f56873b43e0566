"""The benchmarks' command lines and what they time."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from toy_envs import KeyDoorEnv

import agentgym

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_train_iteration_needs_at_least_one_iteration():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_iteration.py"), "--iterations", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2  # argparse's usage error, before any training
    assert "--iterations: must be at least 1, got 0" in done.stderr


def test_train_iteration_help_describes_every_phase():
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_iteration.py"), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "weight sync" in " ".join(done.stdout.split())


@pytest.mark.parametrize(
    ("script", "arguments", "message"),
    [
        ("advantages.py", ["--trajectories", "16", "--repeats", "0"], "--repeats: must be at least 1, got 0"),
        ("advantages.py", ["--trajectories", "0"], "--trajectories: must be at least 1, got 0"),
        ("generation.py", ["--repeats", "0"], "--repeats: must be at least 1, got 0"),
        ("sft_micro_batches.py", ["--rows", "0"], "--rows: must be at least 1, got 0"),
        (
            "webshop_env.py",
            ["--catalogue", "small", "--episodes", "0"],
            "--episodes: must be at least 1, got 0",
        ),
        ("env_server.py", ["--tasks", "2", "--repeats", "0"], "--repeats: must be at least 1, got 0"),
        (
            "alfworld_env.py",
            ["--tasks", "1", "--slots", "2", "--repeats", "0"],
            "--repeats: must be at least 1, got 0",
        ),
        ("alfworld_env.py", ["--tasks", "1", "--slots", "1"], "--slots: must be at least 2, got 1"),
        ("retrieval.py", ["--docs", "200", "--repeats", "0"], "--repeats: must be at least 1, got 0"),
        # torch refuses it, once the corpus and the BM25 index are built
        ("retrieval.py", ["--docs", "200", "--threads", "-1"], "--threads: must be at least 1, got -1"),
    ],
)
def test_counts_that_leave_nothing_to_measure_are_usage_errors(script, arguments, message):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2  # argparse's usage error, before anything is measured
    assert message in done.stderr


def load_benchmark(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as running the script puts its folder first
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def slow_to_make_keydoor(**kwargs):
    time.sleep(0.5)  # as a served environment's session takes a round trip or more to open
    return KeyDoorEnv(**kwargs)


def test_env_server_rollout_timing_leaves_out_making_the_environments(monkeypatch):
    agentgym.register("test-slow-to-make", slow_to_make_keydoor, max_episode_steps=20)
    try:
        seconds, steps, tasks = load_benchmark("env_server", monkeypatch).rollout_seconds(
            "test-slow-to-make", {}, tasks=5, group=4
        )
    finally:
        agentgym.deregister("test-slow-to-make")
    assert tasks == 5
    assert steps >= 20  # every one of the 5 x 4 episodes took a step
    assert seconds < 0.25  # the expert's steps alone, not the slots' 0.5 s makes


def run_main(module, monkeypatch, *arguments: str) -> None:
    monkeypatch.setattr(sys, "argv", [module.__file__, *arguments])
    module.main()


def test_advantages_times_every_estimator_on_strings_never_hashed_before(monkeypatch, capsys):
    advantages = load_benchmark("advantages", monkeypatch)
    seen: list[object] = []  # every string an estimator was given, kept alive so that ids stay unique
    real = advantages.compute_advantages

    def recording(name, batch, **params):
        seen.extend([*batch.group, *batch.anchor, *batch.action])
        return real(name, batch, **params)

    monkeypatch.setattr(advantages, "compute_advantages", recording)
    run_main(
        advantages, monkeypatch, "--trajectories", "4", "--group-size", "2", "--steps", "3", "--repeats", "2"
    )
    # a string object seen twice had its hash cached by the first call (or by counting the anchors)
    assert len({id(text) for text in seen}) == len(seen)
    assert "x GRPO" in capsys.readouterr().out


def test_advantages_runs_with_one_step_per_trajectory(monkeypatch, capsys):
    advantages = load_benchmark("advantages", monkeypatch)
    for seed in range(4):  # lengths drawn from 0.8-1.2 steps once held zero-step trajectories
        batch = advantages.rollout_batch(trajectories=3, group_size=2, steps=1, states=2, seed=seed)
        assert len(batch) == 3 and len(set(zip(batch.group, batch.traj, strict=True))) == 3
    run_main(advantages, monkeypatch, "--trajectories", "1", "--steps", "1", "--repeats", "1", "--seed", "1")
    assert "igpo" in capsys.readouterr().out


def test_retrieval_queries_from_documents_with_fewer_distinct_words_than_asked(monkeypatch):
    retrieval = load_benchmark("retrieval", monkeypatch)
    tokens = np.array([[7, 8, 9, 1, 1, 2], [7, 8, 9, 3, 4, 5]])  # 3 title words, then 1-2 distinct or 3
    queries = retrieval.make_queries(tokens, [f"w{i}" for i in range(10)], count=20, length=4, seed=0)
    assert len(queries) == 20
    assert {frozenset(query.split()) for query in queries} <= {
        frozenset({"w1", "w2"}),
        frozenset({"w3", "w4", "w5"}),
    }


@pytest.mark.parametrize("seconds", ["45", "0"])
def test_retrieval_encodes_at_most_encode_docs_and_at_least_one_batch(monkeypatch, capsys, tmp_path, seconds):
    retrieval = load_benchmark("retrieval", monkeypatch)
    out = tmp_path / "numbers.json"
    run_main(
        retrieval,
        monkeypatch,
        *("--docs", "40", "--words", "3", "--queries", "2", "--batch", "2", "--repeats", "1"),
        *("--encode-docs", "5", "--encode-seconds", seconds, "--out", str(out)),
    )
    printed = capsys.readouterr().out
    assert "dense passage encoding" in printed and "(5 in " in printed  # not a whole batch of 256
    assert "index completed with 35 random unit vectors" in printed
    assert json.loads(out.read_text())["dense_encode_docs_per_s"] > 0


def test_webshop_env_fresh_search_latency_times_only_searches_the_memo_has_not_seen(monkeypatch, capsys):
    webshop = load_benchmark("webshop_env", monkeypatch)
    monkeypatch.setattr(os, "sched_setaffinity", lambda *args: None)  # leave the test process unpinned
    run_main(webshop, monkeypatch, "--catalogue", "small", "--episodes", "2")
    fresh = int(re.search(r"median of (\d+) fresh queries", capsys.readouterr().out).group(1))
    memo = agentgym.make("webshop", catalogue="small").unwrapped.catalogue.engine.search.cache_info()
    assert memo.misses == fresh  # every "fresh" query missed the memo
    assert memo.hits == min(500, fresh)  # and every repeated one hit it


def test_train_iteration_prints_the_median_iteration_not_the_sum_of_phase_medians(monkeypatch, capsys):
    train_iteration = load_benchmark("train_iteration", monkeypatch)
    # (generation, update) per iteration; the first is the warm-up. Phase medians 5 + 5 = 10 s, but
    # the iterations took 11, 11 and 10 s: the median iteration is 11 s.
    phases = [(100.0, 100.0), (1.0, 10.0), (10.0, 1.0), (5.0, 5.0)]

    class RecordedTrainer:
        def __init__(self, config):
            self.out = Path(config.out)

        def fit(self):
            lines = [
                json.dumps(
                    {
                        "iteration": i,
                        "timing/rollout": generation,
                        "timing/generation": generation,
                        "timing/advantages": 0.0,
                        "timing/update": update,
                        "rollout/steps": 3.0,
                    }
                )
                for i, (generation, update) in enumerate(phases)
            ]
            (self.out / "metrics.jsonl").write_text("".join(f"{line}\n" for line in lines))

    monkeypatch.setattr(train_iteration, "Trainer", RecordedTrainer)
    run_main(train_iteration, monkeypatch, "--iterations", "4")
    rows = {line[:14].strip(): line[14:].split() for line in capsys.readouterr().out.splitlines()}
    assert rows["iteration"] == ["11.000", "100%"]
    assert rows["generation"] == ["5.000", "45.5%"]  # of the median iteration


def test_alfworld_steps_per_worker_cpu_second_counts_the_same_runs_as_the_cpu(monkeypatch, capsys):
    alfworld = load_benchmark("alfworld_env", monkeypatch)
    pauses = iter([0.0, 0.02, 0.02, 0.2] * 2)  # per engine: the warm-up, then three timed runs

    class FakeEngine:  # each run: 100 steps and 1/30 worker CPU-second, spread over the processes
        def __init__(self, env_id, env_kwargs, num_slots, parallelism, num_processes):
            self.processes, self.cpu, self.pool = num_processes, 0.0, self

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def run(self, policy, requests, group_size):
            time.sleep(next(pauses))
            self.cpu += 1 / 30
            return [SimpleNamespace(trajectories=[SimpleNamespace(steps=[None] * 100)])]

        def submit(self, slot, fn):
            return None

        def result(self, slot, future):
            return self.cpu / self.processes

    monkeypatch.setattr(alfworld, "RolloutEngine", FakeEngine)
    monkeypatch.setattr(
        alfworld, "reset_and_step_times", lambda *a: {n: [0.1] for n in ("new game", "loaded game", "step")}
    )
    run_main(alfworld, monkeypatch, "--tasks", "1", "--slots", "2", "--repeats", "3")
    printed = capsys.readouterr().out
    # 300 steps over 0.1 worker CPU-seconds, whichever run was the median one
    assert printed.count("3000.0 steps per worker CPU-second") == 2, printed


def test_alfworld_reset_times_use_only_games_the_split_has(monkeypatch):
    alfworld = load_benchmark("alfworld_env", monkeypatch)

    class FiveGames:  # as ALFWorldEnv, with a split of 5 games
        def __init__(self, **kwargs):
            pass

        def task_ids(self, split):
            return list(range(5))

        def reset(self, options):
            if not 0 <= options["task_id"] < 5:
                raise ValueError(f"task_id {options['task_id']} is not in split {options['split']!r}")
            return "a room", {"available_actions": ["look"]}

        def step(self, action):
            return "a room", 0.0, False, False, {"available_actions": ["look"]}

    monkeypatch.setattr(alfworld, "ALFWorldEnv", FiveGames)
    times = alfworld.reset_and_step_times(SimpleNamespace(tasks=3, split="valid_seen"), {})
    assert len(times["new game"]) == len(times["loaded game"]) == 2  # games 3 and 4: 0-2 were rolled out
    assert len(times["step"]) == 20
    assert alfworld.reset_and_step_times(SimpleNamespace(tasks=5, split="valid_seen"), {})["step"] == []


def test_alfworld_refuses_more_games_than_a_worker_keeps_compiled(monkeypatch, capsys):
    alfworld = load_benchmark("alfworld_env", monkeypatch)
    from agentgym.environments.alfworld.engine import COMPILED_GAMES

    def measured(*args):
        raise AssertionError("measured: every reset of the timed runs would load its game anew")

    monkeypatch.setattr(alfworld, "steps_per_second", measured)
    # one game more than a worker process keeps compiled: round-robin over them, every reset misses
    with pytest.raises(SystemExit) as exit:
        run_main(alfworld, monkeypatch, "--tasks", str(COMPILED_GAMES + 1), "--slots", "2", "--repeats", "1")
    assert exit.value.code == 2  # argparse's usage error, before anything is measured
    assert f"--tasks: must be at most {COMPILED_GAMES}, got {COMPILED_GAMES + 1}" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="measured"):  # as many as it keeps are measured
        run_main(alfworld, monkeypatch, "--tasks", str(COMPILED_GAMES), "--slots", "2", "--repeats", "1")


class FakeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def save_pretrained(self, directory):
        pass


def fake_load_model(spec, env, env_kwargs, device, tiny):
    return FakeModel(), SimpleNamespace(save_pretrained=lambda directory: None, pad_token_id=0)


def fake_generation_benchmark(monkeypatch, threads: list[int]):
    generation = load_benchmark("generation", monkeypatch)
    engines: list[dict] = []

    class FakeEngine:  # every rollout: one step of two generated tokens per episode, in 0.5 s of generate
        def __init__(self, env_id, env_kwargs, **kwargs):
            self.generation_seconds = 0.0

        def task_ids(self, split):
            return list(range(4))

        def run(self, policy, requests, group_size, sampling):
            threads.append(torch.get_num_threads())
            self.generation_seconds += 0.5
            step = SimpleNamespace(action="look", response_ids=[1, 2])
            episode = SimpleNamespace(steps=[step])
            return [SimpleNamespace(trajectories=[episode] * group_size) for _ in requests]

        def close(self):
            pass

    def fake_vllm(directory, **kwargs):
        engines.append(kwargs)
        return SimpleNamespace(kind="vllm")

    monkeypatch.setattr(generation, "load_model", fake_load_model)
    monkeypatch.setattr(generation, "HFPolicy", lambda model, tokenizer: SimpleNamespace(kind="hf"))
    monkeypatch.setattr(generation, "VLLMPolicy", fake_vllm)
    monkeypatch.setattr(generation, "RolloutEngine", FakeEngine)
    return generation, engines


def test_generation_builds_the_vllm_engine_with_the_configs_vllm_settings(monkeypatch, capsys, torch_threads):
    generation, engines = fake_generation_benchmark(monkeypatch, [])
    run_main(
        generation,
        monkeypatch,
        *("--repeats", "1", "model.vllm.gpu_memory_utilization=0.5", "model.vllm.kv_cache_gib=2"),
    )
    assert len(engines) == 1
    # as the trainer builds it from the same settings (model.generator=vllm)
    assert engines[0]["gpu_memory_utilization"] == 0.5 and engines[0]["kv_cache_gib"] == 2.0
    assert "vllm / transformers: 1.00x" in capsys.readouterr().out


def test_generation_runs_on_the_configs_torch_threads_and_says_so(monkeypatch, capsys, torch_threads):
    threads: list[int] = []
    generation, _ = fake_generation_benchmark(monkeypatch, threads)
    torch.set_num_threads(2)
    run_main(generation, monkeypatch, "--repeats", "1", "model.threads=1")
    assert threads and set(threads) == {1}  # the trainer generates on model.threads too
    assert "1 torch thread" in capsys.readouterr().out


def test_sft_micro_batches_train_on_the_recipes_torch_threads_and_say_so(monkeypatch, capsys, torch_threads):
    sft = load_benchmark("sft_micro_batches", monkeypatch)
    threads: list[int] = []

    class FakeEngine:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def task_ids(self, split):
            return list(range(4))

    def fake_train_sft(model, rows, **kwargs):
        threads.append(torch.get_num_threads())
        return [0.0]

    monkeypatch.setattr(sft, "load_model", fake_load_model)
    monkeypatch.setattr(sft, "RolloutEngine", FakeEngine)
    monkeypatch.setattr(sft, "expert_demonstrations", lambda *args: [])
    monkeypatch.setattr(sft, "demonstration_rows", lambda *args: sft.TurnRows([[1, 2]] * 4, [[3]] * 4))
    monkeypatch.setattr(sft, "train_sft", fake_train_sft)
    recipe = sft.load_config(sft.TrainConfig, [sft.recipe_path("webshop")], {"env": "webshop"}, [])
    assert recipe.model.threads == 2  # the WebShop recipe pins its behaviour cloning to 2 threads
    torch.set_num_threads(1)
    run_main(sft, monkeypatch, "--rows", "4", "--repeats", "1")
    assert threads and set(threads) == {2}
    assert "2 torch threads" in capsys.readouterr().out


def test_train_iteration_says_how_many_torch_threads_the_trainer_ran_on(monkeypatch, capsys, torch_threads):
    train_iteration = load_benchmark("train_iteration", monkeypatch)

    class RecordedTrainer:  # sets torch's threads from model.threads, as the trainer does
        def __init__(self, config):
            self.config = config

        def fit(self):
            torch.set_num_threads(self.config.model.threads)
            record = {
                "timing/rollout": 2.0,
                "timing/generation": 1.0,
                "timing/advantages": 0.0,
                "timing/update": 1.0,
                "rollout/steps": 3.0,
            }
            (Path(self.config.out) / "metrics.jsonl").write_text(json.dumps(record) + "\n")

    monkeypatch.setattr(train_iteration, "Trainer", RecordedTrainer)
    torch.set_num_threads(2)
    run_main(train_iteration, monkeypatch, "--iterations", "1", "model.threads=1")
    assert "1 torch thread" in capsys.readouterr().out
