"""``agentgym eval``: success rate, score, steps, validity and pass@k of a policy on a split."""

from __future__ import annotations

import json
from pathlib import Path

import typer
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
from agentgym.policies import make_policy
from agentgym.registry import spec


@app.command("eval")
def eval_command(
    env: str = typer.Option(None, "--env", help="environment id, e.g. webshop"),
    policy: str = typer.Option(
        None, "--policy", help="expert, random, tiny, a model dir, vllm:<model dir>, openai:<url>#<model>"
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
        console.print(dump_config(settings), highlight=False)
        return
    agent = make_policy(settings.policy, env_id=settings.env)
    with Progress(
        TextColumn(f"eval {settings.env} [{settings.split}]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("success {task.fields[success]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("episodes", total=None, success="-")
        won = [0, 0]

        def on_trajectory(trajectory) -> None:
            won[0] += trajectory.won
            won[1] += 1
            progress.update(bar, advance=1, success=f"{won[0] / won[1]:.1%}")

        metrics = evaluate(
            settings, agent, on_trajectory, on_start=lambda total: progress.update(bar, total=total)
        )
    console.print_json(json.dumps(metrics))
    console.print(f"wrote {settings.run_dir() / 'metrics.json'} and traces.jsonl", style="dim")
