"""The ``agentgym`` command: one Typer app; each verb lives in its own module of this package."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from agentgym.core import AgentGymError

app = typer.Typer(
    name="agentgym",
    help="Text environments for LLM agents and the RL trainers that learn from them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def import_user_modules(
    modules: list[str] = typer.Option(
        None,
        "--import",
        help="import MODULE first (repeatable), e.g. one that registers your environments",
        metavar="MODULE",
    ),
) -> None:
    """Text environments for LLM agents and the RL trainers that learn from them."""
    if not modules:
        return
    # A module next to the user's script is what they mean, as with ``python -m``.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise AgentGymError(f"--import {module}: {error}") from error


def run_cli(entry: Callable[[], Any]) -> None:
    """Runs ``entry``; user mistakes (AgentGymError) print one line and exit 2, Ctrl-C exits 130."""
    try:
        entry()
    except AgentGymError as error:
        err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
