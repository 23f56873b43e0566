"""ALFWorld (Shridhar et al., 2021) on the real ALFWorld/TextWorld engine.

Example::

    env = agentgym.make("alfworld", split="valid_seen", task_types=["pick_heat_then_place_in_recep"])
    obs, info = env.reset(seed=0, options={"task_id": 3})
    obs, reward, terminated, truncated, info = env.step(info["available_actions"][0])

Games are the official ones when ``data_dir=`` (or the ``ALFWORLD_DATA`` environment variable) points
at ALFWorld's ``json_2.1.1`` data, else agentgym's generated games (:mod:`.generator`): same splits
(``train`` 3,553, ``valid_seen`` 140, ``valid_unseen`` 134 games), same task types, same engine.

Observations are ALFWorld's own text ("-= Welcome to TextWorld, ALFRED! =-", the room, "Your task is
to: ..."). ``info`` carries ``task`` (the task sentence), ``task_id`` (the game's index in its split),
``split``, ``task_type`` (one of :data:`TASK_TYPES`), ``available_actions`` (the admissible commands),
``won`` and ``anchor``. The reward is 1 on the step that accomplishes the task, which ends the episode.

**Actions.** An admissible command, matched after trimming, lower-casing and collapsing spaces;
"put X in/on Y" and "move X to Y" (the two spellings ALFWorld's grammars have used) are accepted for
each other. Anything else is what ALFWorld answers with "Nothing happens.": the state is unchanged,
``action_valid`` is False and ``error`` says why.

**Anchor.** A canonical key of the game state: where the agent is (the receptacle it faces, or the
middle of the room), what it holds, and every dynamic fact that differs from the game's initial
state (receptacles opened, objects moved, cleaned, heated, cooled, lamps switched on). Equal states
reached by different paths share it; equal texts in different states (two "Nothing happens." or two
identical receptacle descriptions in different situations) do not.

**Expert.** :meth:`ALFWorldEnv.expert_action` is, by default, a scripted expert that reads the game
state (:mod:`.expert`: under a millisecond per command, from any state, generated and official games
alike). ``expert="planner"`` follows the plan of ALFWorld's planner instead (Fast Downward on the
game's PDDL; optimal plans, but seconds to tens of seconds of search on a kitchen), recomputed
whenever play leaves it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from gymnasium.error import ResetNeeded

from agentgym.core import TextEnv, task_index
from agentgym.environments.alfworld.engine import make_engine
from agentgym.environments.alfworld.expert import Goal, next_command, parse_goal
from agentgym.environments.alfworld.games import GeneratedGames, OfficialGames, find_official_root
from agentgym.environments.alfworld.generator import SPLITS, TASK_TYPES

INVALID_FEEDBACK = "Nothing happens."
#: Predicates whose truth changes during play (the rest of a game's facts are static).
DYNAMIC_FACTS = {
    "opened": "{0} is open",
    "inreceptacle": "{0} in {1}",
    "isclean": "{0} is clean",
    "ishot": "{0} is hot",
    "iscool": "{0} is cool",
    "ison": "{0} is on",
    "istoggled": "{0} was switched",
    "issliced": "{0} is sliced",
}
_PUT = re.compile(r"put (.+) in/on (.+)")
_MOVE = re.compile(r"move (.+) to (.+)")


def _normalize(action: str) -> str:
    return " ".join(action.split()).lower()


def admissible_form(command: str, admissible: Sequence[str]) -> str | None:
    """The admissible command ``command`` stands for, or None.

    Exact matches first; then the other spelling of placing an object ("put X in/on Y" or
    "move X to Y"); then, for "go to R", the admissible "go to" that lists R among the receptacles
    at one location (official games may place several receptacles at one location).
    """
    if command in admissible:
        return command
    if match := _PUT.fullmatch(command):
        alias = f"move {match[1]} to {match[2]}"
    elif match := _MOVE.fullmatch(command):
        alias = f"put {match[1]} in/on {match[2]}"
    else:
        alias = None
    if alias in admissible:
        return alias
    if command.startswith("go to "):
        target = command[len("go to ") :]
        for candidate in admissible:
            if candidate.startswith("go to ") and target in re.split(r", and |, | and ", candidate[6:]):
                return candidate
    return None


def _task_type_names(task_types: Iterable[str | int] | str | int | None) -> tuple[str, ...]:
    if task_types is None:
        return TASK_TYPES
    if isinstance(task_types, str | int):  # one type (a string is not a list of its letters)
        task_types = [task_types]
    names = []
    for task_type in task_types:
        if isinstance(task_type, int) and 1 <= task_type <= len(TASK_TYPES):
            names.append(TASK_TYPES[task_type - 1])  # ALFWorld's configs number the types 1-6
        elif task_type in TASK_TYPES:
            names.append(task_type)
        else:
            raise ValueError(
                f"unknown task type {task_type!r}; use names or ALFWorld's ids 1-6: {TASK_TYPES}"
            )
    return tuple(t for t in TASK_TYPES if t in names)


class ALFWorldEnv(TextEnv):
    """ALFWorld's text household tasks; see the module docstring for observations, info and anchors.

    Args:
        split: the default split of ``reset`` (``options["split"]`` overrides it).
        task_types: the task types to play (names, or ALFWorld's ids 1-6, or one of them); default all six.
            ``task_ids`` and random task draws keep only these.
        data_dir: ALFWorld's data folder (containing ``json_2.1.1``) or the ``json_2.1.1`` folder
            itself. Default: ``$ALFWORLD_DATA`` when it holds the official games, else generated games.
        cache_dir: where generated games are cached (default ``$AGENTGYM_CACHE_DIR/alfworld`` or
            ``~/.cache/agentgym/alfworld``).
        expert: ``"scripted"`` (default) or ``"planner"``: what :meth:`expert_action` follows.
        render_mode: ``"ansi"`` or None.
    """

    instructions: ClassVar[str] = (
        "You are in a household and must accomplish the task given in the first observation. "
        "Each turn, send one command, e.g. 'go to countertop 1', 'open fridge 1', "
        "'take apple 1 from countertop 1', 'move apple 1 to fridge 1', 'heat egg 1 with microwave 1', "
        "'cool mug 2 with fridge 1', 'clean plate 1 with sinkbasin 1', 'use desklamp 1', "
        "'examine cabinet 2', 'look' or 'inventory'. Only the admissible commands of the current state "
        "have an effect."
    )
    parallelism: ClassVar[str] = "process"
    splits: ClassVar[tuple[str, ...]] = SPLITS

    def __init__(
        self,
        split: str = "train",
        task_types: Iterable[str | int] | str | int | None = None,
        data_dir: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        expert: str = "scripted",
        render_mode: str | None = None,
    ):
        super().__init__(render_mode=render_mode)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; ALFWorld's splits are {', '.join(SPLITS)}")
        if expert not in ("scripted", "planner"):
            raise ValueError(f"expert must be 'scripted' or 'planner', got {expert!r}")
        self.default_split = split
        self.split = split  # the current episode's
        self.expert = expert
        self.task_types = _task_type_names(task_types)
        # `import alfworld` sets ALFWORLD_DATA to its default folder, so the variable alone says nothing.
        environ_data = os.environ.get("ALFWORLD_DATA")
        if data_dir is None and environ_data and find_official_root(environ_data) is not None:
            data_dir = environ_data
        self.games: GeneratedGames | OfficialGames = (
            OfficialGames(data_dir) if data_dir is not None else GeneratedGames(cache_dir)
        )
        self._engine: Any = None  # created on the first reset, in the process that steps it
        self._game: Any = None  # the engine's last game state
        self._loaded: Path | None = None
        self._initial_facts: frozenset[str] = frozenset()
        self._plan: list[str] | None = None
        self._goal: Goal | None = None
        self.task_id: int | None = None
        self.task_type: str | None = None
        self.task = ""

    # Tasks. ----------------------------------------------------------------------------------------

    def task_ids(self, split: str) -> list[int]:
        """The ids (game indices) of ``split`` whose task type is among ``task_types``."""
        return [i for i, t in enumerate(self.games.task_types(split)) if t in self.task_types]

    @property
    def game_path(self) -> Path | None:
        """The ``.tw-pddl`` file being played."""
        return self._loaded

    # Episodes. -------------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        # The constructor's split, not the last episode's: a seed then always draws from the same split.
        split = self.default_split if options.get("split") is None else options["split"]
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; ALFWorld's splits are {', '.join(SPLITS)}")
        task_types = self.games.task_types(split)
        if options.get("task_id") is not None:
            task_id = task_index(options["task_id"], len(task_types), f"split {split!r}")
        else:
            ids = self.task_ids(split)
            if not ids:
                raise ValueError(f"split {split!r} has no task of types {self.task_types}")
            task_id = ids[int(self.np_random.integers(len(ids)))]
        if self._engine is None:
            self._engine = make_engine()
        path = self.games.path(split, task_id)
        if path != self._loaded:
            self._engine.load(str(path))
            self._loaded = path
            self._goal = parse_goal(self._engine.unwrapped.game_data["pddl_problem"])
        self._game = self._engine.reset()
        self.split, self.task_id, self.task_type = split, task_id, task_types[task_id]
        self.task = self._game.feedback.rsplit("Your task is to: ", 1)[-1].strip()
        self._initial_facts = self._dynamic_facts()
        self._plan = None
        return self._observe(self._game.feedback), self._info(won=False)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._engine is None:
            raise ResetNeeded("alfworld: call reset() before step()")
        if self._game["won"]:
            error = "the task is done; call reset() for the next one"
            return (
                self._observe(INVALID_FEEDBACK),
                0.0,
                False,
                False,
                self._info(won=True, action_valid=False, error=error),
            )
        admissible = self._game["admissible_commands"]
        command = admissible_form(_normalize(action), admissible) if isinstance(action, str) else None
        if command is None:
            error = f"{str(action).strip()[:80]!r} is not an admissible command here (see info['available_actions'])"
            info = self._info(won=bool(self._game["won"]), action_valid=False, error=error)
            return self._observe(INVALID_FEEDBACK), 0.0, False, False, info
        self._game, _, _ = self._engine.step(command)
        if self._plan and admissible_form(self._plan[0], admissible) == command:
            self._plan.pop(0)
        else:
            self._plan = None
        won = bool(self._game["won"])
        return (
            self._observe(self._game.feedback),
            float(won),
            won,
            False,
            self._info(won=won, action_valid=True),
        )

    def expert_action(self) -> str:
        """The expert's next command (``expert=`` chooses it); "look" when it has none."""
        if self._engine is None:
            raise ResetNeeded("alfworld: call reset() before expert_action()")
        admissible = self._game["admissible_commands"]
        if self.expert == "planner":
            if not self._plan:
                self._plan = self._engine.unwrapped.replan()
            command = self._plan[0] if self._plan else None
        else:
            names = {entity: info.name for entity, info in self._game["_entity_infos"].items()}
            command = next_command(self._goal, self._game["_facts"], names)
        if command is None:
            return "look"
        return admissible_form(command, admissible) or command

    def close(self) -> None:
        self._engine = None
        self._loaded = None

    # State. ----------------------------------------------------------------------------------------

    def _info(self, **extra: Any) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_id": self.task_id,
            "split": self.split,
            "task_type": self.task_type,
            "anchor": self._anchor(),
            # After the win no command is accepted (see step), so none is offered.
            "available_actions": [] if self._game["won"] else list(self._game["admissible_commands"]),
            **extra,
        }

    def _names(self, fact: Any) -> list[str]:
        infos = self._game["_entity_infos"]
        return [infos[var.name].name for var in fact.arguments]

    def _dynamic_facts(self) -> frozenset[str]:
        return frozenset(
            DYNAMIC_FACTS[fact.name].format(*self._names(fact))
            for fact in self._game["_facts"]
            if fact.name in DYNAMIC_FACTS
        )

    def _anchor(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """``(place, held objects, facts changed since the start)``; see the module docstring."""
        location = None
        receptacles_at: dict[str, list[str]] = {}
        held = []
        for fact in self._game["_facts"]:
            if fact.name == "atlocation":
                location = fact.arguments[1].name
            elif fact.name == "receptacleatlocation":
                receptacles_at.setdefault(fact.arguments[1].name, []).append(self._names(fact)[0])
            elif fact.name == "holds":
                held.append(self._names(fact)[1])
        place = ", ".join(sorted(receptacles_at.get(location, []))) or "middle of the room"
        facts = self._dynamic_facts()
        changed = [f"+{fact}" for fact in facts - self._initial_facts]
        changed += [f"-{fact}" for fact in self._initial_facts - facts]
        return place, tuple(sorted(held)), tuple(sorted(changed))
