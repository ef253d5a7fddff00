"""Items on a pool of threads of the caller's process: fine when the work releases the GIL
(numpy, OpenCV and scipy do for most of a frame)."""

from __future__ import annotations

import contextlib
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from fovflow.execution.base import (
    Executor,
    OnEvent,
    Outcome,
    Session,
    Task,
    TaskContext,
    new_run_name,
    run_task,
    this_process,
)
from fovflow.execution.cancel import CancelToken
from fovflow.execution.native_threads import one_thread_per_worker, use_one_openmp_thread


class ThreadExecutor(Executor):
    """Runs items on a pool of threads; events are queued and delivered in the caller's thread."""

    kind = "thread"

    def __init__(self, n_workers: int | None = None, max_in_flight: int | None = None) -> None:
        super().__init__(n_workers, max_in_flight)
        self._pool = ThreadPoolExecutor(self.n_workers, thread_name_prefix="fovflow",
                                        initializer=use_one_openmp_thread)

    def _session(self, task: Task[Any, Any], deliver: OnEvent,
                 token: CancelToken) -> Session[Any, Any]:
        return _ThreadSession(self, task, deliver, token)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _ThreadSession(Session[Any, Any]):
    """The running items as futures of the pool; the cancel token itself is the workers'."""

    def __init__(self, executor: ThreadExecutor, task: Task[Any, Any], deliver: OnEvent,
                 token: CancelToken) -> None:
        super().__init__(executor.max_in_flight)
        self._pool, self._task, self._deliver = executor._pool, task, deliver
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._context = TaskContext(self._events.put, token, f"{this_process()} (threads)",
                                    new_run_name())
        self._running: set[Future[Outcome[Any, Any]]] = set()
        self._done: set[Future[Outcome[Any, Any]]] = set()
        self._native_threads = contextlib.ExitStack()
        # The pool's threads share this process's cores: one native thread each while it runs.
        self._native_threads.enter_context(one_thread_per_worker())

    @property
    def busy(self) -> int:
        return len(self._running)

    def submit(self, item: Any) -> None:
        self._running.add(self._pool.submit(run_task, self._task, item, self._context))

    def wait_any(self, timeout: float) -> None:
        self._done, _ = wait(self._running, timeout=timeout, return_when=FIRST_COMPLETED)

    def collect(self) -> list[Outcome[Any, Any]]:
        while True:  # a task's events were queued before its future completed
            try:
                self._deliver(self._events.get_nowait())
            except queue.Empty:
                break
        self._running -= self._done
        done, self._done = self._done, set()
        return [future.result() for future in done]

    def close(self) -> None:
        self._native_threads.close()
