"""``agentgym train``: SFT warm start and RL (GiGPO, HGPO, SALT, GRPO, RLOO, IGPO) on an environment."""

from __future__ import annotations

from pathlib import Path

import typer

from agentgym.cli.app import app, console
from agentgym.config import dump_config, load_config, read_yaml
from agentgym.registry import spec


@app.command("train")
def train_command(
    env: str = typer.Option(None, "--env", help="environment id (default: webshop)"),
    algo: str = typer.Option(
        None, "--algo", help="grpo, rloo, gigpo, hgpo, salt, igpo (default: the recipe's)"
    ),
    model: str = typer.Option(
        None, "--model", help="tiny, smollm2-135m, a model directory, a GGUF file or a hub id"
    ),
    config: Path = typer.Option(None, "--config", help="YAML file with TrainConfig fields"),
    out: Path = typer.Option(None, help="run directory (default: runs/train-<env>-<algo>-<model>-s<seed>)"),
    seed: int = typer.Option(None, help="random seed"),
    iterations: int = typer.Option(None, help="RL iterations"),
    resume: bool = typer.Option(
        None,
        "--resume",
        help="continue from the run directory's latest checkpoint, with the run's own settings (a "
        "finished run: with more --iterations)",
    ),
    overwrite: bool = typer.Option(None, "--overwrite", help="replace an existing run directory"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and print the configuration, then stop"),
    overrides: list[str] = typer.Argument(
        None, help="dotted overrides, e.g. optim.lr=1e-6 rollout.group_size=4"
    ),
) -> None:
    """Train a policy on an environment; writes summary.json, metrics.jsonl and checkpoints."""
    from agentgym.trainers.config import TrainConfig
    from agentgym.trainers.recipes import recipe_path

    user_file = read_yaml(config) if config else {}
    env_id = env or user_file.get("env") or "webshop"
    spec(env_id)
    recipe_file = recipe_path(env_id)
    recipe = read_yaml(recipe_file) if recipe_file else {}
    values = {
        "env": env_id,
        "algo": algo,
        "out": out,
        "seed": seed,
        "iterations": iterations,
        "resume": resume,
        "overwrite": overwrite,
        "model": {"spec": model} if model else None,
    }
    # The recipe's estimator settings belong to its own algorithm: they apply only when it is chosen.
    general = {key: value for key, value in recipe.items() if key != "estimator"}
    settings = load_config(TrainConfig, [general, user_file], values, overrides)
    if "estimator" in recipe and settings.algo == recipe.get("algo"):
        settings = load_config(TrainConfig, [recipe, user_file], values, overrides)
    saved = settings.run_dir() / "config.yaml"
    if settings.resume and saved.is_file():
        # A resume continues the run as it was started, not as the recipe would start one: the run's
        # own settings, then what this command gives (the trainer refuses a change that makes it
        # another run); --env only when given, as its default would replace the run's.
        run = {k: v for k, v in read_yaml(saved).items() if k not in ("resume", "overwrite")}
        if algo is not None and algo != run.get("algo"):
            # The run's estimator settings are its algorithm's: kept, they would fail as unknown to
            # this one before the trainer could say that the algorithm is what differs.
            run.pop("estimator", None)
        settings = load_config(TrainConfig, [run, user_file], {**values, "env": env}, overrides)
    if dry_run:
        # plain: the console would wrap long lines and read [..] as markup
        typer.echo(dump_config(settings), nl=False)
        return
    from agentgym.trainers.rl import Trainer

    Trainer(settings, console=console).fit()
