"""Rollouts: environment pools (threads or processes) and the engine that drives episodes."""

from agentgym.rollout.engine import GroupRequest, RolloutEngine
from agentgym.rollout.workers import EnvWorkerError, ProcessEnvPool, ThreadEnvPool

__all__ = ["EnvWorkerError", "GroupRequest", "ProcessEnvPool", "RolloutEngine", "ThreadEnvPool"]
