"""``agentgym envs``: the registered environments."""

from __future__ import annotations

import inspect

from rich.table import Table
from rich.text import Text

from agentgym.cli.app import app, console
from agentgym.plugins import load_object
from agentgym.registry import list_envs, spec


def _summary(entry_point: object) -> Text:
    # Text, not markup: "click[buy now]" in a docstring or "pip install 'x[gpu]'" in an error is literal.
    try:
        target = load_object(entry_point) if isinstance(entry_point, str) else entry_point
    except Exception as error:  # show the environment even if its optional dependencies are missing
        return Text(f"unavailable: {type(error).__name__}: {error}", style="red")
    doc = inspect.getdoc(target) or ""
    return Text(doc.strip().splitlines()[0] if doc.strip() else "")


@app.command("envs")
def envs_command() -> None:
    """List the registered environments."""
    table = Table(title="agentgym environments")
    table.add_column("id", style="bold cyan")
    table.add_column("max steps", justify="right")
    table.add_column("description")
    for env_id in list_envs():
        env_spec = spec(env_id)
        table.add_row(env_id, str(env_spec.max_episode_steps or ""), _summary(env_spec.entry_point))
    console.print(table)
