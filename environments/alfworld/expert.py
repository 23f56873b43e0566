"""A scripted ALFWorld expert that reads the game state: the next command in under a millisecond.

ALFWorld's planner (Fast Downward on the game's PDDL) also solves the games, but its search takes
seconds to tens of seconds on a kitchen; this expert needs only the facts the engine already holds.
It reads the goal from the PDDL problem (:func:`parse_goal`, for generated and official games alike)
and, from any state, does the obvious thing:

1. holding something useless: put it in a receptacle that can take it (the one in front of the agent
   if it can, else the first by name);
2. holding a target object: treat it if the task says so (``clean/heat/cool X with`` the sink basin,
   microwave or fridge), then carry it to the goal receptacle, or to the lamp for
   ``look_at_obj_in_light`` and switch the lamp on;
3. hands empty: go to a target object not yet in place (one in front of the agent if there is one,
   else the first by name), open its receptacle if closed, take it.

Going somewhere is ``go to R``; a closed receptacle is opened before anything is taken from or put in
it. ``pick_two_obj_and_place`` puts both objects in the same receptacle (the goal asks for that).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The appliance (PDDL type) and command verb of each treatment.
TREATMENTS = {
    "isclean": ("sinkbasintype", "clean"),
    "ishot": ("microwavetype", "heat"),
    "iscool": ("fridgetype", "cool"),
}


@dataclass(frozen=True)
class Goal:
    """What a game's PDDL goal asks, in the engine's lower-case PDDL type names."""

    object_type: str  # e.g. "mugtype"
    receptacle_type: str | None  # e.g. "countertoptype"; None when a lamp is the goal
    lamp_type: str | None  # "desklamptype" or "floorlamptype" for look_at_obj_in_light
    treatment: str | None  # "isclean", "ishot" or "iscool"
    count: int  # objects to place (2 for pick_two_obj_and_place)


def parse_goal(pddl_problem: str) -> Goal:
    """The :class:`Goal` of a problem whose goal follows ALFRED's goal library (ALFWorld's six types)."""
    goal = pddl_problem[pddl_problem.lower().rindex("(:goal") :].lower()
    objects = re.findall(r"\(objecttype \?o\d? (\w+)\)", goal)
    receptacles = re.findall(r"\(receptacletype \?r (\w+)\)", goal)
    lamps = re.findall(r"\(objecttype \?ot (\w+)\)", goal)
    if not objects:
        raise ValueError("the PDDL goal names no object type; is this an ALFWorld game?")
    treatment = next((t for t in TREATMENTS if f"({t} ?o)" in goal), None)
    count = 2 if "?o2" in goal else 1
    return Goal(
        objects[0], receptacles[0] if receptacles else None, lamps[0] if lamps else None, treatment, count
    )


class _World:
    """The facts the expert needs, indexed."""

    def __init__(self, facts: Iterable[Any]):
        self.type: dict[str, str] = {}
        self.location: dict[str, str] = {}
        self.inside: dict[str, str] = {}
        self.opened: set[str] = set()
        self.openable: set[str] = set()
        self.held: list[str] = []
        self.states: dict[str, set[str]] = defaultdict(set)
        self.contains: dict[str, set[str]] = defaultdict(set)
        self.here = ""
        for fact in facts:
            args = [var.name for var in fact.arguments]
            name = fact.name
            if name in ("objecttype", "receptacletype"):
                self.type[args[0]] = args[1]
            elif name == "receptacleatlocation":
                self.location[args[0]] = args[1]
            elif name == "inreceptacle":
                self.inside[args[0]] = args[1]
            elif name == "opened":
                self.opened.add(args[0])
            elif name == "openable":
                self.openable.add(args[0])
            elif name == "holds":
                self.held.append(args[1])
            elif name == "atlocation":
                self.here = args[1]
            elif name == "cancontain":
                self.contains[args[0]].add(args[1])
            elif name in TREATMENTS:
                self.states[name].add(args[0])

    def of_type(self, kind: str, among: Iterable[str]) -> list[str]:
        return sorted(entity for entity in among if self.type.get(entity) == kind)


def next_command(goal: Goal, facts: Iterable[Any], names: Mapping[str, str]) -> str | None:
    """The expert's next command in the state ``facts`` (``names``: entity id -> displayed name).

    None when the goal cannot be pursued (no target object or receptacle is left to use).
    """
    world = _World(facts)
    receptacles = sorted(world.location)

    def reach(receptacle: str, command: str) -> str:
        if world.location[receptacle] != world.here:
            return f"go to {names[receptacle]}"
        if receptacle in world.openable and receptacle not in world.opened:
            return f"open {names[receptacle]}"
        return command

    def ready(obj: str) -> bool:
        return goal.treatment is None or obj in world.states[goal.treatment]

    destinations = world.of_type(goal.receptacle_type, receptacles) if goal.receptacle_type else []
    placed: dict[str, list[str]] = {r: [] for r in destinations}
    for obj in world.of_type(goal.object_type, world.inside):
        if world.inside[obj] in placed and ready(obj):
            placed[world.inside[obj]].append(obj)
    # pick_two needs both objects in one receptacle: fill the one that holds the most already.
    destination = max(destinations, key=lambda r: len(placed[r]), default=None)
    done = set(placed[destination]) if destination is not None else set()

    for obj in world.held:
        if world.type.get(obj) != goal.object_type:
            return _put_away(world, obj, receptacles, names, reach)
        if goal.treatment and not ready(obj):
            appliance_type, verb = TREATMENTS[goal.treatment]
            appliances = world.of_type(appliance_type, receptacles)
            if not appliances:
                return None
            appliance = appliances[0]
            if world.location[appliance] != world.here:
                return f"go to {names[appliance]}"
            return f"{verb} {names[obj]} with {names[appliance]}"
        if goal.lamp_type:
            lamps = world.of_type(goal.lamp_type, world.inside)
            if not lamps:
                return None
            host = world.inside[lamps[0]]
            if world.location[host] != world.here:
                return f"go to {names[host]}"
            return f"use {names[lamps[0]]}"
        if destination is None:
            return None
        return reach(destination, f"move {names[obj]} to {names[destination]}")

    candidates = [obj for obj in world.of_type(goal.object_type, world.inside) if obj not in done]
    if not candidates:
        return None
    obj = min(candidates, key=lambda o: (world.location.get(world.inside[o]) != world.here, names[o]))
    return reach(world.inside[obj], f"take {names[obj]} from {names[world.inside[obj]]}")


def _put_away(
    world: _World,
    obj: str,
    receptacles: list[str],
    names: Mapping[str, str],
    reach: Callable[[str, str], str],
) -> str | None:
    """Puts a useless held object into a receptacle that can hold it, the one in front if possible."""
    kind = world.type.get(obj)
    fitting = [r for r in receptacles if kind in world.contains.get(world.type.get(r, ""), ())]
    if not fitting:
        return None
    receptacle = min(fitting, key=lambda r: (world.location[r] != world.here, names[r]))
    return reach(receptacle, f"move {names[obj]} to {names[receptacle]}")
