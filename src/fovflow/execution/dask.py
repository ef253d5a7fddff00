"""Run tasks on a Dask cluster with the same events, cancellation and outcomes as locally.

Workers need the input and output folders on a shared filesystem, and the caller's fovflow
version (checked when connecting, and by every task for workers that join later).

Scheduler round trips are few, so that one scheduler serves many workers: a task sends its
events and log records as plain data (msgpack, no pickle) in batches, progress
(`FrequentEvent`) at most every `FLUSH_S`; it reads the run's `distributed.Event` once as it
starts, and afterwards checks a flag in its own process that the caller sets on every worker
(`Client.run`) when the run is cancelled. Items are submitted up to the cluster's current
capacity, read as workers come and go. A task's key names its item
(``fovflow-fov_003-<run>``, from the item's ``name``), so Dask's own messages (KilledWorker)
say which FOV. If a Dask worker dies, Dask reruns its task elsewhere (outputs are written
atomically, so a rerun is safe); after the cluster's ``allowed-failures`` the item fails with
KilledWorker. The run's queue and event are removed from the scheduler when it ends, but for an
event an abort leaves set for tasks that did not confirm they stopped.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fovflow import __version__
from fovflow.errors import ConfigError, FovflowError
from fovflow.execution.base import (
    Executor,
    ForwardingLogHandler,
    FrequentEvent,
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
from fovflow.execution.knobs import IN_FLIGHT, checked_count, checked_scheduler
from fovflow.execution.native_threads import ONE_THREAD_ENVIRONMENT, use_one_thread_per_worker

log = logging.getLogger(__name__)
FLUSH_S = 0.5  # a task's progress reaches the caller at most this late: one call per batch
CAPACITY_CHECK_S = 1.0  # how often the cluster's worker threads are counted
PROBE_S = 3.0  # how long a scheduler may take to greet a new connection
_cancelled_runs: set[str] = set()  # in a worker process: runs the caller has cancelled


class DaskExecutor(Executor):
    """Items as Dask tasks on a cluster (`scheduler` address) or an in-process LocalCluster.

    Without a `scheduler`, a LocalCluster of `n_workers` single-threaded worker processes is
    started. With one, the cluster's own workers run the items and `n_workers` does not
    apply (giving it is an error): as many items are in flight as the cluster has worker
    threads at the moment (at least one, so that a cluster still starting its workers gets
    work), or at most `max_in_flight` if given; `n_workers` then reads the cluster's worker
    threads at connection.
    """

    kind = "dask"

    def __init__(
        self, n_workers: int | None = None, max_in_flight: int | None = None, *,
        scheduler: str | None = None,
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError("the dask executor needs the dask extra: "
                              "pip install 'fovflow[dask]'") from exc
        self._cluster = None
        if not scheduler:
            super().__init__(n_workers, max_in_flight)
            self._limit: int | None = self.max_in_flight
            self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                         processes=True, dashboard_address=":0",
                                         env=ONE_THREAD_ENVIRONMENT)
            self._client = Client(self._cluster)
            return
        if n_workers is not None:
            raise ConfigError("n_workers (--workers) sizes a local Dask cluster; with a "
                              "scheduler the cluster's own workers run the items (limit them "
                              "with --max-in-flight)")
        _check_it_speaks_dask(checked_scheduler(scheduler) or scheduler)
        try:
            self._client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise FovflowError(f"cannot reach the Dask scheduler at {scheduler}: {exc}"
                               ) from exc
        _check_worker_versions(self._client)
        self._limit = checked_count(max_in_flight, IN_FLIGHT)
        self.n_workers = max(1, sum(self._client.nthreads().values()))
        self.max_in_flight = self._limit or self.n_workers

    def _session(self, task: Task[Any, Any], deliver: OnEvent,
                 token: CancelToken) -> Session[Any, Any]:
        return _DaskSession(self._client, self._limit, task, deliver)

    def shutdown(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


class _DaskSession(Session[Any, Any]):
    """The run's futures, its event queue and cancel event on the scheduler."""

    def __init__(self, client: Any, limit: int | None, task: Task[Any, Any],
                 deliver: OnEvent) -> None:
        from distributed import Event, Queue

        super().__init__(0)
        self._client, self._task, self._deliver = client, task, deliver
        self._run = new_run_name()
        self._events = Queue(self._run, client=client)
        self._flag = Event(self._run, client=client)
        self._capacity_now = _Capacity(client, limit)
        self._running: dict[Any, Any] = {}
        self._submitted = 0
        self._signalled = self._left_running = False

    @property
    def busy(self) -> int:
        return len(self._running)

    def capacity(self) -> int:
        return self._capacity_now()

    def submit(self, item: Any) -> None:
        key = f"fovflow-{getattr(item, 'name', f'item_{self._submitted}')}-{self._run}"
        self._submitted += 1
        self._running[self._client.submit(_run_on_worker, self._task, item, self._run,
                                          __version__, key=key, pure=False)] = item

    def wait_any(self, timeout: float) -> None:
        time.sleep(timeout)  # polling: a Dask wait per future would cost scheduler calls

    def collect(self) -> list[Outcome[Any, Any]]:
        done = [(future, self._running.pop(future)) for future in list(self._running)
                if future.done()]
        _deliver(self._events, self._deliver)  # a task's events came before its outcome
        return [_outcome_of(future, item) for future, item in done]

    def signal_cancel(self) -> None:
        self._flag.set()  # for tasks that start from now on (a rerun of a dead worker's task)
        self._client.run(_cancel_run, self._run, wait=False)
        self._signalled = True

    def stop_running(self) -> list[Outcome[Any, Any]]:
        """Cancel the tasks still running and report them as possibly still running."""
        if not self._running:
            return []
        self._client.cancel(list(self._running), force=True)
        for future in self._running:
            log.warning("Dask task %s did not stop within the abort's wait: cancelled, but it "
                        "may still run until its next frame", future.key)
        ended = [cancelled_outcome(item, abandoned=True) for item in self._running.values()]
        self._running.clear()
        self._left_running = True
        return ended

    def close(self) -> None:
        if self._running:  # the caller stopped iterating early
            if not self._signalled:
                self.signal_cancel()
            self.stop_running()
        self._events.close()
        if not self._left_running:  # else it stays set, so that those tasks stop when they can
            self._flag.clear()  # removes the event from the scheduler
            if self._signalled:
                self._client.run(_forget_run, self._run, wait=False)


class _Capacity:
    """How many items to keep in flight: the cluster's worker threads now, or a fixed limit."""

    def __init__(self, client: Any, limit: int | None) -> None:
        self._client, self._limit = client, limit
        self._threads, self._read_at = 0, float("-inf")

    def __call__(self) -> int:
        if self._limit is not None:
            return self._limit
        if time.monotonic() - self._read_at >= CAPACITY_CHECK_S:
            threads = sum(self._client.nthreads().values())
            if threads != self._threads:
                log.info("the Dask cluster has %d worker threads", threads)
            self._threads, self._read_at = threads, time.monotonic()
        return max(1, self._threads)


def _run_on_worker(task: Callable[..., Any], item: Any, run: str,
                   version: str) -> Outcome[Any, Any]:
    from distributed import Event, get_worker

    use_one_thread_per_worker()  # also on a cluster started by the user, not only LocalCluster
    worker = get_worker()
    where = f"{socket.gethostname()} {worker.address}"
    if version != __version__:  # a worker that joined after the caller checked them
        return Outcome(item, ok=False, error=f"the Dask worker {where} runs fovflow "
                       f"{__version__}, the caller {version}: install the same version")
    if Event(run).is_set():
        _cancelled_runs.add(run)
    sender = _BatchSender(run)
    handler = ForwardingLogHandler(lambda kind, record: sender.add(("log", _plain(vars(record)))))
    root = logging.getLogger()
    root.addHandler(handler)
    if logging.getLogger("fovflow").level == logging.NOTSET:
        logging.getLogger("fovflow").setLevel(logging.INFO)  # Dask workers default to WARNING
    try:
        context = TaskContext(sender.send_event, CancelToken(_RunFlag(run)), where, run)
        return run_task(task, item, context)
    finally:
        root.removeHandler(handler)
        sender.flush()


class _BatchSender:
    """A task's messages to the caller, as one queue put per batch: progress waits up to
    `FLUSH_S` for company, anything else (a start, a step's end) goes at once."""

    def __init__(self, run: str) -> None:
        from distributed import get_client

        self._client, self._run = get_client(), run
        self._batch: list[Any] = []
        self._sent_at = time.monotonic()

    def add(self, message: Any) -> None:
        self._batch.append(message)

    def send_event(self, event: Any) -> None:
        cls = type(event)
        self._batch.append(("event", f"{cls.__module__}:{cls.__qualname__}",
                            _plain(dataclasses.asdict(event))))
        if not isinstance(event, FrequentEvent) or time.monotonic() - self._sent_at >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            # The scheduler call a distributed.Queue makes, without creating a queue per worker
            # (each would hold the caller's queue on the scheduler after the run).
            self._client.sync(self._client.scheduler.queue_put, name=self._run,
                              data=self._batch, timeout=None)
            self._batch = []
        self._sent_at = time.monotonic()


class _RunFlag:
    """The run's cancel flag in a worker process, set by the caller through `Client.run`."""

    def __init__(self, run: str) -> None:
        self._run = run

    def set(self) -> None:
        _cancelled_runs.add(self._run)

    def is_set(self) -> bool:
        return self._run in _cancelled_runs


# Coroutines: `Client.run` does not wait for them (a slow worker holds up no one).
async def _cancel_run(run: str) -> None:
    _cancelled_runs.add(run)


async def _forget_run(run: str) -> None:
    _cancelled_runs.discard(run)


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields msgpack carries as they are (a log record's extras may not be)."""
    return {name: value for name, value in fields.items()
            if isinstance(value, str | int | float | bool | list | tuple | dict | None)}


def _deliver(events: Any, on_event: Callable[[Any], None] | None) -> None:
    for batch in events.get(batch=True):
        for message in batch:
            if message[0] == "log":
                record = logging.makeLogRecord(message[1])
                logging.getLogger(record.name).handle(record)
            elif on_event is not None:
                on_event(_event_of(message[1], message[2]))


def _event_of(type_name: str, fields: dict[str, Any]) -> Any:
    module, _, qualname = type_name.partition(":")
    owner: Any = sys.modules.get(module) or importlib.import_module(module)
    for part in qualname.split("."):
        owner = getattr(owner, part)
    return owner(**fields)


def _outcome_of(future: Any, item: Any) -> Outcome[Any, Any]:
    if future.status == "finished":
        return future.result()
    if future.status == "cancelled":
        return cancelled_outcome(item)
    error = future.exception()
    return Outcome(item, ok=False, error=f"{type(error).__name__}: {error}",
                   traceback="".join(traceback.format_exception(error)),
                   worker_lost=type(error).__name__ == "KilledWorker")


def _check_it_speaks_dask(address: str) -> None:
    """Fail at once, in one line, on an address where no Dask scheduler answers (the
    dashboard's port, 8787, accepts the connection and then waits for ever)."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return  # TLS, in-process, or a default port: Dask's own checks apply
    form = "give the scheduler's address, like tcp://host:8786"
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=PROBE_S) as probe:
            probe.settimeout(PROBE_S)
            try:
                if probe.recv(1):
                    return  # a Dask server greets first (its handshake)
            except TimeoutError:
                probe.sendall(b"GET / HTTP/1.0\r\n\r\n")
                web = probe.recv(5) == b"HTTP/"
                raise FovflowError(f"{address} is a web server (the Dask dashboard's?), not a "
                                   f"Dask scheduler; {form}" if web else
                                   f"nothing at {address} answers as a Dask scheduler; {form}"
                                   ) from None
    except TimeoutError:
        raise FovflowError(f"nothing at {address} answers as a Dask scheduler; {form}") from None
    except OSError as exc:
        raise FovflowError(f"cannot reach the Dask scheduler at {address}: "
                           f"{exc.strerror or exc}") from None


def _check_worker_versions(client: Any) -> None:
    versions = client.run(_fovflow_version, on_error="return")
    others = {address: version for address, version in versions.items()
              if version != __version__}
    if others:
        found = ", ".join(f"{address}: {version}" for address, version in sorted(others.items()))
        raise FovflowError(f"the Dask workers must run fovflow {__version__}, as this one does "
                           f"({found}); install the same version on the workers")


def _fovflow_version() -> str:
    return __version__
