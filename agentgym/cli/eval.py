"""``agentgym eval``: success rate, score, steps, validity and pass@k of a policy on a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agentgym.cli.app import app, console
from agentgym.config import dump_config, load_config
from agentgym.evaluation import EvalConfig, evaluate
from agentgym.policies import Policy, ScriptedPolicy, make_policy
from agentgym.registry import spec


@app.command("eval")
def eval_command(
    env: str = typer.Option(None, "--env", help="environment id, e.g. webshop"),
    policy: str = typer.Option(
        None,
        "--policy",
        help="expert, random, tiny, a model dir or .gguf file (hf: or vllm: before it to choose the "
        "backend), a hub id, openai:<url>#<model>",
    ),
    split: str = typer.Option(None, help="task split (default: test)"),
    episodes: int = typer.Option(None, help="evaluate the first N tasks of the split (default: all)"),
    attempts: int = typer.Option(None, help="rollouts per task, for pass@k (default: 1)"),
    out: Path = typer.Option(None, help="run directory (default: runs/eval-<env>-<policy>-<split>)"),
    resume: bool = typer.Option(None, "--resume", help="continue the run in the run directory"),
    overwrite: bool = typer.Option(None, "--overwrite", help="replace the run directory's traces"),
    config: Path = typer.Option(None, "--config", help="YAML file with EvalConfig fields"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the configuration, then stop"),
    overrides: list[str] = typer.Argument(None, help="dotted overrides, e.g. sampling.temperature=0.7"),
) -> None:
    """Evaluate a policy on an environment split; writes metrics.json and traces.jsonl."""
    values = {
        "env": env,
        "policy": policy,
        "split": split,
        "episodes": episodes,
        "attempts": attempts,
        "out": out,
        "resume": resume,
        "overwrite": overwrite,
    }
    settings = load_config(EvalConfig, config, values, overrides)
    spec(settings.env)
    if dry_run:
        # plain: the console would wrap long lines and read [..] as markup
        typer.echo(dump_config(settings), nl=False)
        return
    agent = make_policy(settings.policy, env_id=settings.env)
    # evaluate() closes only a policy it makes itself; this one is made here, before the progress
    # bar, so that a bad spec is a one-line error (a vLLM engine or an HTTP client must not outlive it).
    try:
        metrics = _evaluate_with_progress(settings, agent)
    finally:
        if hasattr(agent, "close"):
            agent.close()
    console.print_json(json.dumps(metrics))
    console.print(f"wrote {escape(str(settings.run_dir() / 'metrics.json'))} and traces.jsonl", style="dim")


def _evaluate_with_progress(settings: EvalConfig, agent: Policy | ScriptedPolicy) -> dict[str, Any]:
    with Progress(
        TextColumn("{task.description}", markup=False),  # "[test]" is the split, not a style
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("success {task.fields[success]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(f"eval {settings.env} [{settings.split}]", total=None, success="-")
        won = [0, 0]

        def on_trajectory(trajectory) -> None:
            won[0] += trajectory.won
            won[1] += 1
            progress.update(bar, advance=1, success=f"{won[0] / won[1]:.1%}")

        return evaluate(
            settings, agent, on_trajectory, on_start=lambda total: progress.update(bar, total=total)
        )
