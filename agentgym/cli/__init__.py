"""Command-line interface: ``agentgym envs | play | eval | view | check-env | train | serve``."""

from agentgym.cli import check, envs, eval, play, serve, train, view  # noqa: F401  (each module adds its command)
from agentgym.cli.app import app, run_cli


def main() -> None:
    run_cli(app)


__all__ = ["app", "main"]
