"""Run many independent tasks (one per FOV, or per chunk of traces) and stream what happens.

Every executor has one method, `map_unordered(task, items, on_event=..., cancel=...)`, that
yields an `Outcome` per item as items finish, in completion order. ``task(item, context)`` is a
picklable top-level function; ``context.send(event)`` forwards an event to `on_event`, which
always runs in the caller's thread, and ``context.cancel`` is the token the task checks every
frame. Scheduling is dynamic: a free worker takes the next item. After cancellation no queued
item starts; running items stop at their next check and are reported as cancelled.

- `SerialExecutor`: in the caller's thread, deterministic, for debugging.
- `ThreadExecutor`: a thread pool; fine when the work releases the GIL.
- `ProcessExecutor`: spawned worker processes that live for the whole executor (one pool per
  run). Each worker talks to the caller through its own pipe, so a worker that dies (segfault,
  ``kill -9``, out of memory) fails only the item it was running and is replaced.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import connection, get_context
from multiprocessing.context import SpawnProcess
from typing import Any, Generic, Literal, TypeVar

from fovflow.errors import Cancelled, ConfigError
from fovflow.workflow.cancel import CancelToken

T = TypeVar("T")
R = TypeVar("R")
OnEvent = Callable[[Any], None]
_POLL_S = 0.05  # how often the caller's thread looks at the cancel token while waiting
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "OPENCV_FOR_THREADS_NUM")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """How one item ended: ``ok`` with its `result`, ``cancelled``, or failed with `error`."""

    item: T
    ok: bool
    cancelled: bool = False
    result: R | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0


class TaskContext:
    """What a running task gets besides its item: a way to send events, and the cancel token."""

    def __init__(self, send: OnEvent, cancel: CancelToken) -> None:
        self.send = send
        self.cancel = cancel


Task = Callable[[T, TaskContext], R]


class Executor:
    """Common life cycle: use as a context manager; `shutdown()` releases the workers."""

    def __init__(self, n_workers: int = 1, max_in_flight: int | None = None) -> None:
        if n_workers < 1:
            raise ConfigError(f"n_workers must be at least 1, not {n_workers}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ConfigError(f"batch size must be at least 1, not {max_in_flight}")
        self.n_workers = n_workers
        self.max_in_flight = min(n_workers, max_in_flight or n_workers)

    def map_unordered(
        self,
        task: Task[T, R],
        items: Iterable[T],
        *,
        on_event: OnEvent | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Outcome[T, R]]:
        raise NotImplementedError

    def start(self) -> None:
        """Start the workers now rather than at the first item (they boot while you work)."""

    def shutdown(self) -> None:
        """Release the workers; idempotent."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def make_executor(
    kind: Literal["serial", "thread", "process", "dask"] | str,
    *,
    n_workers: int | None = None,
    max_in_flight: int | None = None,
    scheduler: str | None = None,
    preload: tuple[str, ...] = (),
) -> Executor:
    """An executor by name; `n_workers` defaults to the machine's CPU count.

    `preload` names modules that process workers import as they start (the task's module),
    so a started pool is ready when the first item arrives.

    For ``"dask"``, `scheduler` is the address of a running scheduler (``tcp://host:8786``);
    without it an in-process LocalCluster with `n_workers` single-threaded workers is started.
    """
    workers = n_workers or os.cpu_count() or 1
    if kind == "dask":
        from fovflow.workflow.dask_executor import DaskExecutor

        return DaskExecutor(workers, max_in_flight, scheduler=scheduler)
    if kind == "serial":
        return SerialExecutor()
    if kind == "thread":
        return ThreadExecutor(workers, max_in_flight)
    if kind == "process":
        return ProcessExecutor(workers, max_in_flight, preload=preload)
    raise ConfigError(f"unknown executor {kind!r}; choose serial, thread, process or dask")


class SerialExecutor(Executor):
    """Runs items one after another in the caller's thread."""

    def map_unordered(self, task, items, *, on_event=None, cancel=None):
        token = cancel or CancelToken()
        send = on_event or _ignore
        for item in items:
            if token.cancelled:
                yield cancelled_outcome(item)
                continue
            yield run_task(task, item, TaskContext(send, token))


class ThreadExecutor(Executor):
    """Runs items on a pool of threads; events are queued and delivered in the caller's thread."""

    def __init__(self, n_workers: int = 2, max_in_flight: int | None = None) -> None:
        super().__init__(n_workers, max_in_flight)
        self._pool = ThreadPoolExecutor(n_workers, thread_name_prefix="fovflow")

    def map_unordered(self, task, items, *, on_event=None, cancel=None):
        token = cancel or CancelToken()
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        context = TaskContext(events.put, token)
        pending = deque(items)
        running: dict[Future[Outcome[Any, Any]], Any] = {}
        while pending or running:
            if token.cancelled:
                yield from (cancelled_outcome(item) for item in pending)
                pending.clear()
            while pending and len(running) < self.max_in_flight:
                item = pending.popleft()
                running[self._pool.submit(run_task, task, item, context)] = item
            done, _ = wait(running, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            _deliver_all(events, on_event)  # a task's events come before its outcome
            for future in done:
                del running[future]
                yield future.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor(Executor):
    """Spawned worker processes kept for the executor's life; a dead worker is replaced."""

    def __init__(
        self, n_workers: int = 2, max_in_flight: int | None = None, *,
        preload: tuple[str, ...] = (),
    ) -> None:
        super().__init__(n_workers, max_in_flight)
        self._preload = preload
        self._context = get_context("spawn")
        self._cancel_flag = self._context.Event()  # handed to workers when they start
        self._idle: list[_Worker] = []
        self._started = 0

    def map_unordered(self, task, items, *, on_event=None, cancel=None):
        token = cancel or CancelToken()
        deliver = on_event or _ignore
        pending = deque(items)
        busy: dict[_Worker, tuple[Any, float]] = {}
        self._cancel_flag.clear()
        try:
            while pending or busy:
                if token.cancelled:
                    self._cancel_flag.set()
                    yield from (cancelled_outcome(item) for item in pending)
                    pending.clear()
                while pending and len(busy) < self.max_in_flight:
                    worker = self._take_worker()
                    item = pending.popleft()
                    worker.conn.send((task, item))
                    busy[worker] = (item, time.perf_counter())
                waitables = [w.conn for w in busy] + [w.process.sentinel for w in busy]
                ready = set(connection.wait(waitables, timeout=_POLL_S))
                for worker in list(busy):
                    outcome = worker.drain(deliver) if worker.conn in ready else None
                    if outcome is None and (worker.process.sentinel in ready or worker.broken):
                        item, started = busy[worker]
                        outcome = _worker_died(item, worker, time.perf_counter() - started)
                        worker.stop()
                    elif outcome is None:
                        continue
                    else:
                        self._idle.append(worker)
                    del busy[worker]
                    yield outcome
        finally:
            if busy:  # the caller stopped iterating early: do not leave work running
                self._cancel_flag.set()
                for worker in busy:
                    worker.stop()

    def shutdown(self) -> None:
        for worker in self._idle:
            worker.stop()
        self._idle.clear()

    def start(self) -> None:
        while self._started < self.max_in_flight:
            self._idle.append(self._new_worker())

    def _take_worker(self) -> _Worker:
        return self._idle.pop() if self._idle else self._new_worker()

    def _new_worker(self) -> _Worker:
        self._started += 1
        return _Worker(self._context, self._cancel_flag, self._started, self._preload)


class _Worker:
    """One spawned process and the caller's end of its private pipe."""

    def __init__(self, context: Any, cancel_flag: Any, number: int,
                 preload: tuple[str, ...]) -> None:
        self.conn, child_conn = context.Pipe(duplex=True)
        self.process: SpawnProcess = context.Process(
            target=_worker_main, args=(child_conn, cancel_flag, preload),
            name=f"fovflow-worker-{number}", daemon=True,
        )
        self.process.start()
        child_conn.close()
        self.broken = False

    def drain(self, deliver: OnEvent) -> Outcome[Any, Any] | None:
        """Deliver every message waiting in the pipe; the outcome if the task has finished."""
        try:
            while self.conn.poll():
                kind, payload = self.conn.recv()
                if kind == "event":
                    deliver(payload)
                elif kind == "log":
                    logging.getLogger(payload.name).handle(payload)
                else:
                    return payload
        except (EOFError, OSError):
            self.broken = True  # the process died mid-message or closed its pipe
        return None

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):  # a closed pipe: the kill below ends it
                self.conn.send(None)
            self.process.join(2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2)
        self.conn.close()


def _worker_main(conn: connection.Connection, cancel_flag: Any,
                 preload: tuple[str, ...]) -> None:
    """A worker process: run tasks sent through `conn` until it sends None."""
    # Ctrl-C reaches the whole process group; the caller turns it into a cancel request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The pool is the parallelism: one thread per worker in numerical libraries avoids
    # oversubscribing the cores (set before the first task imports numpy or OpenCV).
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = "1"
    for module in preload:
        importlib.import_module(module)
    lock = threading.Lock()

    def send(kind: str, payload: Any) -> None:
        with lock:
            conn.send((kind, payload))

    logging.getLogger().addHandler(ForwardingLogHandler(send))
    logging.getLogger().setLevel(logging.INFO)
    context = TaskContext(lambda event: send("event", event), CancelToken(cancel_flag))
    while (message := conn.recv()) is not None:
        task, item = message
        outcome = run_task(task, item, context)
        try:
            send("outcome", outcome)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            send("outcome", Outcome(item, ok=False, error=f"result cannot be sent back: {exc}",
                                    seconds=outcome.seconds))


class ForwardingLogHandler(logging.Handler):
    """Forwards a worker's log records to the caller, formatted, whole and in order."""

    def __init__(self, send: Callable[[str, Any], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:  # tracebacks do not pickle: send their text
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self._send("log", record)


def run_task(task: Task[T, R], item: T, context: TaskContext) -> Outcome[T, R]:
    """Run one item, turning cancellation and any exception into an `Outcome`."""
    start = time.perf_counter()
    try:
        result = task(item, context)
    except Cancelled:
        return Outcome(item, ok=False, cancelled=True, seconds=time.perf_counter() - start)
    except Exception as exc:  # one item's failure must never stop the others
        return Outcome(item, ok=False, error=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc(), seconds=time.perf_counter() - start)
    return Outcome(item, ok=True, result=result, seconds=time.perf_counter() - start)


def _worker_died(item: Any, worker: _Worker, seconds: float) -> Outcome[Any, Any]:
    worker.process.join(1)
    code = worker.process.exitcode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
    return Outcome(item, ok=False, seconds=seconds,
                   error=f"worker process {worker.process.pid} {how} while running this item")


def cancelled_outcome(item: Any) -> Outcome[Any, Any]:
    return Outcome(item, ok=False, cancelled=True)


def _deliver_all(events: queue.SimpleQueue[Any], on_event: OnEvent | None) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        if on_event is not None:
            on_event(event)


def _ignore(event: Any) -> None:
    """Default `on_event`: the caller did not ask for events."""
