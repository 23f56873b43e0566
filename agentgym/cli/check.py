"""``agentgym check-env``: conformance, fuzz and determinism checks of an environment."""

from __future__ import annotations

import typer
from rich.table import Table

from agentgym.checker import check_env
from agentgym.cli.app import app, console
from agentgym.config import parse_overrides
from agentgym.registry import spec


@app.command("check-env")
def check_env_command(
    env: str = typer.Argument(..., help="environment id, e.g. webshop"),
    options: list[str] = typer.Argument(None, help="environment options as key=value"),
    seed: int = typer.Option(0, help="seed for resets and the fuzzer"),
    fuzz_steps: int = typer.Option(300, help="random and malformed actions to try"),
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
        table.add_row(result.name, "[green]pass[/]" if result.passed else "[red]FAIL[/]", result.message)
    console.print(table)
    if not report.passed:
        raise typer.Exit(1)
