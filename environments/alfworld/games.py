"""Where ALFWorld games come from: the official data when present, else games generated on demand.

Both sources answer the same three questions per split: how many games, the task type of each, and
the path of game ``index`` (a ``.tw-pddl`` file).

- :class:`OfficialGames` reads ALFWorld's ``json_2.1.1`` tree (``alfworld-download``)::

      json_2.1.1/<split>/<task_type>-<Object>-<MovableRecep>-<Receptacle>-<scene>/<trial>/game.tw-pddl

  and keeps the games ALFWorld's own ``AlfredTWEnv`` keeps: the six task types, no "movable" or
  "Sliced" tasks, ``"solvable": true`` (3,553 train, 140 valid_seen, 134 valid_unseen games).
  Games are ordered by path; game ``i`` of a split has task id ``i``.
- :class:`GeneratedGames` writes game ``index`` into ``<cache_dir>/generated-v<version>/<split>/``
  the first time it is asked for (atomically, so concurrent workers are safe) and reads it from there
  afterwards; nothing is generated up front.

:func:`export_games` writes generated games in the official layout, so that ALFWorld's own tools (and
:class:`OfficialGames`) can play them.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from agentgym.core import AgentGymError
from agentgym.environments.alfworld.generator import (
    GENERATOR_VERSION,
    SPLITS,
    TASK_TYPES,
    game_bytes,
    generate_game,
    split_task_types,
)

OFFICIAL_DIR = "json_2.1.1"
GAME_FILE = "game.tw-pddl"


def default_cache_dir() -> Path:
    """``$AGENTGYM_CACHE_DIR/alfworld``, else ``~/.cache/agentgym/alfworld``."""
    root = os.environ.get("AGENTGYM_CACHE_DIR") or os.path.join("~", ".cache", "agentgym")
    return Path(root).expanduser() / "alfworld"


def find_official_root(path: str | os.PathLike) -> Path | None:
    """The ``json_2.1.1`` folder at or inside ``path`` that holds at least one split, else None."""
    base = Path(path).expanduser()
    for candidate in (base / OFFICIAL_DIR, base):
        if any((candidate / split).is_dir() for split in SPLITS):
            return candidate
    return None


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class GeneratedGames:
    """agentgym's generated games, cached under ``cache_dir`` (see the module docstring)."""

    source = "generated"

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.root = self.cache_dir / f"generated-v{GENERATOR_VERSION}"

    def task_types(self, split: str) -> tuple[str, ...]:
        return split_task_types(split)

    def path(self, split: str, index: int) -> Path:
        path = self.root / split / f"{index:05d}.tw-pddl"
        if not path.exists():
            _, game = generate_game(split, index)
            try:
                _write_atomically(path, game_bytes(game))
            except OSError as error:
                raise AgentGymError(
                    f"alfworld: cannot cache generated games in {self.root} ({error}); "
                    "pass cache_dir= or set AGENTGYM_CACHE_DIR to a writable folder"
                ) from None
        return path


def _solvable(path: Path) -> bool:
    # The "solvable" flag closes the file; reading its tail avoids parsing ~70 kB per game.
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - 64))
        tail = file.read()
    if b'"solvable": true' in tail:
        return True
    if b'"solvable": false' in tail:
        return False
    return bool(json.loads(path.read_text()).get("solvable", False))


@functools.lru_cache(maxsize=16)
def _official_split(root: Path, split: str) -> tuple[tuple[Path, str], ...]:
    """``(game path, task type)`` of the playable games of a split, by path (scanned once per process)."""
    games = []
    for path in sorted((root / split).glob(f"*/*/{GAME_FILE}")):
        task_dir = path.parent.parent.name
        task_type = task_dir.split("-", 1)[0]
        if task_type not in TASK_TYPES or "movable" in task_dir or "Sliced" in task_dir:
            continue
        if _solvable(path):
            games.append((path, task_type))
    return tuple(games)


class OfficialGames:
    """The official ALFWorld games under a ``json_2.1.1`` folder (see the module docstring)."""

    source = "official"

    def __init__(self, root: str | os.PathLike):
        found = find_official_root(root)
        if found is None:
            raise AgentGymError(
                f"alfworld: no official games under {root}: expected {OFFICIAL_DIR}/<split>/... with splits "
                f"{', '.join(SPLITS)} (run `alfworld-download`, or leave data_dir unset for generated games)"
            )
        self.root = found.resolve()

    def _split(self, split: str) -> tuple[tuple[Path, str], ...]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; ALFWorld's splits are {', '.join(SPLITS)}")
        return _official_split(self.root, split)

    def task_types(self, split: str) -> tuple[str, ...]:
        return tuple(task_type for _, task_type in self._split(split))

    def path(self, split: str, index: int) -> Path:
        games = self._split(split)
        if not 0 <= index < len(games):
            raise IndexError(f"split {split!r} has games 0..{len(games) - 1}, not {index}")
        return games[index][0]


def export_games(split: str, out_dir: str | os.PathLike, indices: Iterable[int]) -> list[Path]:
    """Writes generated games of ``split`` in the official layout under ``out_dir/json_2.1.1``.

    Each game gets ``game.tw-pddl`` and a ``traj_data.json`` with the fields ALFWorld reads
    (``task_type``, ``pddl_params``, the floor plan and the task sentence). Returns the game paths.
    """
    paths = []
    for index in indices:
        spec, game = generate_game(split, index)
        trial = (
            Path(out_dir).expanduser()
            / OFFICIAL_DIR
            / split
            / spec.name
            / f"trial_agentgym_{split}_{index:05d}"
        )
        traj_data = {
            "task_type": spec.task_type,
            "pddl_params": {
                "object_target": spec.object_target,
                "parent_target": spec.parent_target or "",
                "toggle_target": spec.toggle_target or "",
                "mrecep_target": "",
                "object_sliced": False,
            },
            "scene": {"floor_plan": f"FloorPlan{spec.scene}"},
            "turk_annotations": {"anns": [{"task_desc": spec.sentence}]},
        }
        _write_atomically(trial / GAME_FILE, game_bytes(game))
        _write_atomically(trial / "traj_data.json", json.dumps(traj_data, indent=2).encode())
        paths.append(trial / GAME_FILE)
    return paths
