"""Run many independent tasks (one per FOV, or per chunk of traces) and stream what happens.

Every executor has one method, `map_unordered(task, items, on_event=..., cancel=...)`, that
yields an `Outcome` per item as items finish, in completion order. ``task(item, context)`` is a
picklable top-level function; ``context.send(event)`` forwards an event to `on_event`, which
always runs in the caller's thread, ``context.cancel`` is the token the task checks every
frame and ``context.worker`` names where it runs (host and process). Scheduling is dynamic: a
free worker takes the next item. After cancellation no queued item starts; running items stop
at their next check and are reported as cancelled. After an abort (`CancelToken.abort`) the
process and Dask executors wait at most `fovflow.workflow.cancel.ABORT_WAIT_S` for them.

- `SerialExecutor`: in the caller's thread, deterministic, for debugging.
- `ThreadExecutor`: a thread pool; fine when the work releases the GIL.
- `ProcessExecutor` (`fovflow.workflow.process_executor`): spawned worker processes kept for
  the whole run, each with its own pipe, so a worker that dies fails only its item.
- `DaskExecutor` (`fovflow.workflow.dask_executor`): a Dask cluster.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from fovflow.errors import Cancelled, ConfigError
from fovflow.workflow.cancel import CancelToken
from fovflow.workflow.native_threads import one_thread_per_worker, use_one_openmp_thread

T = TypeVar("T")
R = TypeVar("R")
OnEvent = Callable[[Any], None]
POLL_S = 0.05  # how often the caller's thread looks at the cancel token while waiting


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """How one item ended: ``ok`` with its `result`, ``cancelled``, or failed with `error`.

    ``worker_lost``: the worker running it died. ``abandoned``: an abort stopped waiting for
    it and it may still be running (a Dask task that did not confirm it stopped).
    """

    item: T
    ok: bool
    cancelled: bool = False
    result: R | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    worker_lost: bool = False
    abandoned: bool = False


class TaskContext:
    """What a running task gets besides its item: a way to send events, the cancel token, and
    the name of the worker it runs on."""

    def __init__(self, send: OnEvent, cancel: CancelToken, worker: str | None = None) -> None:
        self.send = send
        self.cancel = cancel
        self.worker = worker or this_process()


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
        from fovflow.workflow.process_executor import ProcessExecutor

        return ProcessExecutor(workers, max_in_flight, preload=preload)
    raise ConfigError(f"unknown executor {kind!r}; choose serial, thread, process or dask")


class SerialExecutor(Executor):
    """Runs items one after another in the caller's thread."""

    def map_unordered(self, task, items, *, on_event=None, cancel=None):
        token = cancel or CancelToken()
        send = on_event or ignore_event
        for item in items:
            if token.cancelled:
                yield cancelled_outcome(item)
                continue
            yield run_task(task, item, TaskContext(send, token))


class ThreadExecutor(Executor):
    """Runs items on a pool of threads; events are queued and delivered in the caller's thread."""

    def __init__(self, n_workers: int = 2, max_in_flight: int | None = None) -> None:
        super().__init__(n_workers, max_in_flight)
        self._pool = ThreadPoolExecutor(n_workers, thread_name_prefix="fovflow",
                                        initializer=use_one_openmp_thread)

    def map_unordered(self, task, items, *, on_event=None, cancel=None):
        token = cancel or CancelToken()
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        context = TaskContext(events.put, token, f"{this_process()} (threads)")
        pending = deque(items)
        running: dict[Future[Outcome[Any, Any]], Any] = {}

        def hand_out() -> None:
            while pending and len(running) < self.max_in_flight and not token.cancelled:
                item = pending.popleft()
                running[self._pool.submit(run_task, task, item, context)] = item

        with one_thread_per_worker():  # the pool's threads share this process's cores
            hand_out()
            while pending or running:
                done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                _deliver_all(events, on_event)  # a task's events come before its outcome
                for future in done:
                    del running[future]
                if token.cancelled:
                    yield from (cancelled_outcome(item) for item in pending)
                    pending.clear()
                hand_out()  # before the caller handles the outcomes, as the pool is free
                yield from (future.result() for future in done)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


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


def cancelled_outcome(item: Any, *, abandoned: bool = False) -> Outcome[Any, Any]:
    return Outcome(item, ok=False, cancelled=True, abandoned=abandoned)


def this_process() -> str:
    """``host pid N``: where a worker runs, for reports and logs."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def _deliver_all(events: queue.SimpleQueue[Any], on_event: OnEvent | None) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        if on_event is not None:
            on_event(event)


def ignore_event(event: Any) -> None:
    """Default `on_event`: the caller did not ask for events."""
