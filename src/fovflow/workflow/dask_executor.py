"""Run tasks on a Dask cluster with the same events, cancellation and outcomes as locally.

Events and worker log records travel through a `distributed.Queue`; cancellation is a
`distributed.Event`. Workers need the input and output folders on a shared filesystem. If a
Dask worker dies, Dask reruns its task elsewhere (outputs are written atomically, so a rerun is
safe); after the cluster's ``allowed-failures`` the item fails with Dask's KilledWorker error.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from fovflow.errors import ConfigError, FovflowError
from fovflow.workflow.cancel import CancelToken
from fovflow.workflow.executors import (
    POLL_S,
    Executor,
    ForwardingLogHandler,
    Outcome,
    TaskContext,
    cancelled_outcome,
    run_task,
)
from fovflow.workflow.native_threads import ONE_THREAD_ENVIRONMENT, use_one_thread_per_worker

_CANCEL_CHECK_S = 0.1  # a distributed.Event check is a scheduler round trip: cache it this long


class DaskExecutor(Executor):
    """Items as Dask tasks on a cluster (`scheduler` address) or an in-process LocalCluster."""

    def __init__(
        self, n_workers: int = 2, max_in_flight: int | None = None, *, scheduler: str | None = None
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError("the dask executor needs the dask extra: "
                              "pip install 'fovflow[dask]'") from exc
        super().__init__(n_workers, max_in_flight)
        self._cluster = None
        try:
            if scheduler:
                self._client = Client(scheduler, timeout="10s")
                self.max_in_flight = max_in_flight or _cluster_threads(self._client)
            else:
                self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                             processes=True, dashboard_address=":0",
                                             env=ONE_THREAD_ENVIRONMENT)
                self._client = Client(self._cluster)
        except OSError as exc:
            raise FovflowError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc

    def map_unordered(self, task, items, *, on_event=None, cancel=None):
        from distributed import Event, Queue

        token = cancel or CancelToken()
        name = f"fovflow-{uuid.uuid4().hex}"
        events, flag = Queue(name, client=self._client), Event(name, client=self._client)
        pending = deque(items)
        running: dict[Any, Any] = {}

        def hand_out() -> None:
            while pending and len(running) < self.max_in_flight and not token.cancelled:
                item = pending.popleft()
                running[self._client.submit(_run_on_worker, task, item, name, pure=False)] = item

        try:
            hand_out()
            while pending or running:
                time.sleep(POLL_S)
                done = [(future, running.pop(future)) for future in list(running)
                        if future.done()]
                _deliver(events, on_event)  # a task's events come before its outcome
                if token.cancelled:
                    flag.set()
                    yield from (cancelled_outcome(item) for item in pending)
                    pending.clear()
                hand_out()  # before the caller handles the outcomes: free workers go on
                yield from (_outcome_of(future, item) for future, item in done)
        finally:
            if running:
                flag.set()
                self._client.cancel(list(running))
            flag.clear()

    def shutdown(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _run_on_worker(task: Callable[..., Any], item: Any, name: str) -> Outcome[Any, Any]:
    from distributed import Event, Queue

    use_one_thread_per_worker()  # also on a cluster started by the user, not only LocalCluster
    events = Queue(name)
    handler = ForwardingLogHandler(lambda kind, payload: events.put((kind, payload)))
    root = logging.getLogger()
    root.addHandler(handler)
    if logging.getLogger("fovflow").level == logging.NOTSET:
        logging.getLogger("fovflow").setLevel(logging.INFO)  # Dask workers default to WARNING
    try:
        context = TaskContext(lambda event: events.put(("event", event)),
                              CancelToken(_CachedFlag(Event(name))))
        return run_task(task, item, context)
    finally:
        root.removeHandler(handler)


class _CachedFlag:
    """A distributed.Event read at most every `_CANCEL_CHECK_S` (checked every frame)."""

    def __init__(self, event: Any) -> None:
        self._event, self._checked, self._value = event, float("-inf"), False

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._value and now - self._checked >= _CANCEL_CHECK_S:
            self._value, self._checked = self._event.is_set(), now
        return self._value


def _outcome_of(future: Any, item: Any) -> Outcome[Any, Any]:
    if future.status == "finished":
        return future.result()
    if future.status == "cancelled":
        return cancelled_outcome(item)
    error = future.exception()
    return Outcome(item, ok=False, error=f"{type(error).__name__}: {error}",
                   traceback="".join(traceback.format_exception(error)))


def _deliver(events: Any, on_event: Callable[[Any], None] | None) -> None:
    for kind, payload in events.get(batch=True):
        if kind == "log":
            logging.getLogger(payload.name).handle(payload)
        elif on_event is not None:
            on_event(payload)


def _cluster_threads(client: Any) -> int:
    return max(1, sum(client.nthreads().values()))
