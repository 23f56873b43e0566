import os
import platform
import subprocess
import sys

import pytest
import torch

from agentgym.policies import SamplingParams
from agentgym.policies.hf import HFPolicy, cut_at_stop
from agentgym.trainers.models import load_model

PROMPTS = [
    [{"role": "user", "content": "You are in the hall."}],
    [
        {"role": "system", "content": "Act."},
        {"role": "user", "content": "The door to the attic is locked. A key lies here."},
    ],
    [{"role": "user", "content": "go"}],
]


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    return HFPolicy(*load_model(str(tiny_model_dir), device="cpu"), batch_size=2)


def test_batched_greedy_equals_one_at_a_time(policy):
    sampling = SamplingParams(temperature=0.0, max_tokens=12)
    together = policy.generate(PROMPTS, sampling)
    alone = [policy.generate([prompt], sampling)[0] for prompt in PROMPTS]
    assert [c.token_ids for c in together] == [c.token_ids for c in alone]
    for a, b in zip(together, alone, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0])
def test_logprobs_are_those_of_the_sampled_distribution(policy, temperature):
    [completion] = policy.generate(
        PROMPTS[1:2], SamplingParams(temperature=temperature, max_tokens=10, seed=3)
    )
    assert len(completion.token_ids) == len(completion.logprobs) > 0
    ids = torch.tensor([completion.prompt_ids + completion.token_ids])
    with torch.no_grad():
        logits = policy.model(ids).logits[0, len(completion.prompt_ids) - 1 : -1].float()
    scaled = logits / temperature if temperature > 0 else logits
    expected = torch.log_softmax(scaled, -1).gather(-1, torch.tensor(completion.token_ids)[:, None])[:, 0]
    assert completion.logprobs == pytest.approx(expected.tolist(), abs=1e-4)


def test_max_tokens_seeds_and_finish_reasons(policy):
    sampling = SamplingParams(temperature=1.0, max_tokens=5, seed=11)
    first, second = policy.generate(PROMPTS, sampling), policy.generate(PROMPTS, sampling)
    assert [c.token_ids for c in first] == [c.token_ids for c in second]
    for completion in first:
        assert len(completion.token_ids) <= 5
        eos = completion.token_ids[-1] == policy.tokenizer.eos_token_id
        assert completion.finish_reason == ("stop" if eos else "length")


def test_stop_strings_cut_text_and_tokens(policy):
    [free] = policy.generate(PROMPTS[:1], SamplingParams(temperature=0.0, max_tokens=20))
    assert len(free.text) >= 4  # the fixture model is seeded: it always writes enough to cut
    stop = free.text[2:4]
    [cut] = policy.generate(PROMPTS[:1], SamplingParams(temperature=0.0, max_tokens=20, stop=[stop]))
    assert cut.text.endswith(stop) and len(cut.text) <= free.text.index(stop) + len(stop)
    assert cut.token_ids == free.token_ids[: len(cut.token_ids)] and len(cut.logprobs) == len(cut.token_ids)
    assert cut.finish_reason == "stop"


def test_the_saved_tokenizer_pipeline_survives_loading(tiny_model_dir):
    _, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    # the tiny tokenizer lowercases and keeps letter-digit words whole; a rebuilt Qwen2 one would not
    assert tokenizer.backend_tokenizer.normalizer is not None
    assert tokenizer.decode(tokenizer("Go KITCHEN", add_special_tokens=False)["input_ids"]) == "go kitchen"


@pytest.mark.parametrize(
    ("text", "stop"), [("中b", "中"), ("ab€cd", "€"), ("go north</action> x", "</action>")]
)
def test_a_cut_at_a_stop_string_keeps_the_tokens_that_spell_it_whole(policy, text, stop):
    tokenizer = policy.tokenizer
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = tokenizer.decode(ids, skip_special_tokens=True)
    tokens, logprobs, cut, stopped = cut_at_stop(tokenizer, ids, [0.0] * len(ids), full, [stop])
    assert stopped and cut == full[: full.index(stop) + len(stop)]
    assert tokenizer.decode(tokens, skip_special_tokens=True).startswith(cut) and len(logprobs) == len(tokens)


def test_a_model_directory_without_a_tokenizer_is_refused_for_evaluation_too(tiny_model_dir, tmp_path):
    import shutil

    from agentgym.core import AgentGymError

    (tmp_path / "weights-only").mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, tmp_path / "weights-only" / name)
    with pytest.raises(AgentGymError, match="it has no tokenizer"):
        HFPolicy.from_pretrained(str(tmp_path / "weights-only"), device="cpu")


def test_an_empty_stop_string_is_refused():
    with pytest.raises(ValueError, match="empty stop string"):
        SamplingParams(stop=["\n", ""])


def test_a_bfloat16_checkpoint_generates_in_float32_on_a_cpu(tiny_model_dir, tmp_path):
    """As the trainer's models and the vLLM backend on a CPU do: the same distribution whatever
    dtype the checkpoint was saved in (transformers would load it as saved)."""
    import shutil

    model, _ = load_model(str(tiny_model_dir), device="cpu")
    saved = tmp_path / "bf16"
    model.to(torch.bfloat16).save_pretrained(saved)
    for path in tiny_model_dir.iterdir():
        if path.name.startswith(("tokenizer", "chat_template")):
            shutil.copy(path, saved / path.name)
    loaded = HFPolicy.from_pretrained(str(saved), device="cpu")
    assert loaded.model.dtype == torch.float32
    sampling = SamplingParams(temperature=0.0, max_tokens=8)
    [ours] = loaded.generate(PROMPTS[1:2], sampling)
    [theirs] = HFPolicy(*load_model(str(saved), device="cpu")).generate(PROMPTS[1:2], sampling)
    assert ours.token_ids == theirs.token_ids
    assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-5)


X86 = platform.machine().lower() in ("x86_64", "amd64")

PROBE = """
import hashlib, torch
{before}
from agentgym.policies.hf import pin_cpu_arithmetic
{pin}
g = torch.Generator().manual_seed(0)
a, b = torch.randn(257, 511, generator=g), torch.randn(511, 129, generator=g)
out = torch.softmax(a @ b, dim=-1)
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(out.numpy().tobytes()).hexdigest())
"""


def _probe(pin: str, before: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A fresh process (the pin must come before its first torch computation) reporting the
    kernels it used and a digest of a matrix product and a softmax."""
    clean = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ATEN_CPU_CAPABILITY")}
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(before=before, pin=pin)],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
    )


@pytest.mark.skipif(not X86, reason="the instruction-set pin applies to x86 CPUs")
def test_pinned_cpu_arithmetic_computes_as_the_avx2_kernels_of_torch_and_mkl_do():
    pinned = _probe("pin_cpu_arithmetic(2, 'avx2')").stdout
    reference = _probe("torch.set_num_threads(2)", env={"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"})
    assert pinned == reference.stdout and pinned.startswith("AVX2 ")


@pytest.mark.skipif(not X86, reason="the instruction-set pin applies to x86 CPUs")
def test_a_pin_after_the_first_torch_computation_warns_that_it_came_too_late():
    late = _probe(
        "pin_cpu_arithmetic(2, 'avx2')",
        before="torch.ones(3).sum(); import warnings; warnings.simplefilter('error')",
        env={"ATEN_CPU_CAPABILITY": "default"},  # so that the kernels in use are not AVX2 on any CPU
    )
    assert late.returncode != 0 and "already computes" in late.stderr
