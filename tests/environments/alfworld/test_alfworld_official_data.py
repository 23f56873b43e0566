import json
import shutil

import pytest

from agentgym.core import AgentGymError
from agentgym.environments.alfworld import ALFWorldEnv, export_games
from agentgym.environments.alfworld.games import OfficialGames

EXPORTED = {"train": [0, 1, 2], "valid_seen": [0, 1], "valid_unseen": [5]}


def _official_grammar(grammar: str) -> str:
    """The grammar of the downloadable games, which predates the package's: "put X in/on Y", "loc N"."""
    return (
        grammar.replace('template :: "move {o} to {r}"', 'template :: "put {o} in/on {r}"')
        .replace("You move the {o.name} to the {r.name}.", "You put the {o.name} in/on the {r.name}.")
        .replace("You arrive at {r.name}.", "You arrive at {lend.name}.")
    )


@pytest.fixture(scope="module")
def official_tree(tmp_path_factory):
    """A data folder laid out like ALFWorld's download, with the entries its loader skips."""
    root = tmp_path_factory.mktemp("alfworld-data")
    exported = {split: export_games(split, root, indices) for split, indices in EXPORTED.items()}
    # One game in the downloadable games' older grammar.
    path = exported["valid_seen"][1]
    game = json.loads(path.read_text())
    path.write_text(json.dumps(dict(game, grammar=_official_grammar(game["grammar"]))))
    template = exported["train"][0].parent
    splits = root / "json_2.1.1" / "train"
    for skipped in [
        "pick_and_place_with_movable_recep-Apple-Bowl-Fridge-1/trial_T1",  # not one of the six types
        "pick_heat_then_place_in_recep-AppleSliced-None-Fridge-1/trial_T1",  # sliced objects
        "pick_two_obj_and_place-Mug-None-Shelf-7/trial_T1",  # unsolvable, below
    ]:
        shutil.copytree(template, splits / skipped)
    unsolvable = splits / "pick_two_obj_and_place-Mug-None-Shelf-7/trial_T1/game.tw-pddl"
    unsolvable.write_text(json.dumps(dict(json.loads(unsolvable.read_text()), solvable=False)))
    (splits / "pick_and_place_simple-Pen-None-Desk-301/trial_T2").mkdir(parents=True)  # no game file
    return root, exported


def test_official_tree_loads_the_games_alfworld_would_play(official_tree, cache_dir):
    root, exported = official_tree
    env = ALFWorldEnv(data_dir=root)
    assert isinstance(env.games, OfficialGames)
    generated = ALFWorldEnv(cache_dir=cache_dir)
    for split, indices in EXPORTED.items():
        ids = env.task_ids(split)
        assert ids == list(range(len(indices)))
        paths = sorted(path.resolve() for path in exported[split])
        assert [env.games.path(split, i) for i in ids] == paths
        for task_id, path in zip(ids, paths, strict=True):
            index = int(path.parent.name.rsplit("_", 1)[1])  # trial_agentgym_<split>_<index>
            observation, info = env.reset(options={"split": split, "task_id": task_id})
            expected_observation, expected = generated.reset(options={"split": split, "task_id": index})
            assert observation == expected_observation
            assert info["task_type"] == expected["task_type"] == path.parent.parent.name.split("-")[0]
            assert info["task"] == expected["task"]


def test_the_expert_plays_games_in_the_older_official_grammar(official_tree):
    root, exported = official_tree
    env = ALFWorldEnv(data_dir=root / "json_2.1.1", split="valid_seen")  # the json_2.1.1 folder itself
    task_id = sorted(exported["valid_seen"]).index(exported["valid_seen"][1])  # ids follow the paths
    _, info = env.reset(options={"task_id": task_id})
    commands, observations = [], []
    for _ in range(30):
        command = env.expert_action()
        observation, reward, terminated, _, info = env.step(command)
        commands.append(command)
        observations.append(observation)
        if terminated:
            break
    assert info["won"] and reward == 1.0
    assert any(c.startswith("put ") and " in/on " in c for c in commands)
    assert any(o.startswith("You arrive at loc ") for o in observations)


def test_alfworld_data_variable_selects_official_games_only_when_they_are_there(
    official_tree, monkeypatch, tmp_path, cache_dir
):
    root, _ = official_tree
    monkeypatch.setenv("ALFWORLD_DATA", str(root))
    assert ALFWorldEnv().games.source == "official"
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))  # e.g. alfworld's default folder, never filled
    assert ALFWorldEnv(cache_dir=cache_dir).games.source == "generated"
    with pytest.raises(AgentGymError, match="no official games under"):
        ALFWorldEnv(data_dir=tmp_path)
