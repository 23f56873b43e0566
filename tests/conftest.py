"""Shared fixtures: the toy environments of tests/toy_envs.py registered under test ids."""

from __future__ import annotations

import os
import socket

# No model hub is reachable from the test machines: fail hub lookups at once instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

import agentgym

TOY_ENVS = {
    "test-keydoor": "toy_envs:KeyDoorEnv",
    "test-faulty": "toy_envs:FaultyEnv",
    "test-nondeterministic": "toy_envs:NondeterministicEnv",
    "test-invalid-moves": "toy_envs:StateChangingInvalidEnv",
    "test-crash-on-garbage": "toy_envs:CrashOnGarbageEnv",
}


@pytest.fixture(scope="session", autouse=True)
def toy_envs():
    for env_id, entry_point in TOY_ENVS.items():
        agentgym.register(env_id, entry_point, max_episode_steps=20)
    yield TOY_ENVS
    for env_id in TOY_ENVS:
        agentgym.deregister(env_id)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def free_port():
    """A function returning a TCP port that is free on loopback when it is called."""
    return _free_port


@pytest.fixture
def agentgym_cli(monkeypatch, capsys):
    """A function running the agentgym command in this process: (exit code, stdout, stderr)."""
    import io
    import sys

    from agentgym.cli import main

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


@pytest.fixture
def serve_on_loopback():
    """A function serving an ASGI app with uvicorn on a real loopback socket; returns its URL. The
    servers stop when the test ends."""
    import threading

    import uvicorn

    from agentgym.tools.servers import wait_until_ready

    running = []

    def serve(app) -> str:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, timeout=30)
        return url

    yield serve
    for server, thread in running:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, toy_envs):
    """A small tiny-model directory built for the key-door toy environment."""
    from agentgym.trainers.models import TinyModelConfig, build_tiny

    # One attention head of width 32: vLLM's CPU attention has no kernel for heads narrower than that.
    config = TinyModelConfig(
        vocab_size=400,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=1,
        num_kv_heads=1,
        corpus_episodes=10,
    )
    return build_tiny("test-keydoor", config=config, directory=tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def torch_threads(monkeypatch):
    """torch's thread count as a plain value that code under test sets (as the trainer does) and
    reads back: the real one is left alone, and a vLLM CPU engine that ran earlier in the process
    (the vLLM tests) pins it, which would make such tests depend on their order."""
    import torch

    count = [torch.get_num_threads()]
    monkeypatch.setattr(torch, "set_num_threads", lambda threads: count.__setitem__(0, threads))
    monkeypatch.setattr(torch, "get_num_threads", lambda: count[0])
