"""Trajectories: the records rollouts write (``Step``, ``Trajectory``, ``TrajectoryGroup``) and the
columnar ``StepBatch`` that advantage estimators and trainers consume.

The pydantic records are what ``traces.jsonl`` holds, one :class:`Trajectory` per line::

    write_jsonl("traces.jsonl", trajectories)
    trajectories = read_trajectories("traces.jsonl")

A :class:`StepBatch` has one row per (trajectory, step)::

    batch = StepBatch.from_records([
        {"group": 0, "traj": 0, "t": 0, "anchor": "s0", "action": "a", "reward": 0.0, "valid": True},
        {"group": 0, "traj": 0, "t": 1, "anchor": "s1", "action": "b", "reward": 1.0, "valid": True},
    ])
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

TOKEN_FIELDS = ("prompt_ids", "response_ids", "response_logprobs", "response_allowed")


def freeze(value: Any) -> Hashable:
    """Makes a JSON value hashable (lists become tuples, dicts sorted item tuples) for anchors.

    numpy scalars become the Python values they hold: they hash like them, and traces.jsonl can
    store them."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, freeze(item)) for key, item in value.items()))
    return value


def to_python(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, also inside dicts, lists and tuples, as the Python
    values they hold: pydantic cannot write numpy values to JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: to_python(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [to_python(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


class Step(BaseModel):
    """One agent turn: what it saw, what it generated, what it did and what came back."""

    # Assignments are validated too, so an anchor set later is frozen like one given at construction.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    t: int = Field(description="step index inside the trajectory, from 0")
    observation: str = Field(description="the observation the agent acted on")
    completion: str = Field(default="", description="the raw text the policy generated")
    action: str = Field(description="the action sent to the environment")
    reward: float = Field(default=0.0, description="the environment reward of this step")
    terminated: bool = False
    truncated: bool = False
    valid: bool = Field(default=True, description="False when the action was unparseable or rejected")
    anchor: Any = Field(default=None, description="hashable key of the state acted in")
    role: str = Field(default="agent", description="which agent acted (multi-agent systems)")
    info: dict[str, Any] = Field(default_factory=dict, description="selected info keys after the step")
    prompt: list[dict[str, str]] | None = Field(default=None, description="chat messages sent to the policy")
    prompt_ids: list[int] | None = None
    response_ids: list[int] | None = None
    response_logprobs: list[float] | None = None
    response_allowed: list[list[int] | None] | None = Field(
        default=None, description="constrained decoding: the tokens allowed at each response position"
    )
    info_gain: float | None = Field(default=None, description="IGPO: p_t - p_(t-1); None on the final turn")

    @field_validator("anchor", mode="after")
    @classmethod
    def _hashable_anchor(cls, value: Any) -> Hashable:
        return freeze(value)

    @field_validator("info", mode="after")
    @classmethod
    def _json_info(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The engine copies the environment's info values (won, score, ...) as they come; a numpy
        # bool or int among them would make the whole traces.jsonl write fail after the rollouts.
        return to_python(value)


class Trajectory(BaseModel):
    """One episode of one task by one group member."""

    # The rollout engine fills task_id and the like from the environment's info after construction:
    # validating assignments turns a numpy task id into the int that traces.jsonl can store.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    env_id: str
    task_id: int | str
    split: str = ""
    group: str = Field(description="id of the task group (rollouts sharing the initial state)")
    traj: int = Field(default=0, description="member index inside the group")
    task: str = Field(default="", description="instruction text")
    seed: int | None = None
    steps: list[Step] = Field(default_factory=list)
    won: bool = False
    score: float | None = None
    task_type: str | None = None
    gold: list[str] | None = None
    failed: bool = Field(default=False, description="the environment crashed or hung; not the agent's fault")
    error: str | None = None

    @property
    def total_reward(self) -> float:
        return float(sum(step.reward for step in self.steps))

    @property
    def episode_score(self) -> float:
        """The environment's ``score`` where it defines one, else the total reward."""
        return self.score if self.score is not None else self.total_reward


class TrajectoryGroup(BaseModel):
    """The G rollouts of one task that share an initial state."""

    model_config = ConfigDict(extra="forbid")

    group: str
    env_id: str
    task_id: int | str
    split: str = ""
    trajectories: list[Trajectory] = Field(default_factory=list)

    @classmethod
    def from_trajectories(cls, trajectories: Iterable[Trajectory]) -> list[TrajectoryGroup]:
        """Regroups trajectories by their ``group`` field, in order of first appearance."""
        groups: dict[str, TrajectoryGroup] = {}
        for trajectory in trajectories:
            if trajectory.group not in groups:
                groups[trajectory.group] = cls(
                    group=trajectory.group,
                    env_id=trajectory.env_id,
                    task_id=trajectory.task_id,
                    split=trajectory.split,
                )
            groups[trajectory.group].trajectories.append(trajectory)
        return list(groups.values())


def write_jsonl(
    path: str | Path, records: Iterable[BaseModel], append: bool = False, tokens: bool = False
) -> None:
    """Writes pydantic records one per line; token ids and log-probs are left out unless ``tokens``.

    Without ``append`` the file is replaced through a rename: a failure or a kill while writing
    leaves the previous file as it was (an evaluation resumed over it keeps its episodes)."""
    exclude = None if tokens else {"steps": {"__all__": set(TOKEN_FIELDS)}}
    if append:
        with open(path, "a", encoding="utf-8") as handle:
            _write_records(handle, records, exclude)
        return
    path = Path(path)
    # One fixed name, as for the training metrics: a copy a kill left behind is replaced by the next write.
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            _write_records(handle, records, exclude)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_records(handle: TextIO, records: Iterable[BaseModel], exclude: dict[str, Any] | None) -> None:
    for record in records:
        kwargs = {"exclude": exclude} if isinstance(record, Trajectory) else {}
        handle.write(record.model_dump_json(**kwargs) + "\n")


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Reads a ``traces.jsonl`` file; a last line cut short (a killed run: no closing newline) is
    skipped, any other line that is not a trajectory is an error."""
    trajectories = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                trajectories.append(Trajectory.model_validate_json(line))
            except ValueError:
                # A whole line (another file's, another version's) must not pass for a killed write,
                # or `eval --resume` would replace that file without a word.
                if line.endswith("\n") or handle.readline():
                    raise
    return trajectories


def _factorize(values: Sequence[Hashable]) -> np.ndarray:
    """Integer codes of ``values`` in order of first appearance."""
    codes: dict[Hashable, int] = {}
    return np.fromiter((codes.setdefault(v, len(codes)) for v in values), dtype=np.int64, count=len(values))


@dataclass
class StepBatch:
    """Columnar steps, one row per (trajectory, step); every column has length ``len(batch)``.

    Columns:
        group: task-group id of the row (any hashable; rows of different groups never mix)
        traj: trajectory id; a trajectory is identified by the pair (group, traj)
        t: step index inside the trajectory (int64)
        anchor: hashable key of the environment state the step acted in (object)
        action: the action text (object)
        reward: environment reward of the step (float64)
        valid: whether the action was valid (bool)
        done: whether the step ended its trajectory (bool); derived from ``t`` when not given
        role: which agent acted (object, default ``"agent"``)
        info_gain: IGPO turn reward p_t - p_(t-1) (float64, NaN where absent, e.g. the final turn)
        outcome: IGPO outcome reward on the final turn (float64, NaN elsewhere)
        prompt_ids, response_ids, response_logprobs, ref_logprobs: per-row token lists when the batch
            comes from a model rollout, else ``None`` (the whole column: expert rollouts, traces read
            back); a batch where only some rows have them is an error
        response_allowed: per row, the tokens constrained decoding allowed at each response position
            (``None`` for a row or position that was generated freely; the whole column is ``None``
            when no row was constrained)
    """

    group: np.ndarray
    traj: np.ndarray
    t: np.ndarray
    anchor: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    valid: np.ndarray
    done: np.ndarray
    role: np.ndarray
    info_gain: np.ndarray
    outcome: np.ndarray
    prompt_ids: list[list[int]] | None = None
    response_ids: list[list[int]] | None = None
    response_logprobs: list[list[float]] | None = None
    response_allowed: list[list[list[int] | None] | None] | None = None
    ref_logprobs: list[list[float]] | None = None
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> StepBatch:
        """Builds a batch from plain dicts with the column names above (a list or any iterable).

        Required keys: ``group``, ``traj``, ``t``, ``reward``. Defaults: ``anchor`` = None,
        ``action`` = "", ``valid`` = True, ``role`` = "agent", ``done`` = last ``t`` of the
        trajectory, ``info_gain`` and ``outcome`` = NaN.
        """
        records = list(records)  # each column reads them again: a generator would be spent after one
        for index, record in enumerate(records):
            missing = [key for key in ("group", "traj", "t", "reward") if key not in record]
            if missing:
                raise KeyError(f"StepBatch.from_records: record {index} lacks required key(s) {missing}")

        def column(key: str, default: Any, dtype: Any = object) -> np.ndarray:
            values = [record.get(key, default) for record in records]
            if dtype is object:
                array = np.empty(len(values), dtype=object)
                array[:] = values if key != "anchor" else [freeze(v) for v in values]
                return array
            return np.asarray([default if v is None else v for v in values], dtype=dtype)

        batch = cls(
            group=column("group", None),
            traj=column("traj", None),
            t=column("t", 0, np.int64),
            anchor=column("anchor", None),
            action=column("action", ""),
            reward=column("reward", 0.0, np.float64),
            valid=column("valid", True, bool),
            done=np.zeros(len(records), dtype=bool),  # below: given per row, else derived from t
            role=column("role", "agent"),
            info_gain=column("info_gain", math.nan, np.float64),
            outcome=column("outcome", math.nan, np.float64),
        )
        for name in (*TOKEN_FIELDS, "ref_logprobs"):
            values = [record.get(name) for record in records]
            absent = sum(value is None for value in values)
            if absent == len(values):
                continue
            # A row without tokens would reach the trainer as a None it cannot train on.
            if absent and name != "response_allowed":
                raise ValueError(
                    f"StepBatch.from_records: {name} is missing from {absent} of {len(values)} "
                    "records; give it for every row or for none"
                )
            setattr(batch, name, values)
        # Like every other column, done defaults row by row: a row's own value (a trajectory that
        # goes on past this batch) must survive rows that leave it out.
        batch.done = batch.t == batch.last_t()
        for row, record in enumerate(records):
            if record.get("done") is not None:
                batch.done[row] = bool(record["done"])
        return batch

    @classmethod
    def from_trajectories(cls, trajectories: Iterable[Trajectory], tokens: bool = True) -> StepBatch:
        """One row per step of each trajectory, in order; ``done`` marks each trajectory's last step.

        With ``tokens``, the token columns are filled when the steps carry them (see the class
        docstring: a mix of steps with and without them is an error)."""
        records = []
        for trajectory in trajectories:
            last = len(trajectory.steps) - 1
            for position, step in enumerate(trajectory.steps):
                record = {
                    "group": trajectory.group,
                    "traj": trajectory.traj,
                    "t": step.t,
                    "anchor": step.anchor,
                    "action": step.action,
                    "reward": step.reward,
                    "valid": step.valid,
                    "done": position == last,  # by position: t may skip a step left out
                    "role": step.role,
                    "info_gain": step.info_gain,
                }
                if tokens:
                    record.update({name: getattr(step, name) for name in TOKEN_FIELDS})
                records.append(record)
        return cls.from_records(records)

    # Derived, cached columns -------------------------------------------------------------------

    def group_index(self) -> np.ndarray:
        """(rows,) int codes of ``group``, in order of first appearance."""
        if "group" not in self._cache:
            self._cache["group"] = _factorize(self.group.tolist())
        return self._cache["group"]

    def traj_index(self) -> np.ndarray:
        """(rows,) int codes of the (group, traj) pair: one code per trajectory."""
        if "traj" not in self._cache:
            self._cache["traj"] = _factorize(
                list(zip(self.group_index().tolist(), self.traj.tolist(), strict=True))
            )
        return self._cache["traj"]

    def last_t(self) -> np.ndarray:
        """(rows,) the largest ``t`` of each row's trajectory."""
        index = self.traj_index()
        last = np.full(index.max() + 1 if len(index) else 0, -1, dtype=np.int64)
        np.maximum.at(last, index, self.t)
        return last[index]

    def select(self, mask: np.ndarray) -> StepBatch:
        """The rows where ``mask`` (one bool per row) is true, or at the given integer positions, in order."""
        positions = np.asarray(mask)
        if positions.dtype == bool:
            # flatnonzero would take a mask of another batch without a word, picking the wrong rows
            if positions.shape != (len(self),):
                raise IndexError(
                    f"select: a boolean mask of {positions.size} rows for a batch of {len(self)}"
                )
            positions = np.flatnonzero(positions)
        elif positions.size == 0:
            positions = np.zeros(0, dtype=np.intp)  # np.asarray([]) is a float array, not an index
        values = {}
        for f in fields(self):
            if f.name == "_cache":
                continue
            column = getattr(self, f.name)
            if column is None:
                values[f.name] = None
            elif isinstance(column, np.ndarray):
                values[f.name] = column[positions]
            else:
                values[f.name] = [column[i] for i in positions]
        return StepBatch(**values)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = [f.name for f in fields(self) if f.name != "_cache" and getattr(self, f.name) is not None]
        for i in range(len(self)):
            yield {name: getattr(self, name)[i] for name in names}
