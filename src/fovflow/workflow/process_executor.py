"""Worker processes that live for a whole run and survive each other's crashes.

Each worker is a spawned process with a private pipe to the caller: tasks go down the pipe;
events, log records and outcomes come back up. No lock or queue is shared between workers, so
a worker that dies (segfault, ``kill -9``, out of memory) cannot wedge the others: the caller
sees its pipe close or its sentinel fire, fails only the item it was running and starts a
replacement.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import pickle
import signal
import threading
import time
from collections import deque
from multiprocessing import connection, get_context
from multiprocessing.context import SpawnProcess
from typing import Any

from fovflow.workflow.cancel import CancelToken
from fovflow.workflow.executors import (
    POLL_S,
    Executor,
    ForwardingLogHandler,
    OnEvent,
    Outcome,
    TaskContext,
    cancelled_outcome,
    ignore_event,
    run_task,
)
from fovflow.workflow.native_threads import use_one_thread_per_worker

log = logging.getLogger(__name__)


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
        deliver = on_event or ignore_event
        pending = deque(items)
        busy: dict[_Worker, tuple[Any, float]] = {}
        self._cancel_flag.clear()
        try:
            self._hand_out(task, pending, busy, token)
            while pending or busy:
                ended = self._collect(busy, deliver, token)
                if token.done_waiting:  # an abort: what did not stop at its next frame is ended
                    ended += _kill_busy(busy)
                if token.cancelled:
                    self._cancel_flag.set()
                    yield from (cancelled_outcome(item) for item in pending)
                    pending.clear()
                # Before the caller handles the outcomes (writes the manifest): workers that
                # became free must not wait for it.
                self._hand_out(task, pending, busy, token)
                yield from ended
        finally:
            if busy:  # the caller stopped iterating early: do not leave work running
                self._cancel_flag.set()
                _stop_all(list(busy))

    def _hand_out(self, task: Any, pending: deque[Any], busy: dict[_Worker, tuple[Any, float]],
                  token: CancelToken) -> None:
        while pending and len(busy) < self.max_in_flight and not token.cancelled:
            worker = self._take_worker()
            item = pending.popleft()
            try:
                worker.conn.send((task, item))
            except OSError:  # it died before taking the item: failed like a crash
                worker.broken = True
            busy[worker] = (item, time.perf_counter())

    def _collect(self, busy: dict[_Worker, tuple[Any, float]], deliver: OnEvent,
                 token: CancelToken) -> list[Outcome[Any, Any]]:
        """Wait up to `POLL_S` for messages; the outcomes of the items that ended."""
        waitables = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(connection.wait(waitables, timeout=POLL_S))
        ended = []
        for worker in list(busy):
            outcome = worker.drain(deliver) if worker.conn in ready else None
            if outcome is None and (worker.process.sentinel in ready or worker.broken):
                item, started = busy[worker]
                # During an abort the signal that ends the run may have reached it too.
                outcome = (cancelled_outcome(item) if token.aborted
                           else _worker_died(item, worker, time.perf_counter() - started))
                worker.stop()
            elif outcome is None:
                continue
            else:
                self._idle.append(worker)
            del busy[worker]
            ended.append(outcome)
        return ended

    def shutdown(self) -> None:
        _stop_all(self._idle)
        self._idle.clear()

    def start(self) -> None:
        while self._started < self.max_in_flight:
            self._idle.append(self._new_worker())

    def _take_worker(self) -> _Worker:
        """An idle worker that is still alive (one that died waiting is replaced), or a new one."""
        while self._idle:
            worker = self._idle.pop()
            if worker.process.is_alive():
                return worker
            worker.stop()
        return self._new_worker()

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
        self.asked_to_stop = False

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

    def ask_to_stop(self) -> None:
        """Tell the worker to end after its current task; returns at once."""
        if not self.asked_to_stop and self.process.is_alive():
            self.asked_to_stop = True
            with contextlib.suppress(OSError):  # a closed pipe: `stop` kills it
                self.conn.send(None)

    def stop(self) -> None:
        self.ask_to_stop()
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
    use_one_thread_per_worker()
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


def _stop_all(workers: list[_Worker]) -> None:
    # All are told first, so that they wind down (~0.2 s of interpreter clean-up) together.
    for worker in workers:
        worker.ask_to_stop()
    for worker in workers:
        worker.stop()


def _kill_busy(busy: dict[_Worker, tuple[Any, float]]) -> list[Outcome[Any, Any]]:
    """Kill the workers still running items: they write nothing more once this returns."""
    for worker in busy:
        worker.process.kill()
    ended = []
    for worker, (item, _) in list(busy.items()):
        worker.stop()
        log.warning("worker process %d did not stop at its next frame within the abort's wait: "
                    "killed", worker.process.pid)
        ended.append(cancelled_outcome(item))
        del busy[worker]
    return ended


def _worker_died(item: Any, worker: _Worker, seconds: float) -> Outcome[Any, Any]:
    worker.process.join(1)
    code = worker.process.exitcode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
    return Outcome(item, ok=False, seconds=seconds, worker_lost=True,
                   error=f"worker process {worker.process.pid} {how} while running this item")
