"""Environments and policies arriving from a separately installed package through entry points."""

import subprocess
import sys
import textwrap

import pytest

PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "agentgym-plugin-demo"
version = "0.0.1"

[project.entry-points."agentgym.environments"]
coin-flip = "coin_flip_env:CoinFlipEnv"
"""

PLUGIN_MODULE = '''
from agentgym.core import TextEnv


class CoinFlipEnv(TextEnv):
    """Guess the side of a seeded coin."""

    instructions = "Answer 'heads' or 'tails'."

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.side = "heads" if self.np_random.random() < 0.5 else "tails"
        return self._observe("A coin was flipped."), {"task": "Guess the side.", "task_id": 0, "split": "test"}

    def step(self, action):
        valid = action in ("heads", "tails")
        won = valid and action == self.side
        info = {"action_valid": valid, "won": won, "task": "Guess the side.", "task_id": 0, "split": "test"}
        if not valid:
            info["error"] = "say heads or tails"
            return self._observe("A coin was flipped."), 0.0, False, False, info
        return self._observe(f"It was {self.side}."), float(won), True, False, info

    def expert_action(self):
        return self.side
'''


@pytest.mark.slow
def test_env_from_a_separately_installed_package(tmp_path):
    source = tmp_path / "plugin"
    source.mkdir()
    (source / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (source / "coin_flip_env.py").write_text(PLUGIN_MODULE)
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
    )
    script = textwrap.dedent(
        """
        import gymnasium, agentgym
        assert "coin-flip" in agentgym.list_envs(), agentgym.list_envs()
        env = gymnasium.make("agentgym/coin-flip")
        env.reset(seed=3)
        expert = env.unwrapped.expert_action()
        _, reward, terminated, _, info = env.step(expert)
        assert reward == 1.0 and terminated and info["won"]
        print("ok")
        """
    )
    env = {"PYTHONPATH": str(site), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    cli = subprocess.run(
        [sys.executable, "-m", "agentgym", "check-env", "coin-flip", "--fuzz-steps", "50"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
