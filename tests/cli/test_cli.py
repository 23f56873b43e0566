"""The agentgym command as a user runs it: exit codes, one-line errors, files written."""

import io
import json
import sys

import pytest

from agentgym.cli import main


@pytest.fixture
def agentgym_cli(monkeypatch, capsys):
    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["agentgym", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_envs_lists_registered_environments(agentgym_cli):
    code, out, _ = agentgym_cli("envs")
    assert code == 0
    assert "test-keydoor" in out and "Find the key" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--env", "test-keydor"], "unknown environment 'test-keydor'. Did you mean 'test-keydoor'?"),
        (
            ["eval", "--env", "test-keydoor", "--policy", "openai:localhost"],
            "bad policy spec 'openai:localhost'",
        ),
        (
            ["eval", "--env", "test-keydoor", "--policy", "exprt"],
            "unknown policy 'exprt'. Did you mean 'expert'?",
        ),
        (
            ["eval", "--env", "test-keydoor", "--attempts", "0"],
            "attempts: Input should be greater than or equal to 1",
        ),
        (
            ["eval", "--env", "test-keydoor", "sampling.temprature=1"],
            "sampling.temprature: Extra inputs are not permitted",
        ),
        (["check-env", "nope"], "unknown environment 'nope'"),
    ],
)
def test_user_mistakes_print_one_line_without_traceback(agentgym_cli, args, message):
    code, out, err = agentgym_cli(*args)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) <= 3  # one logical line, possibly wrapped by the terminal width


def test_eval_writes_metrics_with_the_documented_fields(agentgym_cli, tmp_path):
    code, out, _ = agentgym_cli(
        "eval",
        "--env",
        "test-keydoor",
        "--policy",
        "expert",
        "--episodes",
        "3",
        "--attempts",
        "2",
        "--out",
        str(tmp_path),
    )
    assert code == 0, out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["success_rate"] == 1.0 and metrics["pass@2"] == 1.0 and metrics["episodes"] == 6
    assert {"mean_score", "mean_steps", "valid_action_ratio", "pass@1"} <= set(metrics)
    assert len((tmp_path / "traces.jsonl").read_text().splitlines()) == 6


def test_eval_dry_run_prints_the_resolved_config(agentgym_cli, tmp_path):
    code, out, _ = agentgym_cli(
        "eval", "--env", "test-keydoor", "--dry-run", "sampling.temperature=0.7", "--out", str(tmp_path)
    )
    assert code == 0
    assert "temperature: 0.7" in out and "env: test-keydoor" in out
    assert not (tmp_path / "metrics.json").exists()


def test_check_env_exit_codes(agentgym_cli):
    assert agentgym_cli("check-env", "test-keydoor", "--fuzz-steps", "50")[0] == 0
    code, out, _ = agentgym_cli("check-env", "test-invalid-moves", "--fuzz-steps", "50")
    assert code == 1 and "FAIL" in out


def test_play_takes_numbers_actions_and_hints(agentgym_cli):
    # Task 1000 starts in the vault (admissible: 1 go hall, 2 go kitchen) with the key in the kitchen
    # (then: 3 take key, 3 open door) and the goal behind the door: "go cellar".
    code, out, _ = agentgym_cli(
        "play",
        "--env",
        "test-keydoor",
        "--split",
        "test",
        "--task-id",
        "1000",
        "--seed",
        "0",
        stdin=":hint\nfly [away]\n2\n3\n3\ngo cellar\n:quit\n",
    )
    assert code == 0
    assert "expert: go kitchen" in out
    assert "task 1000 [test]" in out
    assert "invalid action: 'fly [away]' is not possible here" in out
    assert "episode won after 5 steps" in out
