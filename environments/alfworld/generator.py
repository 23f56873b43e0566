"""Deterministic generation of ALFWorld games (``.tw-pddl``) from ALFRED's rooms, domain and goals.

A game is the JSON object ALFWorld plays with TextWorld's PDDL engine::

    {"pddl_domain": <alfred.pddl>, "grammar": <alfred.twl2, task sentence filled in>,
     "pddl_problem": <objects, initial facts, goal>, "solvable": true}

Game ``index`` of ``split`` is a pure function of ``(GENERATOR_VERSION, split, index)`` and the
``alfworld`` package data: its random stream is Python's Mersenne Twister seeded with the string
``"agentgym-alfworld-v<version>/<split>/<index>"``, and only ``random()`` is drawn from it (the one
method whose sequence Python guarantees across versions), so regeneration is byte-identical.

How a game is built:

1. The task type comes from the split's fixed schedule (:func:`split_task_types`): the official ALFWorld
   counts per type (train 3,553 / valid_seen 140 / valid_unseen 134), shuffled once.
2. A floor plan is drawn among the rooms where ALFRED allows the type (heating and cooling in kitchens,
   looking at objects under a lamp in living rooms and bedrooms, ...): train and valid_seen use the 116
   seen floor plans, valid_unseen only ALFRED's four validation-unseen ones (10, 219, 308, 424).
3. A goal is drawn among those the room supports: an object type present in the room, a receptacle
   type that can hold it (ALFRED's compatibility table), the sink/microwave/fridge the task needs, a
   lamp for ``look_at_obj_in_light``.
4. The room is furnished: every posed receptacle of the floor plan (openable ones start closed), the
   receptacle types the room lists without a pose at free floor points, 1-3 instances of every
   pickupable object type present (2-4 of a ``pick_two`` target) placed in compatible receptacles,
   never a target in a receptacle that would already satisfy the goal. The agent starts at a free
   floor point, "in the middle of a room".

Each receptacle gets a location of its own (ALFWorld's ``go to`` command names the receptacles at a
location, so shared locations would give commands such as "go to drawer 1, and drawer 2").
"""

from __future__ import annotations

import functools
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alfworld.gen import goal_library
from alfworld.info import BUILTIN_DATA_PATH

from agentgym.environments.alfworld.rooms import (
    LAMP_HOSTS,
    LAMPS,
    UNSEEN_SCENES,
    Room,
    all_scenes,
    load_room,
    thor_tables,
)

GENERATOR_VERSION = 1

TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
#: Games per task type (in TASK_TYPES order): the counts of the official ALFWorld splits.
SPLIT_TASK_COUNTS = {
    "train": (790, 308, 650, 459, 533, 813),
    "valid_seen": (35, 13, 27, 16, 25, 24),
    "valid_unseen": (24, 18, 31, 23, 21, 17),
}
SPLITS = tuple(SPLIT_TASK_COUNTS)

#: The appliance a task type needs; targets never start in it, and it is never the goal receptacle.
APPLIANCES = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
#: What an object must be for the appliance to act on it (ALFRED's cleanable, heatable, coolable).
ABILITIES = {"SinkBasin": "cleanable", "Microwave": "heatable", "Fridge": "coolable"}
#: Type constants alfred.pddl uses in preconditions; PDDL needs them declared as objects.
DOMAIN_TYPE_CONSTANTS = {"otype": ("ButterKnife", "Knife"), "rtype": ("Fridge", "Microwave", "SinkBasin")}
GRID = 0.25  # metres per step of ALFRED's navigation grid (locations are grid coordinates)
MAX_LOAD = 4  # objects a receptacle receives before others are preferred

T = TypeVar("T")


class StableRandom:
    """Draws only through ``random.Random.random()``, whose sequence Python keeps across versions."""

    def __init__(self, key: str):
        self._random = random.Random(key)

    def random(self) -> float:
        return self._random.random()

    def below(self, n: int) -> int:
        return min(int(self._random.random() * n), n - 1)

    def choice(self, items: Sequence[T]) -> T:
        if not items:
            raise IndexError("choice from an empty sequence")
        return items[self.below(len(items))]

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._random.random()


@dataclass(frozen=True)
class TaskSpec:
    """What game ``index`` of ``split`` asks: ALFWorld's ``pddl_params`` plus where it happens."""

    split: str
    index: int
    task_type: str
    scene: int
    object_target: str
    parent_target: str | None  # the goal receptacle type (None for look_at_obj_in_light)
    toggle_target: str | None  # the lamp type of look_at_obj_in_light
    sentence: str  # the task sentence, e.g. "put a clean mug in coffeemachine"

    @property
    def name(self) -> str:
        """The official directory name, e.g. ``pick_clean_then_place_in_recep-Mug-None-CoffeeMachine-12``."""
        last = self.parent_target or self.toggle_target
        return f"{self.task_type}-{self.object_target}-None-{last}-{self.scene}"


def split_size(split: str) -> int:
    return sum(_counts(split))


def _counts(split: str) -> tuple[int, ...]:
    if split not in SPLIT_TASK_COUNTS:
        raise ValueError(f"unknown split {split!r}; ALFWorld's splits are {', '.join(SPLITS)}")
    return SPLIT_TASK_COUNTS[split]


@functools.cache
def split_task_types(split: str) -> tuple[str, ...]:
    """The task type of every game of ``split``, in index order (the official counts, shuffled)."""
    types = [t for t, count in zip(TASK_TYPES, _counts(split), strict=True) for _ in range(count)]
    rng = StableRandom(f"agentgym-alfworld-v{GENERATOR_VERSION}/{split}/order")
    for i in range(len(types) - 1, 0, -1):  # Fisher-Yates
        j = rng.below(i + 1)
        types[i], types[j] = types[j], types[i]
    return tuple(types)


# Goals. --------------------------------------------------------------------------------------------


def _fits_elsewhere(room: Room, obj: str, excluded: set[str]) -> bool:
    """Whether a receptacle of the room whose type is not ``excluded`` can hold ``obj``."""
    contains = thor_tables()["contains"]
    return any(obj in contains[r.type] and r.type not in excluded for r in room.receptacles)


@functools.cache
def room_goals(scene: int, task_type: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """The ``(object_target, parent_target, toggle_target)`` goals ``task_type`` can have in ``scene``."""
    tables = thor_tables()
    room = load_room(scene)
    if room.room_type not in tables["goals_valid"][task_type]:
        return ()
    receptacle_types = {r.type for r in room.receptacles}
    objects = sorted(room.object_types - set(LAMPS))
    if task_type == "look_at_obj_in_light":
        lamps = [
            lamp for lamp in LAMPS if lamp in room.object_types and receptacle_types & set(LAMP_HOSTS[lamp])
        ]
        return tuple(
            (obj, None, lamp) for lamp in lamps for obj in objects if _fits_elsewhere(room, obj, set())
        )
    appliance = APPLIANCES.get(task_type)
    if appliance is not None and appliance not in receptacle_types:
        return ()
    ability = ABILITIES.get(appliance or "")
    goals = []
    for obj in objects:
        if ability is not None and obj not in tables[ability]:
            continue
        for recep in sorted(receptacle_types):
            # A toaster only takes sliced bread, and ALFWorld leaves slicing out.
            if recep == appliance or recep == "Toaster" or obj not in tables["contains"][recep]:
                continue
            if _fits_elsewhere(room, obj, {recep, appliance} - {None}):
                goals.append((obj, recep, None))
    return tuple(goals)


@functools.cache
def split_scenes(split: str, task_type: str) -> tuple[int, ...]:
    """The floor plans a game of ``split`` and ``task_type`` can be drawn from."""
    _counts(split)
    pool = (
        UNSEEN_SCENES if split == "valid_unseen" else tuple(n for n in all_scenes() if n not in UNSEEN_SCENES)
    )
    return tuple(n for n in pool if room_goals(n, task_type))


def task_spec(split: str, index: int) -> tuple[TaskSpec, StableRandom]:
    """The task of game ``index`` and the random stream that goes on to furnish its room."""
    types = split_task_types(split)
    if not 0 <= index < len(types):
        raise IndexError(f"split {split!r} has games 0..{len(types) - 1}, not {index}")
    task_type = types[index]
    rng = StableRandom(f"agentgym-alfworld-v{GENERATOR_VERSION}/{split}/{index}")
    scene = rng.choice(split_scenes(split, task_type))
    obj, recep, toggle = rng.choice(room_goals(scene, task_type))
    template = rng.choice(goal_library.gdict[task_type]["templates"])
    sentence = template.format(obj=obj.lower(), recep=(recep or "").lower(), toggle=(toggle or "").lower())
    return TaskSpec(split, index, task_type, scene, obj, recep, toggle, sentence), rng


# Furnishing. ---------------------------------------------------------------------------------------


@dataclass
class _Placed:
    id: str
    type: str
    location: tuple[int, int, int, int]


def _thor_id(kind: str, x: float, y: float, z: float) -> str:
    return f"{kind}|{x:+06.2f}|{y:+06.2f}|{z:+06.2f}"


def _coordinates(thor_id: str) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in thor_id.split("|")[1:4])
    return x, y, z


def _grid(x: float, z: float, rotation: int, horizon: int) -> tuple[int, int, int, int]:
    return round(x / GRID), round(z / GRID), rotation // 90 % 4, horizon


def _place_receptacles(room: Room, rng: StableRandom) -> tuple[list[_Placed], tuple[int, int, int, int]]:
    """Every receptacle at a location of its own, and the agent's start at another free point."""
    taken: set[tuple[int, int, int, int]] = set()
    ids: set[str] = set()
    placed = []
    for receptacle in room.receptacles:
        thor_id, pose = receptacle.id, receptacle.pose
        if pose is None:
            x, z = rng.choice(room.floor)
            pose = (x, z, 90 * rng.below(4), 30)
            while not thor_id or thor_id in ids:
                thor_id = _thor_id(
                    receptacle.type,
                    x + rng.uniform(-0.5, 0.5),
                    rng.uniform(0.0, 1.0),
                    z + rng.uniform(-0.5, 0.5),
                )
        location = _grid(*pose)
        while location in taken:  # another receptacle is seen from here: look from a new angle
            location = (*location[:3], location[3] + 15)
        taken.add(location)
        ids.add(thor_id)
        placed.append(_Placed(thor_id, receptacle.type, location))
    while True:
        x, z = rng.choice(room.floor)
        start = _grid(x, z, 90 * rng.below(4), 30)
        if start not in taken:
            return placed, start


def _instances(rng: StableRandom, minimum: int) -> int:
    """``minimum`` instances, one more with probability 0.35 and another with 0.1 (up to ALFRED's 3-4)."""
    return minimum + (rng.random() < 0.35) + (rng.random() < 0.1)


def _place_objects(
    spec: TaskSpec, room: Room, receptacles: list[_Placed], rng: StableRandom
) -> list[tuple[_Placed, _Placed]]:
    """``(object, receptacle)`` pairs: instances of every pickupable type and the lamps, placed."""
    contains = thor_tables()["contains"]
    never_for_target = {spec.parent_target, APPLIANCES.get(spec.task_type)} - {None}
    load: Counter[str] = Counter()
    ids = {r.id for r in receptacles}
    pairs = []
    for kind in sorted(room.object_types):
        if kind in LAMPS:
            hosts = [r for r in receptacles if r.type in LAMP_HOSTS[kind]]
            count = 1
        else:
            excluded = never_for_target if kind == spec.object_target else set()
            hosts = [r for r in receptacles if kind in contains[r.type] and r.type not in excluded]
            minimum = 2 if kind == spec.object_target and spec.task_type == "pick_two_obj_and_place" else 1
            count = _instances(rng, minimum)
        if not hosts:
            continue
        for _ in range(count):
            roomy = [r for r in hosts if load[r.id] < MAX_LOAD] or hosts
            host = rng.choice(roomy)
            load[host.id] += 1
            x, y, z = _coordinates(host.id)
            thor_id = ""
            while not thor_id or thor_id in ids:
                thor_id = _thor_id(
                    kind, x + rng.uniform(-0.3, 0.3), y + rng.uniform(0.02, 0.3), z + rng.uniform(-0.3, 0.3)
                )
            ids.add(thor_id)
            pairs.append((_Placed(thor_id, kind, host.location), host))
    return pairs


# PDDL. ---------------------------------------------------------------------------------------------


def mangle(name: str) -> str:
    """ALFRED's PDDL-safe spelling of AI2-THOR ids (``Cabinet|+00.68|...`` -> ``Cabinet_bar__plus_00_dot_68...``)."""
    for char, word in (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_")):
        name = name.replace(char, word)
    return name


def _location(location: tuple[int, int, int, int]) -> str:
    return mangle("loc|" + "|".join(str(v) for v in location))


def _problem(
    spec: TaskSpec,
    receptacles: list[_Placed],
    start: tuple[int, int, int, int],
    objects: list[tuple[_Placed, _Placed]],
) -> str:
    tables = thor_tables()
    object_types = {o.type for o, _ in objects} | {spec.object_target, *DOMAIN_TYPE_CONSTANTS["otype"]}
    receptacle_types = {r.type for r in receptacles} | set(DOMAIN_TYPE_CONSTANTS["rtype"])
    if spec.toggle_target:
        object_types.add(spec.toggle_target)
    locations = sorted({_location(r.location) for r in receptacles} | {_location(start)})

    declarations = ["agent1 - agent"]
    declarations += [f"{t}Type - otype" for t in sorted(object_types)]
    declarations += [f"{t}Type - rtype" for t in sorted(receptacle_types)]
    declarations += [f"{mangle(o.id)} - object" for o, _ in objects]
    declarations += [f"{mangle(r.id)} - receptacle" for r in receptacles]
    declarations += [f"{loc} - location" for loc in locations]

    facts = [f"(atLocation agent1 {_location(start)})"]
    for r in receptacles:
        name = mangle(r.id)
        facts.append(f"(receptacleType {name} {r.type}Type)")
        facts.append(f"(receptacleAtLocation {name} {_location(r.location)})")
        if r.type in tables["openable"]:
            facts.append(f"(openable {name})")
    present = sorted({o.type for o, _ in objects if o.type not in LAMPS})
    for rtype in sorted({r.type for r in receptacles}):
        facts += [
            f"(canContain {rtype}Type {otype}Type)" for otype in present if otype in tables["contains"][rtype]
        ]
    # No "sliceable": ALFWorld leaves out ALFRED's slicing tasks, and each sliceable object would add a
    # "slice" operator per knife and location to the planning task.
    abilities = ("cleanable", "heatable", "coolable")
    for o, host in objects:
        name = mangle(o.id)
        facts.append(f"(objectType {name} {o.type}Type)")
        facts.append(f"(inReceptacle {name} {mangle(host.id)})")
        facts.append(f"(objectAtLocation {name} {_location(o.location)})")
        if o.type in LAMPS:
            facts.append(f"(toggleable {name})")
            continue
        facts.append(f"(pickupable {name})")
        if o.type in tables["movable"]:
            facts.append(f"(isReceptacleObject {name})")
        facts += [f"({ability} {name})" for ability in abilities if o.type in tables[ability]]

    goal = goal_library.gdict[spec.task_type]["pddl"].replace("#", "-")
    goal = goal.format(obj=spec.object_target, recep=spec.parent_target, toggle=spec.toggle_target)
    indent = "\n        "
    return (
        f"\n(define (problem agentgym_{spec.split}_{spec.index})\n(:domain alfred)\n(:objects"
        f"{indent}{indent.join(declarations)}\n        )\n\n(:init"
        f"{indent}{indent.join(facts)}\n        )\n\n{goal}"
    )


@functools.cache
def _package_text(name: str) -> str:
    return Path(BUILTIN_DATA_PATH, name).read_text()


def generate_game(split: str, index: int) -> tuple[TaskSpec, dict[str, Any]]:
    """Game ``index`` of ``split``: its task and the ``.tw-pddl`` JSON object."""
    spec, rng = task_spec(split, index)
    room = load_room(spec.scene)
    receptacles, start = _place_receptacles(room, rng)
    objects = _place_objects(spec, room, receptacles, rng)
    grammar = _package_text("alfred.twl2").replace("UNKNOWN GOAL", spec.sentence)
    game = {
        "pddl_domain": _package_text("alfred.pddl"),
        "grammar": grammar,
        "pddl_problem": _problem(spec, receptacles, start, objects),
        "solvable": True,
    }
    return spec, game


def game_bytes(game: dict[str, Any]) -> bytes:
    """The canonical file content of a game (what the cache stores and regeneration reproduces)."""
    return json.dumps(game).encode()
