"""Worker processes that live for a whole run and survive each other's crashes.

Each worker is a spawned process with a private pipe to the caller: tasks go down the pipe;
events, log records and outcomes come back up. No lock or queue is shared between workers, so
a worker that dies (segfault, ``kill -9``, out of memory) cannot wedge the others: the caller
sees its pipe close or its sentinel fire, fails only the item it was running and starts a
replacement. The one thing they share is the cancel flag, a `multiprocessing` Event each
worker gets as it starts.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import logging
import pickle
import signal
import threading
import time
from multiprocessing import connection, get_context
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

from fovflow.errors import ConfigError
from fovflow.execution.base import (
    Executor,
    ForwardingLogHandler,
    OnEvent,
    Outcome,
    Session,
    Task,
    TaskContext,
    cancelled_outcome,
    new_run_name,
    run_task,
)
from fovflow.execution.cancel import CancelToken
from fovflow.execution.native_threads import use_one_thread_per_worker

log = logging.getLogger(__name__)


class ProcessExecutor(Executor):
    """Spawned worker processes kept for the executor's life; a dead worker is replaced.

    Refuses (`ConfigError`) to start from the top level of a script outside
    ``if __name__ == "__main__":``, which every worker would run again.
    """

    kind = "process"

    def __init__(
        self, n_workers: int | None = None, max_in_flight: int | None = None, *,
        preload: tuple[str, ...] = (),
    ) -> None:
        super().__init__(n_workers, max_in_flight)
        require_main_guard(self.n_workers)
        self._preload = preload
        self._context = get_context("spawn")
        self._cancel_flag = self._context.Event()  # handed to workers when they start
        self._idle: list[_Worker] = []
        self._started = 0

    def _session(self, task: Task[Any, Any], deliver: OnEvent,
                 token: CancelToken) -> Session[Any, Any]:
        self._cancel_flag.clear()
        return _ProcessSession(self, task, deliver, token)

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


class _ProcessSession(Session[Any, Any]):
    """The busy workers, each with the item it runs and since when."""

    def __init__(self, executor: ProcessExecutor, task: Task[Any, Any], deliver: OnEvent,
                 token: CancelToken) -> None:
        super().__init__(executor.max_in_flight)
        self._executor, self._task, self._deliver, self._token = executor, task, deliver, token
        self._run = new_run_name()
        self._busy: dict[_Worker, tuple[Any, float]] = {}
        self._ready: set[Any] = set()

    @property
    def busy(self) -> int:
        return len(self._busy)

    def submit(self, item: Any) -> None:
        worker = self._executor._take_worker()
        try:
            worker.conn.send((self._run, self._task, item))
        except OSError:  # it died before taking the item: failed like a crash
            worker.broken = True
        self._busy[worker] = (item, time.perf_counter())

    def wait_any(self, timeout: float) -> None:
        waitables = [w.conn for w in self._busy] + [w.process.sentinel for w in self._busy]
        self._ready = set(connection.wait(waitables, timeout=timeout))

    def collect(self) -> list[Outcome[Any, Any]]:
        ended = []
        for worker in list(self._busy):
            outcome = worker.drain(self._deliver) if worker.conn in self._ready else None
            if outcome is None and (worker.process.sentinel in self._ready or worker.broken):
                item, started = self._busy[worker]
                # During an abort the signal that ends the run may have reached it too.
                outcome = (cancelled_outcome(item) if self._token.aborted
                           else _worker_died(item, worker, time.perf_counter() - started))
                worker.stop()
            elif outcome is None:
                continue
            else:
                self._executor._idle.append(worker)
            del self._busy[worker]
            ended.append(outcome)
        return ended

    def signal_cancel(self) -> None:
        self._executor._cancel_flag.set()

    def stop_running(self) -> list[Outcome[Any, Any]]:
        """Kill the workers still running items: they write nothing more once this returns."""
        for worker in self._busy:
            worker.process.kill()
        ended = []
        for worker, (item, _) in list(self._busy.items()):
            worker.stop()
            log.warning("worker process %d did not stop at its next frame within the abort's "
                        "wait: killed", worker.process.pid)
            ended.append(cancelled_outcome(item))
            del self._busy[worker]
        return ended

    def close(self) -> None:
        if self._busy:  # the caller stopped iterating early: do not leave work running
            self.signal_cancel()
            _stop_all(list(self._busy))


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
        context.run, task, item = message
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


def _worker_died(item: Any, worker: _Worker, seconds: float) -> Outcome[Any, Any]:
    worker.process.join(1)
    code = worker.process.exitcode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited ({code})"
    return Outcome(item, ok=False, seconds=seconds, worker_lost=True,
                   error=f"worker process {worker.process.pid} {how} while running this item")


def require_main_guard(n_workers: int) -> None:
    """Refuse to start worker processes from a script's top level outside a main guard.

    Worker processes are spawned: each imports the main script again, and code outside
    ``if __name__ == "__main__":`` would start workers from the workers, which fail at once.

    Raises
    ------
    ConfigError
        Naming the script and line, and the two ways out.
    """
    frame = inspect.currentframe()
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals.get("__name__") == "__main__"):
        frame = frame.f_back
    path = frame.f_globals.get("__file__") if frame is not None else None
    spec = frame.f_globals.get("__spec__") if frame is not None else None
    if frame is None or path is None or not Path(path).is_file() or (
            spec is not None and spec.name.endswith(".__main__")):
        return  # a session, a notebook or ``python -m package``: workers do not import it
    line = frame.f_lineno
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    guarded = any(isinstance(node, ast.If) and _is_main_test(node.test)
                  and node.lineno <= line <= (node.end_lineno or node.lineno)
                  for node in tree.body)
    if not guarded:
        raise ConfigError(
            f"n_workers={n_workers} starts worker processes, which import {path} again and "
            f"would run line {line} once more; put the code that starts them under "
            f"'if __name__ == \"__main__\":' or pass n_workers=1")


def _is_main_test(test: ast.expr) -> bool:
    """Whether `test` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = {ast.dump(side) for side in (test.left, test.comparators[0])}
    return sides == {ast.dump(ast.Name("__name__", ast.Load())),
                     ast.dump(ast.Constant("__main__"))}
