"""ALFWorld: household tasks in text on the real ALFWorld/TextWorld engine, with generated or official games.

``agentgym.make("alfworld", split="valid_seen")`` plays them (see :mod:`.env`); :mod:`.generator`
builds games deterministically from ALFRED's rooms, :mod:`.games` finds the official data or caches
the generated games, and :mod:`.engine` runs them.
"""

from agentgym.environments.alfworld.env import ALFWorldEnv, admissible_form
from agentgym.environments.alfworld.games import (
    GeneratedGames,
    OfficialGames,
    default_cache_dir,
    export_games,
)
from agentgym.environments.alfworld.generator import (
    SPLIT_TASK_COUNTS,
    SPLITS,
    TASK_TYPES,
    TaskSpec,
    generate_game,
)

__all__ = [
    "SPLITS",
    "SPLIT_TASK_COUNTS",
    "TASK_TYPES",
    "ALFWorldEnv",
    "GeneratedGames",
    "OfficialGames",
    "TaskSpec",
    "admissible_form",
    "default_cache_dir",
    "export_games",
    "generate_game",
]
