"""``agentgym view``: read the episodes of a traces file (``agentgym eval``'s traces.jsonl, a
training run's ``eval/<stage>.jsonl``) in the terminal: a table of episodes, or one episode step by step."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agentgym.cli.app import app, console
from agentgym.core import AgentGymError
from agentgym.evaluation import summarize
from agentgym.trajectory import Trajectory, TrajectoryGroup, read_trajectories


def traces_file(path: Path) -> Path:
    """``path`` itself, or the traces.jsonl in a directory; a directory without one names the trace
    files it holds (a training run keeps its evaluations under ``eval/``)."""
    if path.is_file():
        return path
    if not path.exists():
        raise AgentGymError(f"{path} does not exist")
    if (path / "traces.jsonl").is_file():
        return path / "traces.jsonl"
    found = sorted(
        str(file.relative_to(path)) for file in path.rglob("*.jsonl") if file.name != "metrics.jsonl"
    )
    hint = f"; trace files there: {', '.join(found)}" if found else ""
    raise AgentGymError(f"no traces.jsonl in {path}{hint}")


def _clip(text: str, max_chars: int) -> str:
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    return f"{text[:max_chars]} … ({len(text) - max_chars} more characters)"


def _won(trajectory: Trajectory) -> Text:
    if trajectory.failed:
        return Text("env error", "red")
    return Text("yes", "green") if trajectory.won else Text("no")


def episode_table(trajectories: list[Trajectory], shown: list[int]) -> Table:
    headers = ("#", "task", "rollout", "steps", "score", "won")
    rows = []
    for index in shown:
        trajectory = trajectories[index]
        cells = [str(index), str(trajectory.task_id), f"{trajectory.group}/{trajectory.traj}"]
        cells += [str(len(trajectory.steps)), f"{trajectory.episode_score:.3f}"]
        rows.append([*map(Text, cells), _won(trajectory), Text(trajectory.task)])
    table = Table(box=None, header_style="bold")
    used = 0
    for column, header in enumerate(headers):
        # Each short column keeps its widest cell; the instruction gets what the terminal has left.
        width = max([len(header), *(len(row[column]) for row in rows)])
        table.add_column(header, justify="left" if header in ("rollout", "won") else "right", min_width=width)
        used += width + 2  # a space either side
    table.add_column(
        "instruction", overflow="ellipsis", no_wrap=True, max_width=max(console.width - used - 2, 20)
    )
    for row in rows:
        table.add_row(*row)
    return table


def print_episode(index: int, trajectory: Trajectory, max_chars: int) -> None:
    outcome = "won" if trajectory.won else "environment error" if trajectory.failed else "not won"
    header = Text(trajectory.task or "(no instruction)")
    title = f"episode {index}: {trajectory.env_id} task {trajectory.task_id} [{trajectory.split}]"
    subtitle = f"{outcome}, score {trajectory.episode_score:.3f}, {len(trajectory.steps)} steps"
    console.print(Panel(header, title=escape(title), subtitle=escape(subtitle)))
    if trajectory.error:
        console.print("[red]error:[/]", Text(trajectory.error))
    for step in trajectory.steps:
        flags = "" if step.valid else " [red]invalid[/]"
        console.print(f"[bold]t={step.t}[/] reward {step.reward:g}{flags}")
        console.print(Text(_clip(step.observation, max_chars), style="dim"))
        console.print("[cyan]action:[/]", Text(step.action))
        if step.completion.strip() and step.completion.strip() != step.action:
            console.print("[cyan]model wrote:[/]", Text(step.completion))


@app.command("view")
def view_command(
    path: Path = typer.Argument(..., help="a traces .jsonl file, or a directory holding traces.jsonl"),
    episode: int = typer.Option(
        None, "--episode", "-e", help="show episode N (its # in the table) step by step"
    ),
    failed: bool = typer.Option(
        False,
        "--failed",
        help="list only the episodes that were not won (lost, cut off, or ended by an environment error)",
    ),
    won: bool = typer.Option(False, "--won", help="list only the episodes that were won"),
    task: str = typer.Option(None, "--task", help="list only the episodes of this task id"),
    max_chars: int = typer.Option(600, help="cut observations at N characters (0: never)"),
) -> None:
    """Show the episodes of a traces file: a table, or one episode step by step.

    --failed lists the episodes the agent did not win, whatever the reason; in the table, the won
    column marks those an environment error ended as "env error"."""
    source = traces_file(path)
    try:
        trajectories = read_trajectories(source)
    except ValueError as error:
        raise AgentGymError(f"{source} is not a traces file: {str(error).splitlines()[0]}") from error
    if not trajectories:
        raise AgentGymError(f"{source} holds no episodes")
    if episode is not None:
        if not 0 <= episode < len(trajectories):
            raise AgentGymError(f"{source} has episodes 0-{len(trajectories) - 1}, not {episode}")
        print_episode(episode, trajectories[episode], max_chars)
        return
    if failed and won:
        raise AgentGymError("--failed and --won exclude each other")
    shown = [
        index
        for index, trajectory in enumerate(trajectories)
        if (not failed or not trajectory.won)
        and (not won or trajectory.won)
        and (task is None or str(trajectory.task_id) == task)
    ]
    metrics = summarize(TrajectoryGroup.from_trajectories(trajectories))
    wins = sum(t.won for t in trajectories)
    console.print(
        f"{escape(str(source))}: {metrics['episodes']} episodes, {wins} won ({metrics['success_rate']:.1%}), "
        f"mean score {metrics['mean_score']:.3f}; showing {len(shown)}",
        highlight=False,
    )
    console.print(episode_table(trajectories, shown))
