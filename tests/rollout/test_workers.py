"""Environment pools: a restarted slot's late calls never reach the environment that replaced it."""

import threading
import time

import pytest

from agentgym.rollout.workers import EnvWorkerError, ThreadEnvPool


class SlowFirstEnv:
    """Records which instance served each call; the first instance takes a while to make."""

    made = 0

    def __init__(self):
        self.number = SlowFirstEnv.made
        SlowFirstEnv.made += 1
        if self.number == 0:
            time.sleep(0.6)
        self.closed = threading.Event()

    def close(self):
        self.closed.set()


def which(env):
    return env


def test_a_call_abandoned_while_its_environment_was_made_never_replaces_the_fresh_one():
    SlowFirstEnv.made = 0
    pool = ThreadEnvPool(SlowFirstEnv, num_slots=1, timeout=0.2)
    with pytest.raises(EnvWorkerError, match="timed out"):
        pool.result(0, pool.submit(0, which))
    fresh = pool.result(0, pool.submit(0, which))
    assert fresh.number == 1 and pool.generation[0] == 1
    time.sleep(0.8)  # the abandoned call has made instance 0 by now
    assert pool.result(0, pool.submit(0, which)) is fresh
    assert SlowFirstEnv.made == 2
    pool.close()
    assert fresh.closed.is_set()
