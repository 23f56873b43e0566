"""Waiting for a server: its health answer, or a one-line error as soon as it cannot come."""

import http.server
import subprocess
import sys
import threading

import pytest

from agentgym.tools.servers import ServerNotReady, auth_headers, client_api_key, wait_until_ready


def test_a_server_process_that_exits_is_reported_at_once(free_port):
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(ServerNotReady, match="exited with code 3"):
        wait_until_ready(f"http://127.0.0.1:{free_port()}", timeout=30, process=process)


def test_a_server_that_never_answers_times_out_naming_its_health_url(free_port):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerNotReady, match=rf"{url}/health did not become ready within 0\.3 s"):
        wait_until_ready(url + "/retrieve", timeout=0.3)


class WebPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>hi</html>")

    def log_message(self, *args):
        pass


def test_another_service_answering_on_the_port_is_not_taken_for_the_server():
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebPage) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{other.server_address[1]}"
        try:
            with pytest.raises(ServerNotReady, match=r"0\.3 s \(last: HTTP 200 that is not JSON: '<html>hi"):
                wait_until_ready(url, timeout=0.3)
        finally:
            other.shutdown()


def test_a_clients_key_is_sent_without_surrounding_whitespace(monkeypatch):
    monkeypatch.setenv("AGENTGYM_API_KEY", "s3cret\n")  # a header value cannot carry it, and HTTP drops it
    assert auth_headers(client_api_key(None)) == {"Authorization": "Bearer s3cret"}
    assert auth_headers(client_api_key(" s3cret ")) == {"Authorization": "Bearer s3cret"}
    monkeypatch.setenv("AGENTGYM_API_KEY", " ")
    assert auth_headers(client_api_key(None)) == {}
