"""The remote environment: a served environment behaves as the local one, for agents and the engine."""

import json
import subprocess
import sys
import threading

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from toy_envs import KeyDoorEnv

import agentgym
from agentgym.environments.remote import RemoteEnvError
from agentgym.policies import ExpertPolicy, SamplingParams
from agentgym.policies.base import Completion
from agentgym.rollout import GroupRequest, RolloutEngine
from agentgym.tools.env_server import create_app
from agentgym.tools.servers import wait_until_ready


@pytest.fixture
def served(toy_envs):
    """env kwargs that reach a served KeyDoor of 5 rooms without a network."""
    return {"url": "http://keydoor", "client": TestClient(create_app("test-keydoor", {"num_rooms": 5}))}


def test_a_remote_episode_equals_the_local_one(served):
    local, remote = agentgym.make("test-keydoor", num_rooms=5), agentgym.make("remote", **served)
    assert remote.unwrapped.instructions == local.unwrapped.instructions
    assert remote.unwrapped.splits == ("train", "test")
    assert remote.unwrapped.task_ids("test") == list(local.unwrapped.task_ids("test"))
    for env in (local, remote):
        env.reset(seed=1, options={"task_id": 1003, "split": "test"})
    while True:
        action = local.unwrapped.expert_action()
        assert remote.unwrapped.expert_action() == action
        mine, theirs = local.step(action), remote.step(action)
        assert theirs == mine  # the anchor comes back as the tuple it was: hashable, equal
        if mine[2] or mine[3]:
            break
    assert mine[4]["won"] and isinstance(theirs[4]["anchor"], tuple)
    remote.close()
    assert served["client"].get("/health").json()["sessions"] == 0


def test_numpy_task_ids_reach_the_server_as_they_reach_a_local_env(served):
    local, remote = agentgym.make("test-keydoor", num_rooms=5), agentgym.make("remote", **served)
    task_id = np.random.default_rng(0).choice(local.unwrapped.task_ids("test"))  # a numpy integer
    options = {"task_id": task_id, "split": "test"}
    assert remote.reset(seed=1, options=options) == local.reset(seed=1, options=options)
    remote.close()


def test_the_engine_rolls_out_a_served_environment_as_a_local_one(served):
    requests = [GroupRequest(task_id=t, split="test", seed=t) for t in (1000, 1001, 1002)]
    runs = {}
    for env_id, kwargs in (("test-keydoor", {"num_rooms": 5}), ("remote", served)):
        engine = RolloutEngine(env_id, kwargs, num_slots=4, record_prompts=True)
        groups = engine.run(ExpertPolicy(), requests, group_size=2)
        engine.close()
        runs[env_id] = [
            [(s.prompt, s.action, s.reward, s.anchor) for s in t.steps]
            for g in groups
            for t in g.trajectories
        ]
    assert runs["remote"] == runs["test-keydoor"] and all(runs["remote"])
    # the agent's prompt carries the served environment's instructions, as it does the local one's
    assert "take key" in runs["remote"][0][0][0][0]["content"]


class Mumbler:
    """Writes nothing an agent can parse: its turns never reach the environment."""

    def generate(self, prompts, sampling):
        return [Completion("hmm") for _ in prompts]


def test_the_engine_keeps_to_the_served_turn_limit(toy_envs):
    served = {
        "url": "http://keydoor",
        "client": TestClient(create_app("test-keydoor", {"max_episode_steps": 6})),
    }
    with RolloutEngine("remote", served, num_slots=1) as engine:
        (group,) = engine.run(Mumbler(), [GroupRequest(task_id=1, split="train")], sampling=SamplingParams())
    (trajectory,) = group.trajectories
    assert len(trajectory.steps) == 6 and trajectory.steps[-1].truncated


@pytest.fixture
def live_faulty_server(serve_on_loopback, toy_envs):
    """A faulty KeyDoor served by uvicorn on a real loopback socket."""
    return serve_on_loopback(create_app("test-faulty"))


def test_after_a_server_failure_the_same_connection_serves_the_next_request(live_faulty_server):
    env = agentgym.make("remote", url=live_faulty_server).unwrapped
    for _ in range(10):
        env.reset(seed=0)
        with pytest.raises(RemoteEnvError, match="RuntimeError: boom"):
            env.step("raise")
        assert env.step("take key")[4]["action_valid"] in (True, False)  # answered, not a broken connection
    env.close()


def test_refusals_and_failures_raise_with_the_servers_message(toy_envs):
    client = TestClient(create_app("test-faulty"), raise_server_exceptions=False)
    env = agentgym.make("remote", url="http://faulty", client=client).unwrapped
    with pytest.raises(agentgym.AgentGymError, match=r"refused.*reset"):
        env.step("take key")
    env.reset(seed=0)
    with pytest.raises(RemoteEnvError, match=r"HTTP 500.*RuntimeError: boom"):
        env.step("raise")


def test_served_options_are_checked_not_changed(served):
    agentgym.make("remote", num_rooms=5, **served).close()  # what the server was started with
    with pytest.raises(
        agentgym.AgentGymError, match=r"serves test-keydoor with num_rooms=5; expected num_rooms=4"
    ):
        agentgym.make("remote", num_rooms=4, **served)
    with pytest.raises(agentgym.AgentGymError, match=r"with key_reward=0\.0; expected key_reward=0\.5"):
        agentgym.make("remote", key_reward=0.5, **served)
    agentgym.make("remote", key_reward=0.0, **served).close()  # its default, which the server left as is
    with pytest.raises(agentgym.AgentGymError, match="no option colour it can report"):
        agentgym.make("remote", colour="red", **served)


def test_numpy_option_values_are_checked_as_the_plain_values_they_are(served):
    agentgym.make("remote", num_rooms=np.int64(5), key_reward=np.float32(0.0), **served).close()
    with pytest.raises(agentgym.AgentGymError, match="serves test-keydoor with num_rooms=5; expected"):
        agentgym.make("remote", num_rooms=np.int64(4), **served)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(301, headers={"location": "https://keydoor/spec"}),  # a redirect, not an answer
        httpx.Response(200, text="<html>a web page</html>"),
        httpx.Response(200, json={"status": "ok"}),  # some other JSON service
    ],
)
def test_a_url_that_is_not_an_environment_server_is_a_one_line_error(answer):
    client = httpx.Client(base_url="http://keydoor", transport=httpx.MockTransport(lambda request: answer))
    with pytest.raises(RemoteEnvError, match=r"http://keydoor.*GET /spec"):
        agentgym.make("remote", url="http://keydoor", client=client)


def test_a_failed_connection_closes_the_client_it_opened(monkeypatch):
    opened, real_client = [], httpx.Client

    def client(**kwargs):
        answer = httpx.Response(200, json={"status": "ok"})
        opened.append(real_client(**kwargs, transport=httpx.MockTransport(lambda request: answer)))
        return opened[-1]

    monkeypatch.setattr(httpx, "Client", client)
    with pytest.raises(RemoteEnvError, match="GET /spec"):
        agentgym.make("remote", url="http://keydoor")
    assert len(opened) == 1 and opened[0].is_closed


def test_a_missing_url_says_what_to_pass():
    with pytest.raises(agentgym.AgentGymError, match="pass url="):
        agentgym.make("remote")


def test_an_unreachable_server_is_a_one_line_error(free_port):
    port = free_port()
    with pytest.raises(RemoteEnvError, match=f"127.0.0.1:{port}: ConnectError"):
        agentgym.make("remote", url=f"http://127.0.0.1:{port}", timeout=2)


@pytest.mark.slow
def test_eval_over_a_served_webshop_matches_eval_on_the_local_one(tmp_path, free_port):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "agentgym", "serve", "env", "--env", "webshop", "catalogue=small"]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until_ready(url, timeout=120, process=server)["env"] == "webshop"
        metrics = {}
        for name, env_args in (
            ("local", ["--env", "webshop", "env_kwargs.catalogue=small"]),
            ("remote", ["--env", "remote", f"env_kwargs.url={url}"]),
        ):
            out = tmp_path / name
            evaluation = [sys.executable, "-m", "agentgym", "eval", *env_args, "--policy", "expert"]
            evaluation += ["--split", "test", "--episodes", "5", "--out", str(out)]
            subprocess.run(evaluation, check=True, capture_output=True, timeout=300)
            metrics[name] = json.loads((out / "metrics.json").read_text())
            metrics[name].pop("wall_seconds", None)
        assert metrics["remote"]["success_rate"] == metrics["local"]["success_rate"] > 0
        assert metrics["remote"]["mean_score"] == metrics["local"]["mean_score"]
        assert metrics["remote"]["mean_steps"] == metrics["local"]["mean_steps"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_served_tool_calling_environment_brings_its_tools():
    from toy_envs import ToolKeyDoorEnv

    agentgym.register("test-tool-keydoor", "toy_envs:ToolKeyDoorEnv", max_episode_steps=20)
    try:
        client = TestClient(create_app("test-tool-keydoor"))
        remote = agentgym.make("remote", url="http://tools", client=client)
    finally:
        agentgym.deregister("test-tool-keydoor")
    assert remote.unwrapped.action_format == "tool_call"
    assert remote.unwrapped.tools == ToolKeyDoorEnv.tools
    remote.close()


def test_a_url_without_a_scheme_says_what_to_write():
    with pytest.raises(RemoteEnvError, match=r"no http:// or https:// scheme \(e.g. http://localhost:8001\)"):
        agentgym.make("remote", url="localhost:8001")


def test_a_server_with_an_api_key_serves_the_clients_that_send_it(toy_envs, monkeypatch):
    monkeypatch.delenv("AGENTGYM_API_KEY", raising=False)
    client = TestClient(create_app("test-keydoor", {}, api_key="s3cret"))
    with pytest.raises(agentgym.AgentGymError, match=r"refused GET /spec: missing or wrong API key"):
        agentgym.make("remote", url="http://keydoor", client=client)
    env = agentgym.make("remote", url="http://keydoor", client=client, api_key="s3cret")
    observation, _ = env.reset(seed=0)
    assert observation and env.step("take key")[0]
    env.close()
    monkeypatch.setenv("AGENTGYM_API_KEY", "s3cret")  # the key kept out of configs and run directories
    env = agentgym.make("remote", url="http://keydoor", client=client)
    assert env.reset(seed=0)[0] == observation
    env.close()


def test_after_the_server_closed_its_session_a_reset_starts_on_a_new_one(toy_envs):
    client = TestClient(create_app("test-keydoor", max_sessions=1, idle_timeout=0.0))
    env = agentgym.make("remote", url="http://keydoor", client=client)
    observation, _ = env.reset(seed=0, options={"task_id": 1})
    assert client.post("/sessions").status_code == 201  # takes the room of env's idle session
    with pytest.raises(agentgym.AgentGymError, match=r"no session \w+ \(closed"):
        env.step("take key")  # the episode's state went with the session: no retry
    assert env.reset(seed=0, options={"task_id": 1})[0] == observation
    assert env.step(env.unwrapped.expert_action())[4]["action_valid"]
    assert client.post("/sessions").status_code == 201  # again
    assert env.unwrapped.task_ids("test") == [1000, 1001, 1002, 1003, 1004]  # as an evaluation asks first
    env.close()
    assert client.get("/health").json()["sessions"] == 0


def test_an_engine_whose_idle_sessions_the_server_closed_plays_on(toy_envs):
    client = TestClient(create_app("test-keydoor", {"num_rooms": 5}, max_sessions=2, idle_timeout=0.0))
    served = {"url": "http://keydoor", "client": client}
    requests = [GroupRequest(task_id=t, split="test", seed=t) for t in (1000, 1001)]
    with RolloutEngine("remote", served, num_slots=2) as engine:
        runs = [engine.run(ExpertPolicy(), requests)]
        for _ in range(2):  # another client's sessions, in the room of the engine's idle ones
            assert client.post("/sessions").status_code == 201
        runs.append(engine.run(ExpertPolicy(), requests))  # (a restarted server forgets them all too)
    trajectories = [t for run in runs for group in run for t in group.trajectories]
    assert [t.error for t in trajectories] == [None] * 4 and all(t.won for t in trajectories)


class StuckEnv(KeyDoorEnv):
    """KeyDoor whose 'wait' waits for ``release`` (a step that outlasts the client's timeout)."""

    release = threading.Event()

    def step(self, action: str):
        if action == "wait":
            self.release.wait(timeout=60)
        return super().step(action)


@pytest.fixture
def live_stuck_server(serve_on_loopback, monkeypatch):
    monkeypatch.setattr(StuckEnv, "release", threading.Event())
    agentgym.register("test-stuck", StuckEnv, max_episode_steps=20)
    yield serve_on_loopback(create_app("test-stuck"))
    StuckEnv.release.set()
    agentgym.deregister("test-stuck")


def test_a_call_that_outlasts_the_clients_timeout_leaves_the_next_episode_a_new_session(live_stuck_server):
    env = agentgym.make("remote", url=live_stuck_server, timeout=1.0)
    observation, _ = env.reset(seed=0, options={"task_id": 1})
    with pytest.raises(RemoteEnvError, match="ReadTimeout"):
        env.step("wait")  # still running there, holding its session
    with pytest.raises(agentgym.AgentGymError, match=r"timed out.*reset\(\) starts a new"):
        env.step("take key")  # says so at once rather than waiting behind it
    assert env.reset(seed=0, options={"task_id": 1})[0] == observation  # not queued behind it either
    assert env.step(env.unwrapped.expert_action())[4]["action_valid"]
    # the stuck session left the server's table, to be closed there when its call ends
    assert httpx.get(f"{live_stuck_server}/health").json()["sessions"] == 1
    env.close()


@pytest.mark.parametrize("url", ["http://localhost:port", "http://localhost:8001:8001"])
def test_a_malformed_url_is_a_one_line_error(url):
    with pytest.raises(RemoteEnvError, match=rf"url='{url}' is not a valid address: Invalid port"):
        agentgym.make("remote", url=url)


def test_a_key_read_with_a_trailing_newline_reaches_a_server_given_the_same(serve_on_loopback, monkeypatch):
    key = "s3cret\n"  # a secret file's line, as environment variables often carry it
    monkeypatch.setenv("AGENTGYM_API_KEY", key)
    env = agentgym.make("remote", url=serve_on_loopback(create_app("test-keydoor", api_key=key)))
    assert env.reset(seed=0)[0]
    env.close()
