"""agentgym: multi-turn text environments for LLM agents and the RL trainers that learn from them.

Example::

    import agentgym
    env = agentgym.make("webshop")
    obs, info = env.reset(seed=0, options={"task_id": 0, "split": "test"})
    obs, reward, terminated, truncated, info = env.step("search[red running shoes]")
"""

from agentgym.core import AgentGymError, TaskId, TextEnv, text_space
from agentgym.registry import deregister, list_envs, load_plugins, make, register, spec
from agentgym.trajectory import Step, StepBatch, Trajectory, TrajectoryGroup

__version__ = "0.1.0"

__all__ = [
    "AgentGymError",
    "Step",
    "StepBatch",
    "TaskId",
    "TextEnv",
    "Trajectory",
    "TrajectoryGroup",
    "deregister",
    "list_envs",
    "make",
    "register",
    "spec",
    "text_space",
]

# Built-in and third-party environments register through the "agentgym.environments" entry points,
# so that gymnasium.make("agentgym/<id>") works right after `import agentgym`.
load_plugins()
