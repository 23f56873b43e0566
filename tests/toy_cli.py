"""``python tests/toy_cli.py <agentgym args>``: the agentgym CLI with the toy environments registered,
for tests that need a separate process (e.g. killing a training run)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import agentgym
from agentgym.cli import main

agentgym.register("test-keydoor", "toy_envs:KeyDoorEnv", max_episode_steps=20)
main()
