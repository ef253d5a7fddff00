"""The executors' common part: outcomes, the task's context, and the scheduling loop.

`Executor.map_unordered` is written once, here, over the primitives of a `Session` that each
backend supplies for one call: submit an item, wait for any to end, collect what has arrived
(events, then outcomes), signal a cancel, stop what still runs after an abort, close.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from fovflow.errors import Cancelled
from fovflow.execution.cancel import CancelToken
from fovflow.execution.knobs import local_width, warn_if_more_than_cores

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


class FrequentEvent:
    """Base of events sent many times a second (progress): a backend may hold them back a
    little to send several at once. Any other event goes to the caller at once."""


class TaskContext:
    """What a running task gets besides its item: a way to send events, the cancel token, the
    name of the worker it runs on, and `set_up` for what a worker prepares once."""

    def __init__(self, send: OnEvent, cancel: CancelToken, worker: str | None = None,
                 run: str = "") -> None:
        self.send = send
        self.cancel = cancel
        self.worker = worker or this_process()
        self.run = run  # names the `map_unordered` call the task belongs to

    def set_up(self, function: Callable[..., object], *args: Any) -> None:
        """Call ``function(*args)`` once per worker process and run: the first item a worker
        gets pays for it, the others reuse it (plugins, the allocator's settings). A call
        that raises is tried again by the next item."""
        key = (function, args)
        with _SET_UP_LOCK:
            done = _set_up_in_this_process.setdefault(self.run, set())
            if key not in done:
                function(*args)
                done.add(key)
            for run in [run for run in _set_up_in_this_process if run != self.run]:
                del _set_up_in_this_process[run]  # a worker lives on after a run (Dask)


_set_up_in_this_process: dict[str, set[tuple[Any, ...]]] = {}
_SET_UP_LOCK = threading.Lock()

Task = Callable[[T, TaskContext], R]


class Session(Generic[T, R]):
    """One `map_unordered` call on a backend: the primitives the scheduling loop runs on.

    `busy` counts items submitted and not yet collected. `wait_any` returns when an item
    may have ended or a message arrived, or after `timeout`. `collect` delivers the events
    that have arrived and returns the outcomes of the items that ended (an item's events
    always before its outcome).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity

    @property
    def busy(self) -> int:
        raise NotImplementedError

    def capacity(self) -> int:
        """How many items may be in flight now."""
        return self._capacity

    def submit(self, item: T) -> None:
        raise NotImplementedError

    def wait_any(self, timeout: float) -> None:
        raise NotImplementedError

    def collect(self) -> list[Outcome[T, R]]:
        raise NotImplementedError

    def signal_cancel(self) -> None:
        """Tell the running items to stop at their next check (once, after a cancel)."""

    def stop_running(self) -> list[Outcome[T, R]]:
        """After an abort has waited long enough: end what still runs, as cancelled outcomes."""
        return []

    def close(self) -> None:
        """The call ends (also when the caller stops iterating early)."""


class Executor:
    """Runs a task over many items; use as a context manager, `shutdown()` releases workers.

    `n_workers` and `max_in_flight` are those of `fovflow.execution.knobs`.
    """

    kind: ClassVar[str]

    def __init__(self, n_workers: int | None = None, max_in_flight: int | None = None) -> None:
        self.n_workers, self.max_in_flight = local_width(n_workers, max_in_flight)
        warn_if_more_than_cores(self.n_workers)

    def map_unordered(
        self,
        task: Task[T, R],
        items: Iterable[T],
        *,
        on_event: OnEvent | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Outcome[T, R]]:
        """Run ``task(item, context)`` for every item; yield an `Outcome` per item as items
        end, in the order they end.

        Scheduling is dynamic (a free worker takes the next item) and at most
        `max_in_flight` items run at once. Events the task sends reach `on_event` in the
        caller's thread, each item's before its outcome. After a cancel no queued item
        starts and running items stop at their next check; after an abort
        (`CancelToken.abort`) the executor waits at most `ABORT_WAIT_S` for them.
        """
        token = cancel or CancelToken()
        pending = deque(items)
        session = self._session(task, on_event or ignore_event, token)
        signalled = False
        try:
            self._hand_out(session, pending, token)
            while pending or session.busy:
                session.wait_any(POLL_S)
                ended = session.collect()
                if token.cancelled and not signalled:
                    signalled = True
                    session.signal_cancel()
                    yield from (cancelled_outcome(item) for item in pending)
                    pending.clear()
                if token.done_waiting:
                    ended += session.stop_running()
                # Before the caller handles the outcomes (writes the manifest): workers that
                # became free must not wait for it.
                self._hand_out(session, pending, token)
                yield from ended
        finally:
            session.close()

    @staticmethod
    def _hand_out(session: Session[T, R], pending: deque[T], token: CancelToken) -> None:
        while pending and session.busy < session.capacity() and not token.cancelled:
            session.submit(pending.popleft())

    def _session(self, task: Task[T, R], deliver: OnEvent,
                 token: CancelToken) -> Session[T, R]:
        raise NotImplementedError

    def start(self) -> None:
        """Start the workers now rather than at the first item (they boot while you work)."""

    def shutdown(self) -> None:
        """Release the workers; idempotent."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


class SerialExecutor(Executor):
    """Runs items one after another in the caller's thread: deterministic, for debugging."""

    kind = "serial"

    def __init__(self) -> None:
        super().__init__(n_workers=1)

    def _session(self, task, deliver, token):
        return _SerialSession(task, TaskContext(deliver, token, run=new_run_name()))


class _SerialSession(Session[T, R]):
    """Holds the one submitted item and runs it when collected, so the caller handles an
    outcome before the next item starts. Events go straight to the caller."""

    def __init__(self, task: Task[T, R], context: TaskContext) -> None:
        super().__init__(capacity=1)
        self._task, self._context = task, context
        self._queued: deque[T] = deque()

    @property
    def busy(self) -> int:
        return len(self._queued)

    def submit(self, item: T) -> None:
        self._queued.append(item)

    def wait_any(self, timeout: float) -> None:
        """Nothing runs until collected."""

    def collect(self) -> list[Outcome[T, R]]:
        item = self._queued.popleft()
        if self._context.cancel.cancelled:  # cancelled while the caller held the last outcome
            return [cancelled_outcome(item)]
        return [run_task(self._task, item, self._context)]


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


def new_run_name() -> str:
    """A name for one `map_unordered` call, unique across the processes of a cluster."""
    return f"fovflow-{uuid.uuid4().hex[:12]}"


def ignore_event(event: Any) -> None:
    """Default `on_event`: the caller did not ask for events."""
