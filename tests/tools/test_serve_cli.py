"""`agentgym serve`: arguments it cannot serve with are refused at once, before an index is built."""

import sys

import pytest
import uvicorn

from agentgym.tools.retrieval import Corpus, is_index


@pytest.fixture
def agentgym_cli(agentgym_cli, monkeypatch):
    """The shared runner, its output as one line, and serving refused: a test that got as far as
    serving would block on the port, so it fails instead."""
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("started serving"))

    def run(*args: str) -> tuple[int, str]:
        code, out, err = agentgym_cli(*args)
        return code, " ".join((out + err).split())

    return run


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    Corpus(["cat", "dog"], ["Cat\nThe cat sleeps.", "Dog\nThe dog barks."]).to_jsonl(path)
    return str(path)


def test_a_port_outside_the_tcp_range_is_refused_before_the_index_is_built(
    agentgym_cli, corpus_file, tmp_path
):
    index = tmp_path / "index"
    code, out = agentgym_cli(
        "serve", "retriever", "--index", str(index), "--corpus", corpus_file, "--port", "70000"
    )
    assert code == 2 and "--port" in out and not is_index(index)
    code, out = agentgym_cli("serve", "env", "--env", "test-keydoor", "--port", "70000")
    assert code == 2 and "--port" in out


def test_a_default_topk_the_server_would_refuse_is_refused_before_the_index_is_built(
    agentgym_cli, corpus_file, tmp_path
):
    index = tmp_path / "index"
    code, out = agentgym_cli(
        "serve", "retriever", "--index", str(index), "--corpus", corpus_file, "--topk", "5000"
    )
    assert code == 2 and "--topk 5000 exceeds the server's limit of 1000" in out and not is_index(index)


def test_serving_a_retriever_without_the_server_extra_says_what_to_install(
    agentgym_cli, corpus_file, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "agentgym.tools.retrieval.server", None)  # as if fastapi were missing
    index = tmp_path / "index"
    code, out = agentgym_cli("serve", "retriever", "--index", str(index), "--corpus", corpus_file)
    assert code == 2 and "pip install 'agentgym[server]'" in out and not is_index(index)
    # building alone needs no server
    code, _ = agentgym_cli(
        "serve", "retriever", "--index", str(index), "--corpus", corpus_file, "--build-only"
    )
    assert code == 0 and is_index(index)


def test_build_options_given_for_an_existing_index_are_named_as_unused(agentgym_cli, corpus_file, tmp_path):
    index = str(tmp_path / "index")
    assert (
        agentgym_cli("serve", "retriever", "--index", index, "--corpus", corpus_file, "--build-only")[0] == 0
    )
    code, out = agentgym_cli("serve", "retriever", "--index", index, "--kind", "dense", "--build-only")
    assert code == 0
    assert "already holds an index; --kind not used" in out and "bm25 index of 2 documents" in out


@pytest.mark.parametrize("given", ["flag", "environment"])
def test_both_servers_take_an_api_key_from_the_flag_or_the_environment(
    given, agentgym_cli, corpus_file, tmp_path, monkeypatch
):
    import agentgym.tools.env_server
    import agentgym.tools.retrieval.server

    served = []
    for module in (agentgym.tools.env_server, agentgym.tools.retrieval.server):
        monkeypatch.setattr(module, "serve", lambda *args, **kwargs: served.append(kwargs.get("api_key")))
    flag = ["--api-key", "s3cret"] if given == "flag" else []
    if given == "environment":
        monkeypatch.setenv("AGENTGYM_API_KEY", "s3cret")
    index = str(tmp_path / "index")
    assert agentgym_cli("serve", "env", "--env", "test-keydoor", *flag)[0] == 0
    assert agentgym_cli("serve", "retriever", "--index", index, "--corpus", corpus_file, *flag)[0] == 0
    assert served == ["s3cret", "s3cret"]


class UnmakeableEnv:
    def __init__(self, **kwargs):
        raise FileNotFoundError("no data under /data/keydoor")


@pytest.mark.parametrize(
    ("env_options", "message"),
    [
        (["--env", "test-unmakeable"], "cannot serve test-unmakeable: FileNotFoundError: no data under"),
        (["--env", "test-keydoor", "max_episode_steps=ten"], "cannot serve test-keydoor: TypeError:"),
        (["--env", "test-keydoor", "rooms=5"], "test-keydoor: unknown option(s) rooms"),
    ],
)
def test_an_environment_that_cannot_be_served_is_a_one_line_error(agentgym_cli, env_options, message):
    import agentgym

    agentgym.register("test-unmakeable", UnmakeableEnv)
    try:
        code, out = agentgym_cli("serve", "env", *env_options)
    finally:
        agentgym.deregister("test-unmakeable")
    assert code == 2 and f"error: {message}" in out and "Traceback" not in out


def test_a_blank_api_key_is_refused_before_the_index_is_built(agentgym_cli, corpus_file, tmp_path):
    index = tmp_path / "index"
    retriever = ["serve", "retriever", "--index", str(index), "--corpus", corpus_file]
    code, out = agentgym_cli(*retriever, "--api-key", " ")  # no request could send it
    assert code == 2 and "error: the API key is blank" in out and not is_index(index)
    code, out = agentgym_cli("serve", "env", "--env", "test-keydoor", "--api-key", "\n")
    assert code == 2 and "error: the API key is blank" in out
