"""``agentgym check-env``: conformance, fuzz and determinism checks of an environment."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from agentgym.checker import check_env
from agentgym.cli.app import app, console
from agentgym.config import parse_overrides
from agentgym.registry import spec


@app.command("check-env")
def check_env_command(
    env: str = typer.Argument(..., help="environment id, e.g. webshop"),
    options: list[str] = typer.Argument(None, help="environment options as key=value"),
    # gymnasium refuses a negative seed at reset: every check would fail, blaming the environment.
    seed: int = typer.Option(0, min=0, help="seed for resets and the fuzzer"),
    fuzz_steps: int = typer.Option(300, min=0, help="random and malformed actions to try"),
) -> None:
    """Check that ENV follows the text-environment contract; exits 1 if a check fails."""
    spec(env)  # unknown ids fail here with a suggestion
    env_kwargs = parse_overrides(options)
    report = check_env(env, env_kwargs, seed=seed, fuzz_steps=fuzz_steps)
    table = Table(title=f"check-env {env}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("details", overflow="fold")
    for result in report.results:
        # The message quotes the environment's actions and errors: "click[buy now]" is not markup.
        verdict = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        table.add_row(result.name, verdict, Text(result.message))
    console.print(table)
    if not report.passed:
        raise typer.Exit(1)
