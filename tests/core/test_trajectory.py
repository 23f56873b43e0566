import numpy as np
import pytest

from agentgym.trajectory import Step, StepBatch, Trajectory, TrajectoryGroup, read_trajectories, write_jsonl


def test_from_records_with_the_minimal_keys_derives_done_and_defaults():
    records = [
        {"group": "g", "traj": 0, "t": 1, "anchor": "b", "action": "y", "reward": 1.0, "valid": True},
        {"group": "g", "traj": 0, "t": 0, "anchor": "a", "action": "x", "reward": 0.0, "valid": False},
        {"group": "g", "traj": 1, "t": 0, "anchor": "a", "action": "z", "reward": 0.5, "valid": True},
        {"group": "h", "traj": 0, "t": 0, "anchor": ["a", 1], "action": "x", "reward": 0.0, "valid": True},
    ]
    batch = StepBatch.from_records(records)
    assert len(batch) == 4
    assert batch.done.tolist() == [True, False, True, True]
    assert batch.valid.tolist() == [True, False, True, True]
    assert batch.role.tolist() == ["agent"] * 4
    assert np.isnan(batch.info_gain).all() and np.isnan(batch.outcome).all()
    assert batch.anchor[3] == ("a", 1)  # lists become hashable tuples
    # trajectories are (group, traj) pairs: traj 0 of g and traj 0 of h are different trajectories
    assert batch.traj_index().tolist() == [0, 0, 1, 2]
    assert batch.group_index().tolist() == [0, 0, 0, 1]
    assert batch.last_t().tolist() == [1, 1, 0, 0]


def test_from_records_keeps_given_done_and_igpo_columns():
    batch = StepBatch.from_records(
        [
            {"group": 0, "traj": 0, "t": 0, "reward": 0.0, "done": False, "info_gain": 0.25},
            {"group": 0, "traj": 0, "t": 1, "reward": 1.0, "done": True, "outcome": 1.0},
        ]
    )
    assert batch.done.tolist() == [False, True]
    assert batch.info_gain[0] == 0.25 and np.isnan(batch.info_gain[1])
    assert np.isnan(batch.outcome[0]) and batch.outcome[1] == 1.0


def test_from_records_requires_the_identifying_keys():
    with pytest.raises(KeyError, match="group"):
        StepBatch.from_records([{"traj": 0, "t": 0, "reward": 0.0}])


def test_select_keeps_rows_in_order():
    batch = StepBatch.from_records([{"group": 0, "traj": i, "t": 0, "reward": float(i)} for i in range(5)])
    picked = batch.select(np.array([False, True, False, True, True]))
    assert picked.reward.tolist() == [1.0, 3.0, 4.0]
    assert [row["traj"] for row in picked] == [1, 3, 4]


def _trajectory(group: str, member: int, rewards: list[float]) -> Trajectory:
    steps = [
        Step(
            t=t,
            observation=f"o{t}",
            action=f"a{t}",
            reward=r,
            anchor=("room", t),
            prompt_ids=[1, 2],
            response_ids=[3],
        )
        for t, r in enumerate(rewards)
    ]
    return Trajectory(
        env_id="toy", task_id=7, split="test", group=group, traj=member, steps=steps, won=rewards[-1] > 0
    )


def test_jsonl_round_trip_drops_tokens_and_tolerates_a_cut_off_tail(tmp_path):
    trajectories = [
        _trajectory("g1", 0, [0.0, 1.0]),
        _trajectory("g1", 1, [0.0]),
        _trajectory("g2", 0, [1.0]),
    ]
    path = tmp_path / "traces.jsonl"
    write_jsonl(path, trajectories)
    with open(path, "a") as handle:
        handle.write('{"env_id": "toy", "task_id": 1, "gro')  # a killed writer
    loaded = read_trajectories(path)
    assert [t.group for t in loaded] == ["g1", "g1", "g2"]
    assert loaded[0].steps[1].anchor == ("room", 1)
    assert loaded[0].steps[0].prompt_ids is None  # token ids stay out of traces by default
    groups = TrajectoryGroup.from_trajectories(loaded)
    assert [(g.group, len(g.trajectories)) for g in groups] == [("g1", 2), ("g2", 1)]


def test_from_trajectories_builds_one_row_per_step():
    batch = StepBatch.from_trajectories([_trajectory("g", 0, [0.0, 0.0, 1.0]), _trajectory("g", 1, [1.0])])
    assert batch.t.tolist() == [0, 1, 2, 0]
    assert batch.done.tolist() == [False, False, True, True]
    assert batch.prompt_ids == [[1, 2]] * 4


def test_numpy_anchors_and_task_ids_become_python_values_that_traces_can_store(tmp_path):
    step = Step(t=0, observation="o", action="a", anchor=(np.int64(2), np.bool_(True), [np.float32(0.5)]))
    assert step.anchor == (2, True, (0.5,)) and type(step.anchor[0]) is int
    trajectory = Trajectory(env_id="toy", task_id=0, group="g", steps=[step])
    # The rollout engine fills these in from the environment's info after construction.
    trajectory.task_id = np.int64(3)
    step.anchor = {"room": np.int64(1)}
    write_jsonl(tmp_path / "traces.jsonl", [trajectory])
    [loaded] = read_trajectories(tmp_path / "traces.jsonl")
    assert loaded.task_id == 3 and loaded.steps[0].anchor == (("room", 1),)


def test_token_columns_are_none_for_token_less_steps_and_a_mix_is_refused():
    steps = [Step(t=t, observation="o", action="a") for t in range(2)]  # an expert's: no tokens
    expert = Trajectory(env_id="toy", task_id=0, group="g", steps=steps)
    batch = StepBatch.from_trajectories([expert])
    assert batch.prompt_ids is None and batch.response_ids is None
    assert batch.response_logprobs is None and batch.response_allowed is None
    with pytest.raises(ValueError, match="prompt_ids is missing from 2 of 3 records"):
        StepBatch.from_trajectories([_trajectory("h", 0, [1.0]), expert])
    # Constrained decoding leaves free rows at None: that is no mix.
    allowed = [None, [[1, 2]]]
    rows = [
        {"group": 0, "traj": 0, "t": t, "reward": 0.0, "response_allowed": a} for t, a in enumerate(allowed)
    ]
    assert StepBatch.from_records(rows).response_allowed == allowed


def test_from_records_checks_every_record_for_the_identifying_keys():
    with pytest.raises(KeyError, match=r"record 1 lacks required key\(s\) \['traj'\]"):
        StepBatch.from_records(
            [{"group": 0, "traj": 0, "t": 0, "reward": 0.0}, {"group": 0, "t": 1, "reward": 1.0}]
        )


def test_select_with_no_positions_is_an_empty_batch():
    batch = StepBatch.from_records([{"group": 0, "traj": i, "t": 0, "reward": 1.0} for i in range(3)])
    for empty in ([], np.zeros(3, dtype=bool)):
        picked = batch.select(empty)
        assert len(picked) == 0 and picked.reward.tolist() == [] and picked.last_t().tolist() == []


def test_rewriting_a_traces_file_that_fails_midway_keeps_the_previous_file(tmp_path):
    path = tmp_path / "traces.jsonl"
    write_jsonl(path, [_trajectory("g1", 0, [1.0]), _trajectory("g2", 0, [0.0])])
    before = path.read_text()

    def interrupted():
        yield _trajectory("g3", 0, [1.0])
        raise KeyboardInterrupt  # a kill while the kept episodes are written back

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(path, interrupted())
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["traces.jsonl"]


def test_a_rewrite_killed_midway_leaves_nothing_behind_once_the_file_is_written_again(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "traces.jsonl"
    write_jsonl(path, [_trajectory("g1", 0, [1.0])])
    killed = (
        "import os, sys; from agentgym.trajectory import Step, Trajectory, write_jsonl\n"
        "def records():\n"
        "    yield Trajectory(env_id='e', task_id=0, group='g2', steps=[Step(t=0, observation='o', action='a')])\n"
        "    os._exit(9)  # no finally block runs, as under kill -9\n"
        "write_jsonl(sys.argv[1], records())\n"
    )
    assert subprocess.run([sys.executable, "-c", killed, str(path)]).returncode == 9
    assert [read.group for read in read_trajectories(path)] == ["g1"]
    write_jsonl(path, [_trajectory("g3", 0, [0.0])])
    assert [p.name for p in tmp_path.iterdir()] == ["traces.jsonl"]


def test_from_records_reads_a_generator_like_a_list():
    records = [{"group": 0, "traj": 0, "t": t, "reward": float(t), "anchor": [t]} for t in range(3)]
    batch = StepBatch.from_records(record for record in records)
    assert batch.reward.tolist() == [0.0, 1.0, 2.0] and batch.anchor.tolist() == [(0,), (1,), (2,)]
    assert batch.done.tolist() == [False, False, True]


def test_only_a_last_line_cut_short_is_skipped_not_a_whole_line_of_something_else(tmp_path):
    path = tmp_path / "traces.jsonl"
    write_jsonl(path, [_trajectory("g1", 0, [1.0])])
    whole = path.read_text()
    path.write_text(whole + whole[: len(whole) // 2])  # a killed append: no closing newline
    assert [read.group for read in read_trajectories(path)] == ["g1"]
    path.write_text(whole + '{"iteration": 0, "loss": 0.5}\n')  # a whole line that is no trajectory
    with pytest.raises(ValueError):
        read_trajectories(path)


def test_numpy_values_in_step_info_are_written_to_traces_as_python_values(tmp_path):
    # An environment computing won/score with numpy passes them on in info; the engine copies them
    # into Step.info, and traces.jsonl must still be writable.
    info = {"won": np.bool_(True), "score": np.float32(0.5), "valid": np.bool_(True), "hits": np.arange(2)}
    step = Step(t=0, observation="o", action="a", info=info)
    write_jsonl(tmp_path / "traces.jsonl", [Trajectory(env_id="toy", task_id=0, group="g", steps=[step])])
    [loaded] = read_trajectories(tmp_path / "traces.jsonl")
    assert loaded.steps[0].info == {"won": True, "score": 0.5, "valid": True, "hits": [0, 1]}


def test_select_refuses_a_boolean_mask_of_another_length():
    batch = StepBatch.from_records([{"group": 0, "traj": i, "t": 0, "reward": float(i)} for i in range(4)])
    with pytest.raises(IndexError, match="mask of 2 rows for a batch of 4"):
        batch.select(np.array([False, True]))  # e.g. a mask computed on another batch
    with pytest.raises(IndexError, match="mask of 5 rows for a batch of 4"):
        batch.select([True] * 5)


def test_a_given_done_is_kept_where_only_some_records_give_it():
    batch = StepBatch.from_records(
        [
            {"group": 0, "traj": 0, "t": 0, "reward": 0.0},
            {"group": 0, "traj": 0, "t": 1, "reward": 0.0, "done": False},  # the episode goes on
            {"group": 0, "traj": 1, "t": 0, "reward": 0.0},
            {"group": 0, "traj": 2, "t": 0, "reward": 0.0, "done": None},  # None: not given
        ]
    )
    assert batch.done.tolist() == [False, False, True, True]


def test_from_trajectories_marks_the_last_step_whatever_its_t():
    trajectory = _trajectory("g", 0, [0.0, 0.0, 1.0])
    trajectory.steps = [trajectory.steps[0], trajectory.steps[2]]  # t = 0, 2: a step left out
    batch = StepBatch.from_trajectories([trajectory])
    assert batch.t.tolist() == [0, 2] and batch.done.tolist() == [False, True]
