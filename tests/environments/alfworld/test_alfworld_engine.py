import random
import sys

import pytest
import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
from textworld.envs.pddl import PddlEnv

from agentgym.environments.alfworld.engine import make_engine
from agentgym.environments.alfworld.games import GeneratedGames


def _stock_engine():
    """ALFWorld's own stack: AlfredInfos(AlfredDemangler(PddlEnv)), as AlfredTWEnv builds it."""
    infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
    return AlfredInfos(AlfredDemangler(PddlEnv(infos)))


def _view(state, reward, done):
    return state.feedback, state["admissible_commands"], reward, done, state["won"]


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    return GeneratedGames(tmp_path_factory.mktemp("engine-games"))


# valid_seen 0: a living room, 10: a bedroom (the planner is quick there); 3: a kitchen (TextWorld's own
# class takes about 0.1 s per step there, hence the shorter walk).
@pytest.mark.parametrize(("index", "replans", "steps"), [(0, True, 25), (10, True, 25), (3, False, 12)])
def test_caching_engine_plays_exactly_like_textworlds_pddl_env(games, index, replans, steps):
    path = str(games.path("valid_seen", index))
    stock, fast = _stock_engine(), make_engine()
    stock.load(path)
    fast.load(path)
    rng = random.Random(index)
    for _episode in range(2):  # the second episode starts from the reset copy of the initial state
        expected, actual = stock.reset(), fast.reset()
        assert _view(expected, 0, False) == _view(actual, 0, False)
        for _ in range(steps):
            if replans and rng.random() < 0.2:
                stock_env = stock.unwrapped
                assert fast.unwrapped.replan() == stock_env._pddl_state.replan(stock_env._entity_infos)
            command = rng.choice(expected["admissible_commands"]) if rng.random() < 0.9 else "dance"
            assert _view(*stock.step(command)) == _view(*fast.step(command)), command
            expected = stock.state


def test_engines_sharing_a_translated_game_keep_their_own_state(games):
    path = str(games.path("valid_seen", 0))
    first, second = make_engine(), make_engine()
    first.load(path)
    second.load(path)  # from the per-process cache: same translation, separate planner libraries
    second.reset()
    before = _view(*second.step("look"))
    state = first.reset()
    rng = random.Random(0)
    for _ in range(8):
        state, _, _ = first.step(rng.choice(state["admissible_commands"]))
    assert _view(*second.step("look")) == before


def test_translation_leaves_sys_argv_alone(games):
    argv = list(sys.argv)
    engine = make_engine()
    engine.load(str(games.path("valid_seen", 1)))
    engine.reset()
    engine.unwrapped.replan()
    assert sys.argv == argv
