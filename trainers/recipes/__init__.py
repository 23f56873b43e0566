"""Default training settings per environment (``<env>.yaml``), tuned for each environment's
default model; ``agentgym train --env <env>`` starts from them."""

from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).parent


def recipe_path(env_id: str) -> Path | None:
    path = RECIPES / f"{env_id.replace('/', '_')}.yaml"
    return path if path.exists() else None
