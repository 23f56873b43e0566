"""Waiting for a server: its health answer, or a one-line error as soon as it cannot come."""

import subprocess
import sys

import pytest

from agentgym.tools.servers import ServerNotReady, wait_until_ready


def test_a_server_process_that_exits_is_reported_at_once(free_port):
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(ServerNotReady, match="exited with code 3"):
        wait_until_ready(f"http://127.0.0.1:{free_port()}", timeout=30, process=process)


def test_a_server_that_never_answers_times_out_naming_its_health_url(free_port):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerNotReady, match=rf"{url}/health did not become ready within 0\.3 s"):
        wait_until_ready(url + "/retrieve", timeout=0.3)
