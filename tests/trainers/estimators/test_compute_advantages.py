"""The estimator registry and ``compute_advantages``: names, parameters, defaults, input checks, plugins."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from agentgym.core import AgentGymError
from agentgym.trainers import (
    ESTIMATORS,
    check_parameters,
    compute_advantages,
    estimator,
    estimator_parameters,
    register_estimator,
)
from agentgym.trajectory import StepBatch

BUILT_IN = ["gigpo", "grpo", "hgpo", "igpo", "rloo", "salt"]

# Only the keys every rollout has (the contract of compute_advantages).
RECORDS = [
    {"group": "g", "traj": 0, "t": 0, "anchor": "s0", "action": "a", "reward": 0.0, "valid": True},
    {"group": "g", "traj": 0, "t": 1, "anchor": "s1", "action": "b", "reward": 1.0, "valid": True},
    {"group": "g", "traj": 1, "t": 0, "anchor": "s0", "action": "c", "reward": 0.0, "valid": False},
]


def test_every_built_in_estimator_is_registered():
    assert sorted(ESTIMATORS) == BUILT_IN


@pytest.mark.parametrize("name", BUILT_IN)
def test_plain_records_give_one_float64_per_row(name):
    A = compute_advantages(name, StepBatch.from_records(RECORDS))
    assert A.dtype == np.float64
    assert A.shape == (3,)
    assert np.all(np.isfinite(A))
    assert compute_advantages(name, StepBatch.from_records([])).shape == (0,)


def test_defaults_follow_the_design():
    assert estimator_parameters("grpo") == {"norm": "std", "epsilon": 1e-6}
    assert estimator_parameters("rloo") == {}
    assert estimator_parameters("gigpo") == {
        "gamma": 0.95,
        "omega": 1.0,
        "norm": "std",
        "invalid_penalty": 0.0,
        "similarity": None,
        "epsilon": 1e-6,
    }
    assert estimator_parameters("hgpo") == {
        "gamma": 0.95,
        "K": 2,
        "alpha": 1.0,
        "norm": "std",
        "base_group": False,
        "epsilon": 1e-6,
    }
    assert estimator_parameters("salt") == {"base": "grpo", "merge": "edge", "norm": "std", "epsilon": 1e-6}
    assert estimator_parameters("igpo") == {"gamma": 1.0, "epsilon": 1e-6}


def test_unknown_name_suggests_a_close_one():
    with pytest.raises(AgentGymError, match=r"unknown advantage estimator 'gipgo'\. Did you mean 'gigpo'\?"):
        compute_advantages("gipgo", StepBatch.from_records(RECORDS))


def test_unknown_parameter_lists_the_accepted_ones():
    with pytest.raises(AgentGymError) as error:
        compute_advantages("gigpo", StepBatch.from_records(RECORDS), gama=0.9)
    message = str(error.value)
    assert "unknown parameter(s) 'gama'" in message
    assert "Did you mean 'gamma' for 'gama'?" in message
    assert "gamma=0.95, omega=1.0, norm='std', invalid_penalty=0.0, similarity=None, epsilon=1e-06" in message
    with pytest.raises(AgentGymError, match="Accepted: none"):
        compute_advantages("rloo", StepBatch.from_records(RECORDS), gamma=0.9)


def test_bad_rows_are_reported():
    with pytest.raises(AgentGymError, match="rewards must be finite"):
        compute_advantages("grpo", StepBatch.from_records([{**RECORDS[0], "reward": float("nan")}]))
    with pytest.raises(AgentGymError, match=r"two rows share group='g', traj=0, t=0"):
        compute_advantages("grpo", StepBatch.from_records([RECORDS[0], RECORDS[0]]))


@pytest.fixture
def plugin_name():
    yield "test-constant"
    ESTIMATORS._entries.pop("test-constant", None)


def test_a_registered_plugin_runs_and_declares_its_needs(plugin_name):
    @estimator(requires=("info_gain",))
    def constant(steps, *, value=1.0):
        return np.full(len(steps), value)

    register_estimator(plugin_name, constant)
    assert ESTIMATORS.get(plugin_name).requires == ("info_gain",)
    np.testing.assert_array_equal(
        compute_advantages(plugin_name, StepBatch.from_records(RECORDS), value=2.0), 2.0
    )
    with pytest.raises(AgentGymError, match="already registered"):
        register_estimator(plugin_name, lambda steps: np.zeros(len(steps)))


def test_wrong_output_shape_is_caught(plugin_name):
    register_estimator(plugin_name, lambda steps: np.zeros(1))
    with pytest.raises(AgentGymError, match=r"returned shape \(1,\), expected \(3,\)"):
        compute_advantages(plugin_name, StepBatch.from_records(RECORDS))


def test_non_finite_output_is_an_error_naming_the_parameters():
    steps = StepBatch.from_records([{**RECORDS[0], "traj": i, "reward": float(i)} for i in range(3)])
    with pytest.raises(
        AgentGymError, match=r"returned -inf for row 0 .* \{'epsilon': -1.0\}: advantages must be finite"
    ):
        compute_advantages("grpo", steps, epsilon=-1.0)  # unbiased std 1: std + epsilon = 0


def test_parameters_are_checked_on_a_synthetic_batch_naming_the_culprit():
    check_parameters("gigpo", {"gamma": 0.9, "omega": 0.5})
    with pytest.raises(AgentGymError, match=r"estimator 'gigpo' cannot run with gamma='abc': "):
        check_parameters("gigpo", {"gamma": "abc", "omega": 0.5})
    with pytest.raises(AgentGymError, match="unknown parameter"):
        check_parameters("rloo", {"gamma": 0.9})


def test_requires_names_real_columns():
    with pytest.raises(AgentGymError, match="unknown StepBatch column"):
        estimator(requires=("infogain",))


def test_estimators_do_not_import_torch():
    code = "import sys; from agentgym.trainers import compute_advantages; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
