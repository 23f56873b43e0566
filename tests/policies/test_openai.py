"""OpenAIPolicy against a real HTTP server on loopback that misbehaves on purpose."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentgym.core import AgentGymError
from agentgym.policies import SamplingParams, make_policy
from agentgym.policies.openai import OpenAIPolicy


class ChatServer:
    """Answers "<action>CONTENT</action>" and, like vLLM, leaves out the stop string it stopped at.

    ``stop_reason`` names that string as vLLM does; OpenAI's own API does not (``stop_reason=False``).
    ``stop_field="matched_stop"`` names it as SGLang does, with the EOS token's id when it ended there.
    """

    def __init__(
        self,
        failures_before_success: int = 0,
        status: int = 503,
        stop_reason: bool = True,
        failure_body: bytes = b'{"error": "busy"}',
        stop_field: str = "stop_reason",
        failure_headers: dict[str, str] | None = None,
    ):
        self.requests: list[dict] = []
        self.failures_left = failures_before_success
        self.status = status
        self.failure_body = failure_body
        self.stop_reason = stop_reason
        self.stop_field = stop_field
        self.failure_headers = failure_headers or {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                if server.failures_left > 0:
                    server.failures_left -= 1
                    self.send_response(server.status)
                    for name, value in server.failure_headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(server.failure_body)
                    return
                text = "<action>" + body["messages"][-1]["content"].upper() + "</action>"
                # Generation ends at the first stop string, which the text leaves out; else at EOS.
                hits = [(text.find(stop), stop) for stop in body.get("stop", []) if stop in text]
                cut, matched = min(hits) if hits else (len(text), None)
                choice = {"message": {"role": "assistant", "content": text[:cut]}, "finish_reason": "stop"}
                if server.stop_reason:
                    eos = 2 if server.stop_field == "matched_stop" else None  # SGLang names the EOS id
                    choice[server.stop_field] = matched if matched is not None else eos
                answer = {"choices": [choice]}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server_factory():
    servers = []

    def make(**kwargs):
        servers.append(ChatServer(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_batch_in_order_with_sampling_fields_and_key(server_factory, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    server = server_factory()
    policy = make_policy(f"openai:{server.url}#my-model")
    prompts = [[{"role": "user", "content": word}] for word in ("a", "b", "c")]
    completions = policy.generate(
        prompts, SamplingParams(temperature=0.3, max_tokens=7, stop=["</action>"], seed=1)
    )
    # The server left the stop string out; the completion keeps it, as SamplingParams.stop says.
    assert [c.text for c in completions] == ["<action>A</action>", "<action>B</action>", "<action>C</action>"]
    # The API names tokens by text only: no token ids, so no log-probs that would not line up.
    assert completions[0].token_ids == [] and completions[0].logprobs == []
    body = server.requests[0]["body"]
    assert (
        server.requests[0]["path"] == "/v1/chat/completions"
        and server.requests[0]["auth"] == "Bearer sk-test"
    )
    assert body["model"] == "my-model" and body["temperature"] == 0.3 and body["max_tokens"] == 7
    assert body["stop"] == ["</action>"] and len({r["body"]["seed"] for r in server.requests}) == 3


@pytest.mark.parametrize(
    ("stop_reason", "stop", "text"),
    [
        (True, ["</action>", "\n"], "<action>X</action>"),  # vLLM names the string it stopped at
        (True, ["never"], "<action>X</action>"),  # it stopped at EOS: nothing to put back
        (False, ["</action>"], "<action>X</action>"),  # one stop string: that one
        (False, ["</action>", "\n"], "<action>X"),  # several, and the server does not say which
    ],
)
def test_the_stop_string_the_server_left_out_is_put_back(server_factory, stop_reason, stop, text):
    server = server_factory(stop_reason=stop_reason)
    [completion] = OpenAIPolicy(server.url, "m").generate(
        [[{"role": "user", "content": "x"}]], SamplingParams(stop=stop)
    )
    assert completion.text == text and completion.finish_reason == "stop"


@pytest.mark.parametrize(
    ("stop", "text"),
    [
        (["</action>", "\n"], "<action>X</action>"),  # the string SGLang names is put back
        (["never"], "<action>X</action>"),  # it names the EOS token: nothing to put back
    ],
)
def test_the_stop_string_sglang_names_in_matched_stop_is_the_one_put_back(server_factory, stop, text):
    server = server_factory(stop_field="matched_stop")
    [completion] = OpenAIPolicy(server.url, "m").generate(
        [[{"role": "user", "content": "x"}]], SamplingParams(stop=stop)
    )
    assert completion.text == text and completion.finish_reason == "stop"


def test_a_seeded_batch_gives_each_prompt_its_own_seed_and_repeats_them(server_factory):
    # A server seeds each request alone: one seed for all would sample a group's members alike.
    server = server_factory()
    policy = OpenAIPolicy(server.url, "m")
    group = [[{"role": "user", "content": "x"}]] * 4
    sampling = SamplingParams(temperature=1.0, seed=7)
    policy.generate(group, sampling)
    first = sorted(request["body"]["seed"] for request in server.requests)
    server.requests.clear()
    policy.generate(group, sampling)
    assert len(set(first)) == 4 and sorted(r["body"]["seed"] for r in server.requests) == first


def test_the_seeds_of_consecutive_batch_seeds_do_not_overlap(server_factory):
    """The rollout engine seeds turn t with seed + t: were prompt i sent seed + i, prompt i + 1 of
    turn t - 1 and prompt i of turn t would sample alike (a group's members in different waves)."""
    server = server_factory()
    policy = OpenAIPolicy(server.url, "m")
    sent = []
    for turn_seed in (7, 8):
        server.requests.clear()
        policy.generate(
            [[{"role": "user", "content": "x"}]] * 4, SamplingParams(temperature=1.0, seed=turn_seed)
        )
        sent.append({request["body"]["seed"] for request in server.requests})
    assert len(sent[0]) == len(sent[1]) == 4 and not sent[0] & sent[1]


def test_retries_busy_answers_then_succeeds(server_factory):
    server = server_factory(failures_before_success=2, status=503)
    policy = OpenAIPolicy(server.url, "m", max_retries=3, backoff=0.01)
    [completion] = policy.generate([[{"role": "user", "content": "x"}]], SamplingParams())
    assert completion.text == "<action>X</action>" and len(server.requests) == 3


def test_a_rate_limited_retry_waits_as_long_as_retry_after_asks(server_factory, monkeypatch):
    waits = []
    monkeypatch.setattr("agentgym.policies.openai.time.sleep", waits.append)
    server = server_factory(failures_before_success=2, status=429, failure_headers={"Retry-After": "7"})
    policy = OpenAIPolicy(server.url, "m", max_retries=3, backoff=0.01)
    [completion] = policy.generate([[{"role": "user", "content": "x"}]], SamplingParams())
    assert completion.text == "<action>X</action>" and waits == [7.0, 7.0]


def test_gives_up_after_the_retries_and_does_not_retry_client_errors(server_factory):
    busy = server_factory(failures_before_success=10, status=503)
    with pytest.raises(AgentGymError, match="failed after 3 tries"):
        OpenAIPolicy(busy.url, "m", max_retries=2, backoff=0.01).generate(
            [[{"role": "user", "content": "x"}]], SamplingParams()
        )
    bad = server_factory(failures_before_success=10, status=400)
    with pytest.raises(AgentGymError, match="answered 400"):
        OpenAIPolicy(bad.url, "m", max_retries=2, backoff=0.01).generate(
            [[{"role": "user", "content": "x"}]], SamplingParams()
        )
    assert len(bad.requests) == 1


def test_an_answer_that_is_not_json_is_a_clean_error(server_factory):
    # e.g. a base URL that reaches a web page instead of the API
    page = server_factory(failures_before_success=10, status=200, failure_body=b"<html>hello</html>")
    with pytest.raises(AgentGymError, match="did not answer JSON: <html>hello</html>"):
        OpenAIPolicy(page.url, "m", max_retries=2, backoff=0.01).generate(
            [[{"role": "user", "content": "x"}]], SamplingParams()
        )


def test_unreachable_server_times_out_cleanly():
    policy = OpenAIPolicy("http://127.0.0.1:9/v1", "m", max_retries=1, backoff=0.01, timeout=0.5)
    with pytest.raises(AgentGymError, match="failed after 2 tries"):
        policy.generate([[{"role": "user", "content": "x"}]], SamplingParams())
