"""Built-in environment families; each registers lazily (nothing heavy is imported before make)."""

from agentgym.registry import register


def register_builtin_envs() -> None:
    """Called once through the ``agentgym.environments`` entry point of the agentgym distribution."""
    register("webshop", "agentgym.environments.webshop.env:WebShopEnv", max_episode_steps=15)
    register("alfworld", "agentgym.environments.alfworld.env:ALFWorldEnv", max_episode_steps=50)
    register("search-qa", "agentgym.environments.search_qa.env:SearchQAEnv", max_episode_steps=4)
    # served by `agentgym serve env`; the served environment's own step limit applies there
    register("remote", "agentgym.environments.remote:RemoteEnv")


__all__ = ["register", "register_builtin_envs"]
