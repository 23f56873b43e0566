import pytest

from agentgym.checker import check_env


def test_a_conforming_env_passes_every_check():
    report = check_env("test-keydoor", fuzz_steps=100)
    assert report.passed, report.failures()
    assert [r.name for r in report.results] == ["gymnasium", "reset", "tasks", "determinism", "fuzz"]


@pytest.mark.parametrize(
    ("env_id", "check", "message"),
    [
        ("test-nondeterministic", "determinism", "not deterministic"),
        ("test-invalid-moves", "fuzz", "changed the state"),
        ("test-crash-on-garbage", "fuzz", "raised ValueError"),
    ],
)
def test_broken_envs_fail_the_right_check_with_a_useful_message(env_id, check, message):
    report = check_env(env_id, fuzz_steps=100)
    failed = {result.name: result.message for result in report.failures()}
    assert check in failed, report.results
    assert message in failed[check]
