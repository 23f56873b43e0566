"""``agentgym play``: a person plays an environment in the terminal."""

from __future__ import annotations

from typing import Any

import gymnasium
import typer
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from agentgym.cli.app import app, console
from agentgym.config import parse_overrides
from agentgym.core import AgentGymError
from agentgym.policies.constraints import PLACEHOLDER
from agentgym.registry import make

HELP = (
    "Type an action, or the number of an admissible action (asked for what a <placeholder> in it stands for). "
    "Commands: :hint (the expert's next action), :reset (next task), :quit."
)


def _fill_placeholders(action: str) -> str:
    """Ask for each ``<name>`` in an admissible action written as a template, e.g. ``search[<query>]``."""
    return PLACEHOLDER.sub(lambda match: console.input(f"[bold]{match.group(0)[1:-1]}: [/]").strip(), action)


def _show(observation: str, info: dict[str, Any], step: int, reward: float | None = None) -> None:
    # Environment text is shown literally: WebShop's "[SEP]" or "click[Buy Now]" are not markup.
    title = f"step {step}" + (f"  reward {reward:g}" if reward is not None else "")
    subtitle = Text(f"task {info.get('task_id', '?')} [{info.get('split', '')}]")
    console.print(Panel(Text(observation), title=title, subtitle=subtitle))
    if info.get("action_valid") is False:
        console.print("[red]invalid action:[/]", Text(str(info.get("error", ""))))
    actions = info.get("available_actions") or []
    if actions:
        console.print(
            "  ".join(f"[cyan]{i}[/] {escape(str(a))}" for i, a in enumerate(actions, start=1)),
            highlight=False,
        )


@app.command("play")
def play_command(
    env: str = typer.Option(..., "--env", help="environment id, e.g. webshop"),
    split: str = typer.Option(None, help="task split"),
    task_id: str = typer.Option(None, "--task-id", help="task to play (default: a random one)"),
    seed: int = typer.Option(None, min=0, help="seed of the first episode"),  # gymnasium refuses one below 0
    options: list[str] = typer.Argument(None, help="environment options as key=value"),
) -> None:
    """Play ENV yourself: the observation is shown, you type the actions."""
    env_kwargs = parse_overrides(options)
    environment = make(env, **env_kwargs)
    reset_options: dict[str, Any] = {}
    if split is not None:
        reset_options["split"] = split
    if task_id is not None:
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        reset_options["task_id"] = int(task_id) if task_id.isdecimal() else task_id
    # Ctrl-C is how many people leave: the environment is closed then too (a served one's session
    # would otherwise stay open on its server).
    try:
        _play(environment, seed, reset_options)
    finally:
        environment.close()


def _play(environment: gymnasium.Env, seed: int | None, reset_options: dict[str, Any]) -> None:
    console.print(HELP, style="dim")
    try:
        observation, info = environment.reset(seed=seed, options=reset_options or None)
    except ValueError as error:  # environments reject an unknown split or task id this way
        raise AgentGymError(str(error)) from None
    step, total = 0, 0.0
    _show(observation, info, step)
    while True:
        try:
            line = console.input("[bold]> [/]").strip()
        except EOFError:
            break
        if line in (":q", ":quit"):
            break
        if line in (":r", ":reset"):
            reset_options.pop("task_id", None)
            observation, info = environment.reset(options=reset_options or None)
            step, total = 0, 0.0
            _show(observation, info, step)
            continue
        if line in (":h", ":hint"):
            try:
                console.print(f"expert: [green]{escape(environment.unwrapped.expert_action())}[/]")
            except NotImplementedError as error:
                console.print(f"[yellow]{error}[/]")
            continue
        actions = info.get("available_actions") or []
        if line.isdecimal() and 1 <= int(line) <= len(actions):
            try:
                line = _fill_placeholders(actions[int(line) - 1])
            except EOFError:  # Ctrl-D when asked for a <placeholder> leaves, as at the action prompt
                break
        observation, reward, terminated, truncated, info = environment.step(line)
        step += 1
        total += float(reward)
        _show(observation, info, step, float(reward))
        if terminated or truncated:
            outcome = "won" if info.get("won") else ("truncated" if truncated else "ended")
            console.print(
                f"[bold]episode {outcome}[/] after {step} steps, total reward {total:g}, score {info.get('score', '-')}"
            )
            console.print("next task: :reset, leave: :quit", style="dim")
