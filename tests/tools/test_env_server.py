"""The environment server's protocol, through FastAPI's test client."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from toy_envs import KeyDoorEnv

import agentgym
from agentgym.tools.env_server import create_app, plain, serve


@pytest.fixture
def http(toy_envs):
    return TestClient(create_app("test-keydoor", {"num_rooms": 5}, max_sessions=2, idle_timeout=3600))


def open_session(http) -> str:
    response = http.post("/sessions")
    assert response.status_code == 201
    return response.json()["session"]


def test_a_session_plays_the_same_episode_as_a_local_instance(http):
    local = agentgym.make("test-keydoor", num_rooms=5)
    session = open_session(http)
    options = {"task_id": 2, "split": "test"}
    observation, info = local.reset(seed=4, options=options)
    served = http.post(f"/sessions/{session}/reset", json={"seed": 4, "options": options}).json()
    assert served == {"observation": observation, "info": plain(info)}  # JSON: the anchor tuple as a list
    while True:
        action = local.unwrapped.expert_action()
        assert http.get(f"/sessions/{session}/expert").json() == {"action": action}
        observation, reward, terminated, truncated, info = local.step(action)
        served = http.post(f"/sessions/{session}/step", json={"action": action}).json()
        assert served == {
            "observation": observation,
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            "info": plain(info),
        }
        if terminated or truncated:
            break
    assert info["won"] is True
    tasks = http.get(f"/sessions/{session}/tasks", params={"split": "test"}).json()
    assert tasks == {"task_ids": list(local.unwrapped.task_ids("test"))}


def test_spec_and_health_describe_what_is_served(http):
    spec = http.get("/spec").json()
    assert spec == {
        "env": "test-keydoor",
        "env_kwargs": {"num_rooms": 5},
        "options": {"num_rooms": 5, "tasks_per_split": 5, "key_reward": 0.0},
        "instructions": "Actions: 'go <room>', 'take key', 'open door'.",
        "action_format": "tags",
        "tools": None,
        "splits": ["train", "test"],
        "max_episode_steps": 20,
    }
    assert http.get("/health").json() == {"status": "ok", "env": "test-keydoor", "sessions": 0}
    open_session(http)
    assert http.get("/health").json()["sessions"] == 1
    shorter = TestClient(create_app("test-keydoor", {"max_episode_steps": 6})).get("/spec").json()
    assert shorter["max_episode_steps"] == 6  # the limit the served instances were made with


def test_requests_the_environment_refuses_get_a_422_and_the_session_lives_on(http):
    session = open_session(http)
    before_reset = http.post(f"/sessions/{session}/step", json={"action": "take key"})
    assert before_reset.status_code == 422 and "reset" in before_reset.json()["error"]
    unknown_split = http.post(f"/sessions/{session}/reset", json={"options": {"split": "dev"}})
    assert unknown_split.status_code == 422 and "dev" in unknown_split.json()["error"]
    assert http.get(f"/sessions/{session}/tasks", params={"split": "dev"}).status_code == 422
    bad_body = http.post(f"/sessions/{session}/step", json={"act": "take key"})
    assert (
        bad_body.status_code == 422
        and "malformed request: action: Field required" in bad_body.json()["error"]
    )
    negative_seed = http.post(f"/sessions/{session}/reset", json={"seed": -1})
    assert negative_seed.status_code == 422 and "seed" in negative_seed.json()["error"]
    assert http.post(f"/sessions/{session}/reset", json={"seed": 0}).status_code == 200
    assert http.post(f"/sessions/{session}/step", json={"action": "take key"}).status_code == 200


def test_a_session_whose_first_reset_was_refused_plays_on(http):
    session = open_session(http)
    refused = http.post(f"/sessions/{session}/reset", json={"options": {"task_id": "no such task"}})
    assert refused.status_code == 422
    http.post(f"/sessions/{session}/reset", json={"seed": 0, "options": {"task_id": 1}})
    step = http.post(f"/sessions/{session}/step", json={"action": "look around"})
    assert step.status_code == 200 and step.json()["info"]["task_id"] == 1


def test_unknown_and_closed_sessions_are_404(http):
    assert http.post("/sessions/nope/reset", json={}).status_code == 404
    session = open_session(http)
    assert http.delete(f"/sessions/{session}").json() == {"closed": True}
    gone = http.post(f"/sessions/{session}/step", json={"action": "take key"})
    assert gone.status_code == 404 and "closed" in gone.json()["error"]
    assert http.delete(f"/sessions/{session}").status_code == 404


def test_sessions_beyond_the_limit_are_refused_until_one_closes(http):
    first, _ = open_session(http), open_session(http)
    full = http.post("/sessions")
    assert full.status_code == 429 and "2 sessions" in full.json()["error"]
    http.delete(f"/sessions/{first}")
    open_session(http)


def test_idle_sessions_make_room_for_new_ones(toy_envs):
    http = TestClient(create_app("test-keydoor", max_sessions=1, idle_timeout=0.0))
    idle = open_session(http)
    open_session(http)
    assert http.post(f"/sessions/{idle}/reset", json={}).status_code == 404


def test_a_session_with_a_call_in_flight_is_not_idle(toy_envs):
    http = TestClient(create_app("test-faulty", max_sessions=1, idle_timeout=0.0))
    busy = open_session(http)
    http.post(f"/sessions/{busy}/reset", json={"seed": 0})
    with ThreadPoolExecutor(1) as pool:
        napping = pool.submit(http.post, f"/sessions/{busy}/step", json={"action": "nap"})
        time.sleep(0.3)
        assert http.post("/sessions").status_code == 429  # not closed under its running call
        assert napping.result().status_code == 200
    open_session(http)  # idle now, so it makes room


def test_a_session_is_idle_from_the_end_of_its_last_call_not_its_start(toy_envs):
    http = TestClient(create_app("test-faulty", max_sessions=1, idle_timeout=0.5))
    session = open_session(http)
    http.post(f"/sessions/{session}/reset", json={"seed": 0})
    assert http.post(f"/sessions/{session}/step", json={"action": "nap"}).status_code == 200  # 1 s
    assert http.post("/sessions").status_code == 429  # its client has only just been answered
    assert http.post(f"/sessions/{session}/step", json={"action": "take key"}).status_code == 200


def test_stopping_the_server_closes_the_open_sessions(toy_envs, monkeypatch):
    closed = []
    monkeypatch.setattr(KeyDoorEnv, "close", lambda env: closed.append(env))
    with TestClient(create_app("test-keydoor")) as http:
        open_session(http), open_session(http)
        closed.clear()  # the probe made at start
    assert len(closed) == 2


def test_an_environment_failure_is_a_500_and_other_sessions_go_on(toy_envs):
    http = TestClient(create_app("test-faulty"), raise_server_exceptions=False)
    failing, healthy = open_session(http), open_session(http)
    for session in (failing, healthy):
        http.post(f"/sessions/{session}/reset", json={"seed": 0})
    crash = http.post(f"/sessions/{failing}/step", json={"action": "raise"})
    assert crash.status_code == 500 and "RuntimeError: boom" in crash.json()["error"]
    assert http.post(f"/sessions/{healthy}/step", json={"action": "take key"}).status_code == 200


def test_bad_environment_options_fail_at_start(toy_envs):
    with pytest.raises(agentgym.AgentGymError, match="unknown option"):
        create_app("test-keydoor", {"rooms": 5})


@pytest.mark.parametrize("env_id", ["webshop", "alfworld"])
def test_the_expert_before_a_reset_is_refused_not_a_failure(env_id):
    http = TestClient(create_app(env_id))
    answer = http.get(f"/sessions/{open_session(http)}/expert")
    assert answer.status_code == 422 and "call reset() before expert_action()" in answer.json()["error"]


def test_with_an_api_key_only_the_health_check_answers_without_it(toy_envs):
    http = TestClient(create_app("test-keydoor", {"num_rooms": 5}, api_key="s3cret"))
    assert http.get("/health").status_code == 200  # so that wait_until_ready needs no key
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        refused = http.post("/sessions", headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {"error": "missing or wrong API key: send 'Authorization: Bearer <key>'"}
    assert http.get("/spec", headers={"Authorization": "Bearer s3cret"}).status_code == 200


class TogetherEnv(KeyDoorEnv):
    """KeyDoor whose steps wait for one another: they pass only when ``barrier``'s parties all step at once."""

    barrier: threading.Barrier | None = None

    def step(self, action: str):
        self.barrier.wait()
        return super().step(action)


@pytest.fixture
def registered():
    """A function registering an environment class for the test's duration; returns its id."""
    ids = []

    def register(env_id: str, env_class: type) -> str:
        agentgym.register(env_id, env_class, max_episode_steps=20)
        ids.append(env_id)
        return env_id

    yield register
    for env_id in ids:
        agentgym.deregister(env_id)


def test_more_sessions_than_the_thread_pool_default_step_at_once(serve_on_loopback, registered, monkeypatch):
    parties = 45  # more than the 40 threads Starlette runs sync routes on by default
    monkeypatch.setattr(TogetherEnv, "barrier", threading.Barrier(parties, timeout=10))
    url = serve_on_loopback(create_app(registered("test-together", TogetherEnv), max_sessions=64))
    with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=parties)) as http:
        sessions = [open_session(http) for _ in range(parties)]
        for session in sessions:
            http.post(f"/sessions/{session}/reset", json={"seed": 0})
        with ThreadPoolExecutor(parties) as pool:
            steps = list(
                pool.map(lambda s: http.post(f"/sessions/{s}/step", json={"action": "take key"}), sessions)
            )
    assert [step.status_code for step in steps] == [200] * parties, steps[0].text


class SlowToMakeEnv(KeyDoorEnv):
    """KeyDoor whose making waits for ``gate`` when there is one (a browser or a container starting)."""

    gate: threading.Event | None = None
    making = threading.Event()

    def __init__(self, **kwargs):
        if self.gate is not None:
            SlowToMakeEnv.making.set()
            assert self.gate.wait(timeout=30)
        super().__init__(**kwargs)


@pytest.fixture
def slow_to_make(registered, monkeypatch):
    """The app of a server of SlowToMakeEnv, and the gate that holds its next instances back."""
    gate = threading.Event()
    monkeypatch.setattr(SlowToMakeEnv, "making", threading.Event())
    yield create_app(registered("test-slow-to-make", SlowToMakeEnv), max_sessions=2, idle_timeout=3600), gate
    gate.set()


def test_a_session_being_opened_holds_up_no_other_sessions_calls(slow_to_make, monkeypatch):
    app, gate = slow_to_make
    http = TestClient(app)
    session = open_session(http)
    http.post(f"/sessions/{session}/reset", json={"seed": 0})
    monkeypatch.setattr(SlowToMakeEnv, "gate", gate)
    with ThreadPoolExecutor(2) as pool:
        opening = pool.submit(http.post, "/sessions")
        assert SlowToMakeEnv.making.wait(timeout=10)
        stepping = pool.submit(http.post, f"/sessions/{session}/step", json={"action": "take key"})
        try:
            assert stepping.result(timeout=10).status_code == 200  # while the other is being made
            assert http.get("/health").json()["sessions"] == 1
            assert http.post("/sessions").status_code == 429  # the one being made counts
        finally:
            gate.set()
        assert opening.result(timeout=10).status_code == 201


def test_a_session_made_while_the_server_stops_is_closed(slow_to_make, monkeypatch):
    app, gate = slow_to_make
    closed = []

    def close(env):  # the first session closed by the stopping server lets the one being made finish
        closed.append(env)
        gate.set()

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            pass

    monkeypatch.setattr(SlowToMakeEnv, "close", close)
    http = TestClient(app)
    open_session(http)
    monkeypatch.setattr(SlowToMakeEnv, "gate", gate)
    with ThreadPoolExecutor(1) as pool:
        opening = pool.submit(http.post, "/sessions")
        assert SlowToMakeEnv.making.wait(timeout=10)
        anyio.run(start_and_stop)  # the server stops while the second session is being made
        assert opening.result(timeout=10).status_code == 503
    assert len(closed) == 2


class UnmakeableEnv(KeyDoorEnv):
    def __init__(self, **kwargs):
        raise FileNotFoundError("no data under /data/keydoor")


def test_an_environment_that_fails_to_make_at_start_is_a_one_line_error(registered):
    with pytest.raises(
        agentgym.AgentGymError,
        match=r"cannot serve test-unmakeable: FileNotFoundError: no data under /data/keydoor",
    ):
        create_app(registered("test-unmakeable", UnmakeableEnv))
    with pytest.raises(agentgym.AgentGymError, match=r"cannot serve test-keydoor: TypeError: .*integer"):
        create_app("test-keydoor", {"max_episode_steps": "ten"})


def test_a_key_with_surrounding_whitespace_is_the_key_without_it(serve_on_loopback, toy_envs):
    url = serve_on_loopback(create_app("test-keydoor", api_key="s3cret\n"))  # as read from a secret file
    # HTTP drops a header value's surrounding whitespace: the key as sent is the key without it
    assert httpx.get(f"{url}/spec", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert httpx.get(f"{url}/spec", headers={"Authorization": "Bearer s3cre"}).status_code == 401
    with pytest.raises(agentgym.AgentGymError, match="the API key is blank"):
        create_app("test-keydoor", api_key=" \n")  # not a server every request is refused by


def test_the_authorization_scheme_is_case_insensitive(toy_envs):
    http = TestClient(create_app("test-keydoor", api_key="s3cret"))
    assert http.get("/spec", headers={"authorization": "bearer s3cret"}).status_code == 200  # RFC 9110 11.1
    assert http.get("/spec", headers={"authorization": "BEARER s3cret"}).status_code == 200
    assert http.get("/spec", headers={"authorization": "Basic s3cret"}).status_code == 401
    assert http.get("/spec", headers={"authorization": "bearer S3CRET"}).status_code == 401


def test_the_server_keeps_idle_connections_open_longer_than_clients_do(toy_envs, monkeypatch):
    # else a request sent as the server closes the connection it came on is lost (a step, never retried)
    import uvicorn

    run = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: run.update(options))
    serve("test-keydoor")
    assert run["timeout_keep_alive"] > httpx.Limits().keepalive_expiry  # what the remote env's client keeps
