import json
import math

import numpy as np
import pytest
from toy_envs import KeyDoorEnv

import agentgym
from agentgym.config import load_config
from agentgym.core import AgentGymError
from agentgym.evaluation import EvalConfig, evaluate, pass_at_k
from agentgym.policies import SamplingParams
from agentgym.trajectory import read_trajectories, write_jsonl


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 0, 1, 0.0),
        (5, 5, 3, 1.0),
        (4, 1, 1, 0.25),  # c / n
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (10, 3, 5, 1 - math.comb(7, 5) / math.comb(10, 5)),
    ],
)
def test_unbiased_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_eval_writes_metrics_and_traces(tmp_path):
    config = EvalConfig(
        env="test-keydoor", policy="random", split="test", episodes=4, attempts=3, out=tmp_path, seed=1
    )
    metrics = evaluate(config)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == metrics
    for key in (
        "success_rate",
        "mean_score",
        "mean_steps",
        "valid_action_ratio",
        "pass@1",
        "pass@2",
        "pass@3",
    ):
        assert key in metrics
    traces = read_trajectories(tmp_path / "traces.jsonl")
    assert len(traces) == 12 and metrics["episodes"] == 12 and metrics["tasks"] == 4
    assert metrics["success_rate"] == pytest.approx(sum(t.won for t in traces) / 12)
    assert metrics["mean_steps"] == pytest.approx(sum(len(t.steps) for t in traces) / 12)
    assert metrics["pass@1"] == pytest.approx(metrics["success_rate"])  # equal group sizes
    assert metrics["pass@1"] <= metrics["pass@2"] <= metrics["pass@3"]
    assert {t.task_id for t in traces} == {1000, 1001, 1002, 1003}


def test_eval_expert_is_perfect_and_resume_only_runs_missing_tasks(tmp_path):
    first = evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=2, out=tmp_path))
    assert first["success_rate"] == 1.0 and first["valid_action_ratio"] == 1.0
    with pytest.raises(AgentGymError, match="--resume"):
        evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=4, out=tmp_path))
    lines_before = (tmp_path / "traces.jsonl").read_text().splitlines()
    with open(tmp_path / "traces.jsonl", "a") as handle:
        handle.write('{"env_id": "test-key')  # a run killed mid-write
    resumed = evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=4, out=tmp_path, resume=True))
    lines_after = (tmp_path / "traces.jsonl").read_text().splitlines()
    assert lines_after[:2] == lines_before and len(lines_after) == 4
    assert resumed["tasks"] == 4 and resumed["success_rate"] == 1.0


def test_resuming_over_a_file_that_is_not_traces_is_a_one_line_error_and_keeps_it(tmp_path):
    other = '{"iteration": 0, "loss": 0.5}\n{"iteration": 1, "loss": 0.4}\n'  # metrics, say
    (tmp_path / "traces.jsonl").write_text(other)
    with pytest.raises(AgentGymError, match=r"traces\.jsonl is not a traces file"):
        evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=1, out=tmp_path, resume=True))
    assert (tmp_path / "traces.jsonl").read_text() == other


def test_config_rejects_contradictions():
    with pytest.raises(ValueError, match="exclude each other"):
        EvalConfig(env="x", resume=True, overwrite=True)


def test_a_negative_seed_is_refused_before_any_episode_runs(tmp_path):
    with pytest.raises(AgentGymError, match="seed: Input should be greater than or equal to 0"):
        load_config(EvalConfig, None, {"env": "test-keydoor", "out": tmp_path}, ["seed=-1"])


def test_resume_summarises_this_runs_tasks_and_keeps_the_others_on_disk(tmp_path):
    evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=4, out=tmp_path))
    fewer = evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=2, out=tmp_path, resume=True))
    assert fewer["tasks"] == 2 and fewer["episodes"] == 2
    other_split = evaluate(
        EvalConfig(env="test-keydoor", policy="expert", episodes=2, split="train", out=tmp_path, resume=True)
    )
    assert other_split["tasks"] == 2 and other_split["split"] == "train"
    assert json.loads((tmp_path / "metrics.json").read_text()) == other_split
    on_disk = read_trajectories(tmp_path / "traces.jsonl")
    assert sorted(t.task_id for t in on_disk) == [0, 1, 1000, 1001, 1002, 1003]  # none lost, none rerun


class NumpyKeyDoorEnv(KeyDoorEnv):
    def _info(self, **extra):
        info = super()._info(**extra)
        return {
            **info,
            "task_id": np.int64(info["task_id"]),
            "anchor": (np.int64(len(self.here)), self.has_key),
        }


def test_an_environment_with_numpy_task_ids_and_anchors_is_written_and_read_back(tmp_path):
    agentgym.register("test-numpy-keydoor", NumpyKeyDoorEnv, max_episode_steps=20)
    try:
        metrics = evaluate(EvalConfig(env="test-numpy-keydoor", policy="expert", episodes=2, out=tmp_path))
    finally:
        agentgym.deregister("test-numpy-keydoor")
    assert metrics["success_rate"] == 1.0
    traces = read_trajectories(tmp_path / "traces.jsonl")
    assert sorted(t.task_id for t in traces) == [1000, 1001]
    assert all(type(step.anchor[0]) is int for t in traces for step in t.steps)


def test_resume_in_a_directory_of_another_environment_rolls_this_one_out(tmp_path):
    evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=2, out=tmp_path))
    other = EvalConfig(env="test-invalid-moves", policy="random", episodes=2, out=tmp_path, resume=True)
    rolled_out = []
    metrics = evaluate(other, on_trajectory=rolled_out.append)
    assert [t.env_id for t in rolled_out] == ["test-invalid-moves"] * 2
    assert metrics == evaluate(other.model_copy(update={"out": tmp_path / "fresh", "resume": False}))
    on_disk = read_trajectories(tmp_path / "traces.jsonl")
    assert sorted(t.env_id for t in on_disk) == ["test-invalid-moves"] * 2 + ["test-keydoor"] * 2


def test_resume_with_fewer_attempts_reports_what_a_fresh_run_would(tmp_path):
    # Episodes are written as they finish, shortest first; the metrics take members 0..k-1.
    config = EvalConfig(env="test-keydoor", policy="random", episodes=3, attempts=4, out=tmp_path / "a")
    evaluate(config)
    fewer = config.model_copy(update={"attempts": 1, "resume": True})
    fresh = config.model_copy(update={"attempts": 1, "out": tmp_path / "b"})
    assert evaluate(fewer) == evaluate(fresh)


def test_a_run_directory_that_is_a_file_is_a_one_line_error_and_keeps_it(tmp_path):
    traces = tmp_path / "traces.jsonl"
    traces.write_text("kept\n")
    with pytest.raises(AgentGymError, match="is a file: give a directory"):
        evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=1, out=traces))
    assert traces.read_text() == "kept\n"


class ClosingExpert(agentgym.policies.ExpertPolicy):
    closed = 0

    def close(self):
        ClosingExpert.closed += 1


def test_a_policy_evaluate_makes_is_closed_and_one_it_is_given_is_left_open(tmp_path, monkeypatch):
    monkeypatch.setattr("agentgym.evaluation.make_policy", lambda spec, **context: ClosingExpert())
    config = EvalConfig(env="test-keydoor", policy="expert", split="test", episodes=2, out=tmp_path / "made")
    evaluate(config)
    assert ClosingExpert.closed == 1  # a vLLM engine or an HTTP client would otherwise stay open
    given = ClosingExpert()
    evaluate(config.model_copy(update={"out": tmp_path / "given"}), policy=given)
    assert ClosingExpert.closed == 1


def test_an_evaluation_that_cannot_start_leaves_no_run_directory(tmp_path):
    config = EvalConfig(env="test-keydoor", policy="expert", split="nope", out=tmp_path / "run")
    with pytest.raises(AgentGymError):
        evaluate(config)
    assert not (tmp_path / "run").exists()


def test_resume_reruns_a_task_whose_first_members_did_not_finish(tmp_path):
    # A killed run with 4 attempts finished members 0, 2 and 3 of task 1000 (member 1, the longest,
    # was cut off); resumed with 2 attempts, that task needs members 0 and 1, as a fresh run has.
    config = EvalConfig(env="test-keydoor", policy="random", episodes=2, attempts=4, out=tmp_path / "a")
    evaluate(config)
    traces = tmp_path / "a" / "traces.jsonl"
    write_jsonl(traces, [t for t in read_trajectories(traces) if (t.task_id, t.traj) != (1000, 1)])
    fewer = config.model_copy(update={"attempts": 2, "resume": True})
    fresh = config.model_copy(update={"attempts": 2, "out": tmp_path / "b"})
    assert evaluate(fewer) == evaluate(fresh)


def test_an_interrupted_run_leaves_no_metrics_of_the_traces_it_replaced(tmp_path):
    config = EvalConfig(env="test-keydoor", policy="expert", episodes=3, out=tmp_path)
    evaluate(config)

    def ctrl_c(trajectory):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(config.model_copy(update={"policy": "random", "overwrite": True}), on_trajectory=ctrl_c)
    # traces.jsonl now holds the random policy's first episode: the expert's metrics would misreport it
    assert len(read_trajectories(tmp_path / "traces.jsonl")) == 1
    assert not (tmp_path / "metrics.json").exists()


def test_resume_rolls_out_again_the_episodes_an_environment_failure_ended(tmp_path):
    # An environment that crashed (a server down, a worker killed) says nothing of the policy.
    config = EvalConfig(env="test-keydoor", policy="expert", episodes=3, out=tmp_path / "a")
    won = evaluate(config)
    traces = tmp_path / "a" / "traces.jsonl"
    crashed = [
        t.model_copy(update={"failed": True, "won": False}) if t.task_id == 1001 else t
        for t in read_trajectories(traces)
    ]
    write_jsonl(traces, crashed)
    assert evaluate(config.model_copy(update={"resume": True})) == won
    assert not any(t.failed for t in read_trajectories(traces))


def test_a_policy_that_fails_before_any_episode_leaves_no_run_directory(tmp_path):
    class Unconstrainable:  # an HTTP policy, say: it cannot be limited to the admissible actions
        def generate(self, prompts, sampling):
            raise AssertionError("never asked")

    config = EvalConfig(
        env="test-keydoor", policy="x", episodes=2, out=tmp_path / "run", agent={"constrain_actions": True}
    )
    with pytest.raises(AgentGymError, match="does not support constrained decoding"):
        evaluate(config, policy=Unconstrainable())
    assert not (tmp_path / "run").exists()  # the corrected command runs as typed, without --overwrite


def test_resume_with_another_policy_or_sampling_is_refused_by_name_and_keeps_the_traces(tmp_path):
    config = EvalConfig(env="test-keydoor", policy="expert", episodes=2, out=tmp_path)
    evaluate(config)
    traces_before = (tmp_path / "traces.jsonl").read_text()
    resumed = config.model_copy(update={"resume": True, "episodes": 3})
    with pytest.raises(AgentGymError, match="policy"):
        evaluate(resumed.model_copy(update={"policy": "random"}))
    with pytest.raises(AgentGymError, match="sampling"):
        evaluate(resumed.model_copy(update={"sampling": SamplingParams(temperature=1.0, max_tokens=256)}))
    assert (tmp_path / "traces.jsonl").read_text() == traces_before
    assert evaluate(resumed)["tasks"] == 3  # the same settings, more tasks: continued


def test_one_directory_may_hold_runs_of_two_environments_each_with_its_settings(tmp_path):
    evaluate(EvalConfig(env="test-keydoor", policy="expert", episodes=1, out=tmp_path))
    other = EvalConfig(env="test-invalid-moves", policy="random", episodes=1, out=tmp_path, resume=True)
    evaluate(other)
    with pytest.raises(AgentGymError, match="policy"):
        evaluate(other.model_copy(update={"env": "test-keydoor"}))  # keydoor's were the expert's
    # --overwrite replaces the traces of every environment, and so their settings
    evaluate(EvalConfig(env="test-keydoor", policy="random", episodes=1, out=tmp_path, overwrite=True))
    evaluate(other.model_copy(update={"max_steps": 3}))
