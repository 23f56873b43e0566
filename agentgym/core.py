"""The text-environment contract every agentgym environment follows.

A text environment is a :class:`gymnasium.Env` whose observations and actions are strings::

    obs, info = env.reset(seed=0, options={"task_id": 3, "split": "test"})
    obs, reward, terminated, truncated, info = env.step("click[Buy Now]")

``info`` keys (set by every environment where they apply):

=====================  ==========================================================================
``task``               the instruction text of the episode
``task_id``            the task's stable id inside its split (``int`` or ``str``)
``split``              the split the task comes from (``"train"``, ``"test"``, ...)
``anchor``             a hashable key of the current *environment state* without history or
                       prompt; GiGPO, HGPO and SALT group steps on it. Defaults to the observation
                       text; environments with a real state give a canonical key so that equal
                       texts in different states do not alias
``available_actions``  the valid commands, when the environment can enumerate them
``action_valid``       ``False`` when the action could not be parsed or executed: the state is
                       unchanged and the step still costs a turn. Set by ``step``
``error``              why the action was invalid (with ``action_valid=False``)
``won``                at episode end: whether the task was accomplished
``score``              at episode end, where the benchmark defines one: a float in ``[0, 1]``
``gold``               reference answers, for QA-style environments
``task_type``          a category of the task for per-type metrics (e.g. ALFWorld task types)
=====================  ==========================================================================

``info`` must be deterministic (no timings, no object ids): the seeded-determinism checks compare it.

Episodes are deterministic: the same seed and task give the same episode, so the members of a
GRPO group reset with one seed share their initial state.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

TaskId = int | str

INFO_KEYS = (
    "task",
    "task_id",
    "split",
    "anchor",
    "available_actions",
    "action_valid",
    "error",
    "won",
    "score",
    "gold",
    "task_type",
)


@functools.cache
def text_charset() -> str:
    """Every printable character of the Basic Multilingual Plane, plus newline and tab.

    Gymnasium's ``Text`` space defaults to alphanumerics, which would reject spaces, punctuation
    and the "›" of WebShop's category paths; the whole plane keeps real-data observations valid.
    """
    chars = ["\n", "\t"]
    for code in range(0x20, 0x10000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF or not (char.isprintable() or char == " "):
            continue
        chars.append(char)
    return "".join(chars)


@functools.cache
def _text_space_template(max_length: int) -> spaces.Text:
    return spaces.Text(max_length, min_length=0, charset=text_charset())


def text_space(max_length: int = 100_000) -> spaces.Text:
    """A ``Text`` space over :func:`text_charset` that also admits the empty string."""
    # Building the space indexes ~55k characters (tens of ms), so environments share one template;
    # each gets a shallow copy because a space carries its own sampling RNG.
    space = copy.copy(_text_space_template(max_length))
    space._np_random = None
    return space


class TextEnv(gymnasium.Env[str, str]):
    """Base class for agentgym's text environments; see the module docstring for the contract.

    Subclasses implement ``reset`` (calling ``super().reset(seed=seed)`` first) and ``step``, and
    usually :meth:`task_ids` and :meth:`expert_action`. Class attributes describe the environment
    to agents and to the rollout engine, which reads them from an instance (the ``remote``
    environment sets them from its server):

    - ``instructions``: how to act, for an agent's system prompt (the action grammar).
    - ``tools``: JSON-schema tool specs (OpenAI function format) for tool-calling environments.
    - ``parallelism``: ``"thread"`` for I/O-bound or light environments, ``"process"`` for
      CPU-bound ones; the rollout engine steps many instances in parallel accordingly.
    - ``splits``: the task splits the environment knows.
    - ``action_format``: how agents write actions for it: ``"tags"`` (``<action>...</action>``),
      ``"raw"`` (the whole completion, for environments that parse their own protocol) or
      ``"tool_call"``.
    """

    # Text has no frame rate; gymnasium's checker still asks for one, and one frame per step is honest.
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}
    instructions: ClassVar[str] = ""
    tools: ClassVar[list[dict[str, Any]] | None] = None
    parallelism: ClassVar[str] = "thread"
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    action_format: ClassVar[str] = "tags"

    def __init__(self, render_mode: str | None = None, max_text_length: int = 100_000):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.observation_space = text_space(max_text_length)
        self.action_space = text_space(max_text_length)
        self._last_observation = ""

    def task_ids(self, split: str) -> Sequence[TaskId]:
        """The task ids of ``split`` in their fixed order."""
        raise NotImplementedError(f"{type(self).__name__} does not enumerate its tasks")

    def expert_action(self) -> str:
        """The scripted expert's next action in the current state (for demos, SFT data, tests)."""
        raise NotImplementedError(f"{type(self).__name__} has no scripted expert")

    def render(self) -> str:
        """The text a person sees: by default the last observation."""
        return self._last_observation

    def _observe(self, observation: str) -> str:
        """Remembers ``observation`` for :meth:`render` and returns it."""
        self._last_observation = observation
        return observation


def task_index(value: Any, count: int, where: str) -> int:
    """``options["task_id"]`` as an index below ``count``, or a ValueError saying what ``where``
    (a split, say) holds: an integer or a string of digits, never a bool, a fraction or a list."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < count:
        raise ValueError(f"task_id {value!r} is not in {where}: ids are 0..{count - 1}")
    return int(value)


def is_hashable(value: Any) -> bool:
    if not isinstance(value, Hashable):
        return False
    try:
        hash(value)
    except TypeError:
        return False
    return True


class AgentGymError(Exception):
    """A user-facing error: the CLI prints its message on one line, without a traceback."""
