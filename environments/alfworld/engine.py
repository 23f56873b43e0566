"""ALFWorld's text engine: TextWorld's PDDL environment with ALFWorld's wrappers, minus repeated work.

:func:`make_engine` stacks what ALFWorld's own ``AlfredTWEnv`` plays games with:
``AlfredInfos(AlfredDemangler(PddlEnv))``, where ``PddlEnv`` is TextWorld's PDDL engine (Fast Downward
for the logic, a context-sensitive grammar for the text). :class:`CachingPddlEnv` produces the same
observations, admissible commands and rewards, and removes costs that do not depend on play:

- **Translation.** ``PddlEnv`` translates the PDDL problem to SAS twice per ``load`` and twice per
  ``reset`` (the second, optimized translation serves replanning). Here a game is translated once per
  process (a small LRU keyed by the game's text; group rollouts of one task share it), ``reset`` only
  reloads the SAS into the planner library and copies the initial facts, and the replanning
  translation is made the first time the planner is asked for a plan.
- **Command texts.** ``PddlEnv`` derives the text of every applicable action through the grammar at
  every step (a TatSu parse per action). ALFWorld's command templates only read the arguments they
  name and static facts (the receptacles at a location), so a text is derived once per game and per
  value of those arguments (``go to`` texts do not depend on where the agent stands).
- **Grammar.** Games differ only in their task sentence; the grammar is parsed once per process and
  each game gets a copy with its own ``task`` rule.
- **Global state.** Fast Downward's translator overwrites ``sys.argv``; it is restored afterwards.

The planner library is never unloaded (``fast_downward.close_lib``): its copies share a plugin registry
that is destroyed at process exit, and unloading one copy makes that exit crash.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import sys
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import fast_downward
import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
from fast_downward.translate import pddl as fd_pddl
from textworld.core import GameState
from textworld.envs.pddl import PddlEnv
from textworld.envs.pddl.logic import Atom, GameLogic, PddlState
from textworld.envs.pddl.textgen import ContextSensitiveGrammar
from textworld.logic import Proposition, Variable

#: Translated games kept per process (5-10 MB each for a kitchen): a few rollout batches' worth.
COMPILED_GAMES = 16

_compiled: OrderedDict[str, tuple[GameLogic, _State]] = OrderedDict()
_compiled_lock = threading.Lock()


class _State(PddlState):
    """A ``PddlState`` whose replanning task is translated on the first :meth:`replan`, not up front.

    Construction does what ``PddlState.__init__`` does (translate the problem, load it into the planner
    library, read the initial facts) except the second, optimized translation that only replanning uses.
    Copies made by :func:`_fresh_state` share ``_replanning`` (the translation, once made).
    """

    def __init__(self, downward_lib: Any, pddl_problem: str, logic: GameLogic):
        # textworld.logic.State.__init__ only accepts its own GameLogic class; set what it sets.
        self._logic = logic
        self._facts = defaultdict(set)
        self._vars_by_name = {}
        self._vars_by_type = defaultdict(set)
        self._var_counts = Counter()
        self.downward_lib = downward_lib
        self.pddl_problem = pddl_problem
        self.task, self.sas = _translate(logic.domain, pddl_problem)
        self._replanning: dict[str, str] = {}
        self._replan_loaded = False
        self._actions = {action.name: action for action in self.task.actions}
        for fd_type in self.task.types:
            with contextlib.suppress(ValueError):  # already known
                logic.types.add(textworld.logic.Type(fd_type.name, fd_type.supertype_names))
        downward_lib.load_sas(self.sas.encode("utf-8"))
        self.name2type = {o.name: o.type_name for o in self.task.objects}
        self.add_facts(self._initial_facts())
        atoms = (Atom * downward_lib.get_state_size())()
        downward_lib.get_state(atoms)
        self.add_facts(
            fact for fact in (atom.get_fact(self.name2type) for atom in atoms) if not fact.is_negation
        )

    def _initial_facts(self) -> Iterable[Proposition]:
        """The problem's ``:init`` as propositions, without equalities, costs and distances."""
        for atom in self.task.init:
            if isinstance(atom, fd_pddl.conditions.Atom):
                if atom.predicate != "=":
                    yield Proposition(atom.predicate, [Variable(a, self.name2type[a]) for a in atom.args])
            elif isinstance(atom, fd_pddl.f_expression.Assign):
                value = str(atom.expression.value)
                if atom.fluent.symbol != "total-cost" and not value.isdigit():
                    yield Proposition(value, [Variable(a, self.name2type[a]) for a in atom.fluent.args])

    def replan(self, infos: Mapping[str, Any]) -> list[str]:
        if not self._replan_loaded:
            if "sas" not in self._replanning:
                _, self._replanning["sas"] = _translate(self._logic.domain, self.pddl_problem, optimize=True)
            self.downward_lib.load_sas_replan(self._replanning["sas"].encode("utf-8"))
            self._replan_loaded = True
        return super().replan(infos)


def _translate(domain: str, problem: str, optimize: bool = False) -> tuple[Any, str]:
    argv = sys.argv
    try:
        return fast_downward.pddl2sas(domain, problem, optimize=optimize)
    finally:
        sys.argv = argv  # the translator overwrites it


# The task sentence is the only part of a game's grammar that changes from game to game.
_TASK_RULE = re.compile(r'("task"\s*:\s*\[\s*\{\s*"rhs"\s*:\s*")((?:[^"\\]|\\.)*)(")')
_logics: OrderedDict[tuple[str, str], GameLogic] = OrderedDict()


def _game_logic(domain: str, grammar: str) -> GameLogic:
    """``GameLogic(domain, grammar)``, parsing the grammar once per process up to its task sentence."""
    match = _TASK_RULE.search(grammar)
    if match is None:
        return GameLogic(domain=domain, grammar=grammar)
    key = (domain, grammar[: match.start(2)] + grammar[match.end(2) :])
    with _compiled_lock:
        base = _logics.get(key)
    if base is None:
        base = GameLogic(domain=domain, grammar=grammar)
        with _compiled_lock:
            _logics[key] = base
            while len(_logics) > 4:
                _logics.popitem(last=False)
    task = ContextSensitiveGrammar.parse(json.dumps({"task": [{"rhs": json.loads(f'"{match[2]}"')}]}))
    logic = copy.copy(base)
    logic.grammar = copy.copy(base.grammar)
    logic.grammar._rules = defaultdict(list, base.grammar._rules)
    logic.grammar._rules["task"] = task._rules["task"]
    return logic


def _compile(game: Mapping[str, Any], downward_lib: Any) -> tuple[GameLogic, _State]:
    """The game's grammar and its translated initial state, from the per-process cache if there."""
    key = hashlib.sha1(
        "\0".join((game["pddl_domain"], game["grammar"], game["pddl_problem"])).encode()
    ).hexdigest()
    with _compiled_lock:
        if key in _compiled:
            _compiled.move_to_end(key)
            return _compiled[key]
    logic = _game_logic(game["pddl_domain"], game["grammar"])
    initial = _State(downward_lib, game["pddl_problem"], logic)
    with _compiled_lock:
        _compiled[key] = (logic, initial)
        while len(_compiled) > COMPILED_GAMES:
            _compiled.popitem(last=False)
    return logic, initial


def _fresh_state(initial: _State, downward_lib: Any) -> _State:
    """A new game state equal to ``initial``, loaded into ``downward_lib`` (what a new PddlState does)."""
    state = copy.copy(initial)  # shares the translations, the logic and the static tables
    state._facts = defaultdict(set, {signature: set(facts) for signature, facts in initial._facts.items()})
    state._vars_by_name = dict(initial._vars_by_name)
    state._vars_by_type = defaultdict(set, {name: set(v) for name, v in initial._vars_by_type.items()})
    state._var_counts = copy.copy(initial._var_counts)
    state.downward_lib = downward_lib
    state._replan_loaded = False
    downward_lib.load_sas(state.sas.encode("utf-8"))
    return state


class CachingPddlEnv(PddlEnv):
    """``textworld.envs.pddl.PddlEnv`` with cached translations and command texts (see the module doc)."""

    def load(self, filename_or_data: str | Mapping[str, Any]) -> None:
        if isinstance(filename_or_data, Mapping):
            data, self._game_file = filename_or_data, None
        else:
            with open(filename_or_data) as file:
                data = json.load(file)
            self._game_file = filename_or_data
        self._game_data = data
        self.walkthrough = data.get("walkthrough")
        self._logic, self._initial_state = _compile(data, self.downward_lib)
        self._pddl_state = _fresh_state(self._initial_state, self.downward_lib)
        self._entity_infos = self._get_entity_infos()
        self._command_texts: dict[str, str] = {}
        self._template_parameters: dict[str, frozenset[str]] = {}

    def reset(self) -> GameState:
        self._pddl_state = _fresh_state(self._initial_state, self.downward_lib)
        self.prev_state = None
        self.state = GameState()
        self._last_action = None
        self._moves = 0
        context = {
            "state": self._pddl_state,
            "facts": list(self._pddl_state.facts),
            "variables": {},
            "mapping": {},
            "entity_infos": self._entity_infos,
        }
        self.state.feedback = self._logic.grammar.derive("#intro#", context)
        self.state.raw = self.state.feedback
        self._gather_infos()
        return self.state

    def _gather_infos(self) -> None:
        state = self._pddl_state
        self.state["command_templates"] = sorted({action.template for action in self._logic.actions.values()})
        self.state["won"] = state.check_goal()
        self.state["lost"] = False
        self.state["_entity_infos"] = dict(self._entity_infos)
        self.state["_facts"] = list(state.facts)
        if self.request_infos.facts:
            self.state["facts"] = [self._get_human_readable_fact(fact) for fact in self.state["_facts"]]
        self.state["last_action"] = None
        self.state["_last_action"] = self._last_action
        actions = list(state.all_applicable_actions())
        commands = []
        for action in actions:
            names = self._template_names(action)
            key = " ".join(
                (action.name, *(var.name for ph, var in action.mapping.items() if ph.name in names))
            )
            text = self._command_texts.get(key)
            if text is None:
                text = self._derive_command(action)
                self._command_texts[key] = text
            commands.append(text)
        self.state["_valid_actions"] = actions
        self.state["_valid_commands"] = commands
        self.state["admissible_commands"] = sorted(set(commands))
        if self.request_infos.moves:
            self.state["moves"] = self._moves
        if self.request_infos.policy_commands:
            self.state["policy_commands"] = state.replan(self._entity_infos)

    def _template_names(self, action: textworld.logic.Action) -> frozenset[str]:
        """The parameters an action's command template mentions (its text depends on nothing else)."""
        names = self._template_parameters.get(action.name)
        if names is None:
            mentioned = set(re.findall(r"[A-Za-z_]\w*", action.command_template))
            names = frozenset(ph.name for ph in action.mapping if ph.name in mentioned)
            self._template_parameters[action.name] = names
        return names

    def _derive_command(self, action: textworld.logic.Action) -> str:
        """What ``PddlEnv._gather_infos`` does for one action: derive its template, then fill in names."""
        context = {
            "state": self._pddl_state,
            "facts": list(self._pddl_state.facts),
            "variables": {ph.name: self._entity_infos[var.name] for ph, var in action.mapping.items()},
            "mapping": action.mapping,
            "entity_infos": self._entity_infos,
        }
        action.command_template = self._logic.grammar.derive(action.command_template, context)
        return action.format_command({k: info.name for k, info in self._entity_infos.items()})

    @property
    def game_data(self) -> Mapping[str, Any]:
        """The loaded game's JSON object (``pddl_domain``, ``grammar``, ``pddl_problem``, ...)."""
        return self._game_data

    def replan(self) -> list[str]:
        """The planner's commands from the current state to the goal (empty when it finds none)."""
        return self._pddl_state.replan(self._entity_infos)


def make_engine() -> Any:
    """``AlfredInfos(AlfredDemangler(CachingPddlEnv))``, asking for admissible commands and ``won``."""
    infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
    return AlfredInfos(AlfredDemangler(CachingPddlEnv(infos)))
