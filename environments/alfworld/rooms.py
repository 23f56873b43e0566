"""The rooms games are built in: AI2-THOR floor plans as the ``alfworld`` package ships them.

``alfworld/gen/layouts`` holds, for each of the 120 floor plans ALFRED uses (kitchens 1-30, living
rooms 201-230, bedrooms 301-330, bathrooms 401-430):

- ``FloorPlan<n>-openable.json``: every static receptacle instance with the agent pose in front of it,
  ``{"Cabinet|+00.68|+00.50|-02.20": [x, z, rotation, horizon]}`` (sinks and bathtubs appear as their
  basins, ``Sink|...|SinkBasin``);
- ``FloorPlan<n>-objects.json``: the object and receptacle types present in the room;
- ``FloorPlan<n>-layout.npy``: the reachable floor points, ``(N, 2)`` in metres.

Receptacle types that a room lists as present but has no pose for (garbage cans, coffee machines,
toasters, stove burners, towel holders, ...) are placed at free floor points. Compatibility of objects
and receptacles, the openable classes, the pickupable objects and those that can be cleaned, heated or
cooled come from ``alfworld.gen.constants`` (ALFRED's own tables).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import alfworld.gen
import numpy as np
from alfworld.gen import constants

ROOM_TYPES = {
    "Kitchen": range(1, 31),
    "LivingRoom": range(201, 231),
    "Bedroom": range(301, 331),
    "Bathroom": range(401, 431),
}

#: ALFRED's validation-unseen floor plans (one per room type); agentgym's valid_unseen uses only these
#: and train/valid_seen never do.
UNSEEN_SCENES = (10, 219, 308, 424)

LAMPS = ("DeskLamp", "FloorLamp")
#: Where lamps stand. A lamp must be "in" a receptacle for ALFRED's ``ToggleObject`` to apply.
LAMP_HOSTS = {
    "DeskLamp": (
        "Desk",
        "SideTable",
        "Dresser",
        "Shelf",
        "CoffeeTable",
        "DiningTable",
        "TVStand",
        "CounterTop",
    ),
    "FloorLamp": ("SideTable", "ArmChair", "Sofa", "Dresser", "Desk", "Ottoman", "CoffeeTable", "TVStand"),
}
#: Instances of a receptacle type placed when the room lists the type without poses.
SYNTHETIC_RECEPTACLE_COUNTS = {"StoveBurner": 4}


@dataclass(frozen=True)
class Receptacle:
    id: str  # AI2-THOR object id, e.g. "Cabinet|+00.68|+00.50|-02.20"
    type: str  # e.g. "Cabinet", "SinkBasin"
    pose: tuple[float, float, int, int] | None  # agent pose in front of it; None: placed by the generator


@dataclass(frozen=True)
class Room:
    scene: int
    room_type: str
    receptacles: tuple[Receptacle, ...]
    object_types: frozenset[str]  # pickupable types present (lamps included)
    floor: tuple[tuple[float, float], ...]


@functools.cache
def thor_tables() -> dict:
    """ALFRED's object tables from ``alfworld.gen.constants``."""
    contains = {rtype: frozenset(objs) for rtype, objs in constants.VAL_RECEPTACLE_OBJECTS.items()}
    movable = frozenset(constants.MOVABLE_RECEPTACLES)
    sliced = {name for name in constants.OBJECTS_WSLICED if name.endswith("Sliced")}
    pickupable = frozenset().union(*contains.values()) - sliced
    actions = constants.VAL_ACTION_OBJECTS
    return {
        "contains": {rtype: objs - sliced for rtype, objs in contains.items() if rtype not in movable},
        "movable": movable,
        "pickupable": pickupable,
        "openable": frozenset(constants.OPENABLE_CLASS_LIST),
        "cleanable": frozenset(actions["Cleanable"]),
        "heatable": frozenset(actions["Heatable"]),
        "coolable": frozenset(actions["Coolable"]),
        "goals_valid": constants.GOALS_VALID,
    }


def layouts_dir() -> Path:
    return Path(alfworld.gen.__file__).parent / "layouts"


def room_type(scene: int) -> str:
    for name, numbers in ROOM_TYPES.items():
        if scene in numbers:
            return name
    raise ValueError(f"floor plan {scene} is not one of ALFRED's rooms (1-30, 201-230, 301-330, 401-430)")


def _receptacle(thor_id: str, pose: list[float]) -> Receptacle:
    parts = thor_id.split("|")
    if len(parts) == 5:  # a sink or bathtub: the receptacle is its basin
        base = parts[0]
        rtype = f"{base}Basin"
        thor_id = "|".join([*parts[:4], rtype])
    else:
        rtype = parts[0]
    x, z, rotation, horizon = pose
    return Receptacle(thor_id, rtype, (float(x), float(z), int(rotation), int(horizon)))


@functools.cache
def load_room(scene: int) -> Room:
    """Floor plan ``scene`` with its posed receptacles and the pickupable object types present."""
    folder = layouts_dir()
    posed = json.loads((folder / f"FloorPlan{scene}-openable.json").read_text())
    present = set(json.loads((folder / f"FloorPlan{scene}-objects.json").read_text()))
    floor = np.load(folder / f"FloorPlan{scene}-layout.npy")
    tables = thor_tables()
    receptacles = [_receptacle(thor_id, pose) for thor_id, pose in sorted(posed.items())]
    posed_types = {r.type for r in receptacles}
    for rtype in sorted(present & set(tables["contains"]) - posed_types):
        receptacles += [Receptacle("", rtype, None)] * SYNTHETIC_RECEPTACLE_COUNTS.get(rtype, 1)
    return Room(
        scene=scene,
        room_type=room_type(scene),
        receptacles=tuple(receptacles),
        object_types=frozenset(present & (tables["pickupable"] | set(LAMPS))),
        floor=tuple((float(x), float(z)) for x, z in floor),
    )


def all_scenes() -> tuple[int, ...]:
    return tuple(n for numbers in ROOM_TYPES.values() for n in numbers)
