import numpy as np

from agentgym.trainers.rewards import success_rewards
from agentgym.trajectory import Step, StepBatch, Trajectory


def trajectory(rewards, won, group="g", traj=0):
    steps = [Step(t=t, observation="o", action="a", reward=r) for t, r in enumerate(rewards)]
    return Trajectory(env_id="e", task_id=0, group=group, traj=traj, steps=steps, won=won)


def test_success_rewards_keep_only_the_outcome_in_row_order():
    trajectories = [
        trajectory([0.0, 0.0, 1.0], won=True),
        trajectory([0.0, 0.75], won=False, traj=1),  # partial credit is dropped
        trajectory([0.2, 0.0, 0.0, 0.5], won=True, traj=2),  # a win is 1 however the reward was paid
        trajectory([], won=False, traj=3),
    ]
    rewards = success_rewards(trajectories)
    assert rewards.tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert len(rewards) == len(StepBatch.from_trajectories(trajectories, tokens=False))
    assert rewards.dtype == np.float64
