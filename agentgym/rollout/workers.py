"""Environment pools: many environment instances ("slots") stepped in parallel, in threads or processes.

``pool.submit(slot, fn, *args)`` runs ``fn(env, *args)`` next to the slot's environment and returns a
:class:`concurrent.futures.Future`; ``pool.result(slot, future)`` waits for it. ``fn`` must be a
module-level function (process pools pickle it).

- :class:`ThreadEnvPool`: one daemon thread per slot; for light or I/O-bound environments.
- :class:`ProcessEnvPool`: slots spread over ``num_processes`` worker processes; calls for one process
  run one after the other there, processes run in parallel. For CPU-bound environments.

Failures never hang the caller: a call that exceeds the timeout, or whose process dies, raises
:class:`EnvWorkerError`; the worker is restarted with fresh environments and the ``generation`` of
each affected slot increases, so the caller knows that the episodes there were lost. Calls queued
for a slot before its restart fail instead of running on the fresh environment.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import gymnasium

from agentgym.core import AgentGymError

EnvFactory = Callable[[], gymnasium.Env]


class EnvWorkerError(RuntimeError):
    """An environment call failed: the environment raised, hung past its timeout, or its process died."""


_CLOSED = "the environment pool was closed"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class _Lane:
    """A daemon thread that executes requests one at a time and runs ``on_stop`` when stopped."""

    def __init__(self, execute: Callable[[Any], Any], name: str, on_stop: Callable[[], None] = lambda: None):
        self._execute = execute
        self._on_stop = on_stop
        self._requests: queue.SimpleQueue[tuple[Any, Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, request: Any) -> Future:
        future: Future = Future()
        self._requests.put((request, future))
        return future

    def stop(self) -> None:
        """Stops after the requests already queued."""
        self._requests.put(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        while (item := self._requests.get()) is not None:
            request, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._execute(request))
            except BaseException as error:
                future.set_exception(
                    error if isinstance(error, EnvWorkerError) else EnvWorkerError(_describe(error))
                )
        with contextlib.suppress(Exception):
            self._on_stop()


class ThreadEnvPool:
    """Each slot owns a thread, and the thread its environment. A hung call's thread cannot be
    killed: it is abandoned (it is a daemon) with its environment, which it closes if the call ever
    returns, and the slot gets a new thread and environment."""

    def __init__(self, factory: EnvFactory, num_slots: int, timeout: float | None = None):
        self.factory = factory
        self.timeout = timeout
        self.generation = [0] * num_slots
        self.restarts: list[str] = []
        self._lanes = [self._new_lane(slot) for slot in range(num_slots)]

    @property
    def num_slots(self) -> int:
        return len(self._lanes)

    def _new_lane(self, slot: int) -> _Lane:
        # The environment belongs to its lane, so an abandoned lane's late call (a slow first
        # make, say) can only touch its own environment, never the one that replaced it.
        env: gymnasium.Env | None = None

        def execute(request: tuple[Callable[..., Any], tuple, int]) -> Any:
            nonlocal env
            fn, args, submitted_generation = request
            if submitted_generation != self.generation[slot]:
                raise EnvWorkerError("the environment was restarted; this episode's state is gone")
            if env is None:
                env = self.factory()
            return fn(env, *args)

        def close() -> None:
            if env is not None:
                env.close()

        return _Lane(execute, name=f"agentgym-env-{slot}", on_stop=close)

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Future:
        future = self._lanes[slot].put((fn, args, self.generation[slot]))
        # One call per slot is outstanding at a time, so a call starts when it is submitted.
        future.deadline = None if self.timeout is None else time.monotonic() + self.timeout  # type: ignore[attr-defined]
        return future

    def result(self, slot: int, future: Future) -> Any:
        deadline = getattr(future, "deadline", None)
        try:
            return future.result(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            self.restart(slot, f"call timed out after {self.timeout:g}s")
            raise EnvWorkerError(f"environment call timed out after {self.timeout:g}s") from None

    def restart(self, slot: int, reason: str) -> None:
        self._lanes[slot].stop()
        self.generation[slot] += 1
        self.restarts.append(f"slot {slot}: {reason}")
        self._lanes[slot] = self._new_lane(slot)

    def close(self) -> None:
        for lane in self._lanes:
            lane.stop()
        deadline = time.monotonic() + (self.timeout if self.timeout is not None else 60.0)
        for lane in self._lanes:  # each lane closes its environment once its call in progress ends
            lane.join(max(0.0, deadline - time.monotonic()))


def _process_main(connection: Any, factory: EnvFactory, num_envs: int) -> None:
    try:
        envs = [factory() for _ in range(num_envs)]
    except BaseException as error:
        connection.send(("error", _describe(error) + "\n" + traceback.format_exc()))
        return
    connection.send(("ok", None))
    while True:
        try:
            message = connection.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if message is None:
            break
        index, fn, args = message
        try:
            connection.send(("ok", fn(envs[index], *args)))
        except BaseException as error:
            connection.send(("error", _describe(error)))
    for env in envs:
        with contextlib.suppress(Exception):
            env.close()


class _Process:
    """One worker process hosting the environments of ``slots``, fed by one lane thread."""

    def __init__(self, pool: ProcessEnvPool, slots: list[int], name: str):
        self.pool = pool
        self.slots = slots
        self.name = name
        # Guards the pipe and the process against close() racing the lane: a request written while
        # close() writes its stop message would garble both, and a restart after close() would leave
        # a fresh worker running that nothing ever stops.
        self._lock = threading.Lock()
        self.closed = False
        self._spawn()
        self.lane = _Lane(self._execute, name=f"{name}-lane")

    def _spawn(self) -> None:
        context = multiprocessing.get_context(self.pool.start_method)
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_process_main,
            args=(child, self.pool.factory, len(self.slots)),
            name=self.name,
            daemon=True,
        )
        self.process.start()
        child.close()
        if not self.connection.poll(self.pool.start_timeout):
            self.process.kill()
            self.process.join(timeout=5)  # reaped, not left a zombie
            self.connection.close()
            raise AgentGymError(
                f"environment worker {self.name} did not start within {self.pool.start_timeout:g}s"
            )
        try:
            status, detail = self.connection.recv()
        except EOFError:
            status, detail = "error", f"the process exited with code {self.process.exitcode}"
        if status != "ok":
            raise AgentGymError(f"environment worker {self.name} could not create its environment: {detail}")

    def _execute(self, request: tuple[int, Callable[..., Any], tuple, int]) -> Any:
        index, fn, args, submitted_generation = request
        if submitted_generation != self.pool.generation[self.slots[index]]:
            raise EnvWorkerError("the environment worker was restarted; this episode's state is gone")
        timeout = self.pool.timeout
        try:
            with self._lock:
                if self.closed:
                    raise EnvWorkerError(_CLOSED)
                self.connection.send((index, fn, args))
            if timeout is not None and not self.connection.poll(timeout):
                self._restart(f"call timed out after {timeout:g}s")
                raise EnvWorkerError(f"environment call timed out after {timeout:g}s")
            status, value = self.connection.recv()
        except (EOFError, OSError) as error:
            if self.closed:  # close() stopped the worker under this call
                raise EnvWorkerError(_CLOSED) from None
            code = self.process.exitcode
            self._restart(f"process died ({_describe(error)}, exit code {code})")
            raise EnvWorkerError(f"environment worker process died (exit code {code})") from None
        if status != "ok":
            raise EnvWorkerError(value)
        return value

    def _restart(self, reason: str) -> None:
        with self._lock:
            self.process.kill()
            self.process.join(timeout=5)
            for slot in self.slots:
                self.pool.generation[slot] += 1
            self.pool.restarts.append(f"{self.name}: {reason}")
            if not self.closed:
                self._spawn()

    def close(self) -> None:
        """Stops the worker; calls still queued fail at once instead of reaching it."""
        with self._lock:
            self.closed = True
            with contextlib.suppress(OSError):
                self.connection.send(None)
        self.lane.stop()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


class ProcessEnvPool:
    """Slots spread round-robin over ``num_processes`` worker processes."""

    def __init__(
        self,
        factory: EnvFactory,
        num_slots: int,
        num_processes: int,
        timeout: float | None = None,
        start_method: str = "forkserver",
        start_timeout: float = 300.0,
    ):
        self.factory = factory
        self.timeout = timeout
        self.start_method = start_method
        self.start_timeout = start_timeout
        self.generation = [0] * num_slots
        self.restarts: list[str] = []
        num_processes = max(1, min(num_processes, num_slots))
        self._placement = [(slot % num_processes, slot // num_processes) for slot in range(num_slots)]
        self._processes: list[_Process] = []
        try:
            for p in range(num_processes):
                slots = list(range(p, num_slots, num_processes))
                self._processes.append(_Process(self, slots, name=f"agentgym-env-proc-{p}"))
        except BaseException:
            self.close()
            raise

    @property
    def num_slots(self) -> int:
        return len(self.generation)

    def submit(self, slot: int, fn: Callable[..., Any], *args: Any) -> Future:
        process_index, env_index = self._placement[slot]
        return self._processes[process_index].lane.put((env_index, fn, args, self.generation[slot]))

    def result(self, slot: int, future: Future) -> Any:
        return future.result()  # the process lane enforces the timeout itself

    def close(self) -> None:
        for process in self._processes:
            process.close()


EnvPool = ThreadEnvPool | ProcessEnvPool
