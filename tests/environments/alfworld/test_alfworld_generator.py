import json
import re
from collections import Counter

import pytest

from agentgym.environments.alfworld.games import GeneratedGames
from agentgym.environments.alfworld.generator import (
    APPLIANCES,
    SPLITS,
    TASK_TYPES,
    game_bytes,
    generate_game,
    mangle,
    split_size,
    split_task_types,
    task_spec,
)
from agentgym.environments.alfworld.rooms import UNSEEN_SCENES, load_room, room_type, thor_tables

# The official ALFWorld split statistics (games per task type, in TASK_TYPES order).
OFFICIAL_COUNTS = {
    "train": {
        "pick_and_place_simple": 790,
        "look_at_obj_in_light": 308,
        "pick_clean_then_place_in_recep": 650,
        "pick_heat_then_place_in_recep": 459,
        "pick_cool_then_place_in_recep": 533,
        "pick_two_obj_and_place": 813,
    },
    "valid_seen": {
        "pick_and_place_simple": 35,
        "look_at_obj_in_light": 13,
        "pick_clean_then_place_in_recep": 27,
        "pick_heat_then_place_in_recep": 16,
        "pick_cool_then_place_in_recep": 25,
        "pick_two_obj_and_place": 24,
    },
    "valid_unseen": {
        "pick_and_place_simple": 24,
        "look_at_obj_in_light": 18,
        "pick_clean_then_place_in_recep": 31,
        "pick_heat_then_place_in_recep": 23,
        "pick_cool_then_place_in_recep": 21,
        "pick_two_obj_and_place": 17,
    },
}
ROOMS_OF = {
    "look_at_obj_in_light": {"LivingRoom", "Bedroom"},
    "pick_clean_then_place_in_recep": {"Kitchen", "Bathroom"},
    "pick_heat_then_place_in_recep": {"Kitchen"},
    "pick_cool_then_place_in_recep": {"Kitchen"},
}


def _facts(problem: str, predicate: str) -> list[tuple[str, ...]]:
    """The initial facts of ``predicate`` in a problem, as argument tuples."""
    init = problem.split("(:init", 1)[1].split("(:goal", 1)[0]
    return [tuple(m.split()) for m in re.findall(rf"\({predicate} ([^()]+)\)", init)]


@pytest.mark.parametrize("split", SPLITS)
def test_splits_have_the_official_sizes_and_task_type_counts(split):
    assert split_size(split) == sum(OFFICIAL_COUNTS[split].values())  # 3553, 140, 134
    assert Counter(split_task_types(split)) == OFFICIAL_COUNTS[split]
    # The schedule is shuffled: any prefix (e.g. --episodes 20) mixes the types.
    assert len(set(split_task_types(split)[:20])) >= 4


def test_generation_is_byte_identical_and_cached(tmp_path):
    first, second = GeneratedGames(tmp_path / "a"), GeneratedGames(tmp_path / "b")
    for split, index in [("train", 0), ("train", 3552), ("valid_seen", 17), ("valid_unseen", 133)]:
        path = first.path(split, index)
        content = path.read_bytes()
        assert content == second.path(split, index).read_bytes()
        assert content == game_bytes(generate_game(split, index)[1])
        written = path.stat().st_mtime_ns
        assert first.path(split, index) == path and path.stat().st_mtime_ns == written  # read, not rewritten
    assert sorted(p.name for p in (tmp_path / "a").rglob("*.tw-pddl")) == [
        "00000.tw-pddl",
        "00017.tw-pddl",
        "00133.tw-pddl",
        "03552.tw-pddl",
    ]


def test_games_are_ordinary_alfworld_game_files():
    spec, game = generate_game("valid_seen", 0)
    assert set(game) == {"pddl_domain", "grammar", "pddl_problem", "solvable"} and game["solvable"] is True
    assert game["pddl_domain"].startswith(";; Specification in PDDL of the Alfred domain")
    assert f'"rhs": "Your task is to: {spec.sentence}."' in game["grammar"]
    assert "UNKNOWN GOAL" not in game["grammar"]
    assert json.loads(game_bytes(game)) == game


def test_unseen_split_uses_only_held_out_rooms_and_the_others_never_do():
    scenes = {split: {task_spec(split, i)[0].scene for i in range(split_size(split))} for split in SPLITS}
    assert scenes["valid_unseen"] == set(UNSEEN_SCENES)
    assert not (scenes["train"] | scenes["valid_seen"]) & set(UNSEEN_SCENES)
    assert len(scenes["train"]) > 100  # nearly all of the 116 seen floor plans


def facts(problem: str, predicate: str) -> list[tuple[str, ...]]:
    initial = problem.split("(:init", 1)[1].split("(:goal", 1)[0]
    return [tuple(found.split()) for found in re.findall(rf"\({predicate} ([^()]+)\)", initial)]


def test_no_game_appears_in_two_splits_or_twice():
    # A game is its task, room, receptacles, placements and start, named by types and locations (its
    # object ids and coordinates carry per-game jitter that would tell even equal games apart).
    seen: dict[tuple, tuple[str, int]] = {}
    for split in SPLITS:
        for index in range(split_size(split)):
            spec, game = generate_game(split, index)
            problem = game["pddl_problem"]
            kind = dict(facts(problem, "receptacleType"))
            place = dict(facts(problem, "receptacleAtLocation"))
            objects = dict(facts(problem, "objectType"))
            key = (
                spec.task_type,
                spec.scene,
                spec.object_target,
                spec.parent_target,
                spec.toggle_target,
                facts(problem, "atLocation")[0][1],
                tuple(sorted((kind[r], place[r]) for r in kind)),
                tuple(sorted((objects[o], kind[r], place[r]) for o, r in facts(problem, "inReceptacle"))),
            )
            assert key not in seen, f"{split}/{index} repeats {seen[key]}"
            seen[key] = (split, index)


@pytest.mark.parametrize("split", ["valid_seen", "valid_unseen"])
def test_rooms_are_furnished_like_alfred_rooms(split):
    contains = thor_tables()["contains"]
    multi_instance_games = games_with_closed_receptacles = 0
    for index in range(split_size(split)):
        spec, game = generate_game(split, index)
        problem = game["pddl_problem"]
        rtype = dict(_facts(problem, "receptacleType"))
        otype = dict(_facts(problem, "objectType"))
        where = dict(_facts(problem, "inReceptacle"))
        at = dict(_facts(problem, "receptacleAtLocation"))
        assert room_type(spec.scene) in ROOMS_OF.get(
            spec.task_type, {"Kitchen", "LivingRoom", "Bedroom", "Bathroom"}
        )
        # Every receptacle has a location of its own, and the agent starts elsewhere.
        start = _facts(problem, "atLocation")[0][1]
        assert len(set(at.values())) == len(at) and start not in at.values()
        # Openable receptacles (drawers, cabinets, fridges, ...) start closed.
        assert not _facts(problem, "opened")
        games_with_closed_receptacles += bool(_facts(problem, "openable"))
        # Objects sit in receptacles that can hold them (lamps stand on furniture).
        for obj, receptacle in where.items():
            kind = otype[obj].removesuffix("Type")
            assert (
                kind in ("DeskLamp", "FloorLamp") or kind in contains[rtype[receptacle].removesuffix("Type")]
            )
        # Targets exist, never start where the goal would already hold, and distractors surround them.
        targets = [o for o, t in otype.items() if t == f"{spec.object_target}Type"]
        assert len(targets) >= (2 if spec.task_type == "pick_two_obj_and_place" else 1)
        never = {f"{t}Type" for t in (spec.parent_target, APPLIANCES.get(spec.task_type)) if t}
        assert all(rtype[where[o]] not in never for o in targets)
        assert len(otype) > len(targets) + 3
        multi_instance_games += any(count > 1 for count in Counter(otype.values()).values())
        # The room is the floor plan's: its posed receptacles appear under their AI2-THOR ids.
        posed = {mangle(r.id) for r in load_room(spec.scene).receptacles if r.pose is not None}
        assert posed <= set(rtype)
    assert multi_instance_games > split_size(split) // 2
    assert games_with_closed_receptacles > split_size(split) // 2


def test_the_task_sentence_names_the_goal():
    for split in SPLITS:
        for index in range(0, split_size(split), 97):
            spec, _ = task_spec(split, index)
            assert spec.object_target.lower() in spec.sentence
            assert (spec.parent_target or spec.toggle_target).lower() in spec.sentence
            assert spec.task_type in TASK_TYPES
            assert spec.name.startswith(f"{spec.task_type}-{spec.object_target}-None-")


def test_out_of_range_indices_and_unknown_splits_are_rejected():
    with pytest.raises(IndexError, match=r"0\.\.139"):
        generate_game("valid_seen", 140)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        generate_game("test", 0)
