"""Worker threads: a QObject worker moved to its own QThread, talking only through signals.

Life cycle of a `Worker`, in signal order::

    started -> progress* / file_processed* -> (finished(result) | error_occurred | aborted) -> done

``done`` always comes last, exactly once. A cancelled worker emits ``aborted`` and never a result.
Cancelling sets the worker's `CancelToken`, which the work checks (the engine checks it every
frame); nothing is killed from outside, and no one ever waits for a thread in the GUI thread.

Connect worker signals only to methods of QObjects that live in the GUI thread (widgets, the
`WorkerHandle`): Qt then queues each emission to the GUI thread's event loop.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from fovflow.errors import Cancelled, FovflowError
from fovflow.execution import CancelToken

log = logging.getLogger(__name__)

# Handles of threads that have not ended yet: they keep the QThread (and its Python wrapper)
# alive until Qt says the thread is finished, so none is destroyed while it runs.
_RUNNING: set[WorkerHandle] = set()
_FINISH_POLL_MS = 5


class Worker(QObject):
    """Base of every worker: subclasses implement `work` and may emit `progress`.

    Signals
    -------
    started()
        The work began (in the worker thread).
    progress(object)
        A structured event: an engine event, a ``(done, total)`` pair, ...
    file_processed(str, object)
        One of several files is done: its name and its result.
    finished(object)
        The work's result; not emitted when the work failed or was cancelled.
    error_occurred(str, str)
        A message for the user and the traceback.
    aborted()
        The work stopped because it was cancelled.
    done()
        Always the last signal, after any of the three above.
    """

    started = Signal()
    progress = Signal(object)
    file_processed = Signal(str, object)
    finished = Signal(object)
    error_occurred = Signal(str, str)
    aborted = Signal()
    done = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.cancel_token = CancelToken()

    def work(self) -> Any:
        """Do the work in the worker thread and return its result; may raise `Cancelled`."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Ask the work to stop at its next check; returns at once (any thread)."""
        self.cancel_token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    def run(self) -> None:
        """Run `work` and emit the life-cycle signals (the body of the worker's thread)."""
        self.started.emit()
        try:
            result = self.work()
        except Cancelled:
            self.aborted.emit()
        except FovflowError as exc:  # a user's mistake: its message says what to do
            self.error_occurred.emit(str(exc), traceback.format_exc())
        except Exception as exc:  # a bug: report it with its traceback, never crash the window
            log.exception("worker %s failed", type(self).__name__)
            self.error_occurred.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            if self.cancelled:
                self.aborted.emit()
            else:
                self.finished.emit(result)
        finally:
            self.done.emit()
            # Hand the object back to the GUI thread (a push, which Qt allows) so that it is
            # deleted there: no object is ever destroyed by a thread other than its owner's.
            self.moveToThread(QCoreApplication.instance().thread())


class WorkerHandle(QObject):
    """The GUI thread's view of a started worker: stop it, and learn when its thread ended.

    Signals
    -------
    ended()
        The worker's thread has really finished (after the worker's ``done``).
    """

    ended = Signal()

    def __init__(self, worker: Worker, thread: QThread,
                 finished_callback: Callable[[Any], None] | None) -> None:
        super().__init__()
        self.worker = worker  # kept alive (with its thread) until the thread has ended
        self._token = worker.cancel_token
        self._thread = thread
        self._finished_callback = finished_callback
        self._running = True
        worker.finished.connect(self._on_finished)
        thread.finished.connect(self._on_thread_finished)

    @property
    def running(self) -> bool:
        """True until the thread has ended."""
        return self._running

    def stop(self) -> None:
        """Cancel the work cooperatively; returns at once. `ended` follows when it stopped."""
        self._token.cancel()

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        if self._finished_callback is not None:
            self._finished_callback(result)

    @Slot()
    def _on_thread_finished(self) -> None:
        # QThread.finished is emitted just *before* the thread ends: check again shortly
        # instead of waiting, so the QThread is released only once it is really finished.
        if not self._thread.isFinished():
            QTimer.singleShot(_FINISH_POLL_MS, self._on_thread_finished)
            return
        self._running = False
        self.worker.deleteLater()
        self._thread.deleteLater()
        self._finished_callback = None  # no reference cycle back to the widget that started it
        _RUNNING.discard(self)
        self.ended.emit()


class _WorkerThread(QThread):
    """A thread whose body is one worker's `Worker.run`.

    Qt calls `run` through PySide's override of the C++ virtual, which takes the GIL first. A
    slot connected to ``started`` instead goes through PySide's ``qt_metacall``, which in
    PySide6 6.11 reads the worker class's meta-object without the GIL: a segfault in
    ``PySide::MetaObjectBuilder::update`` in 7 of 26 runs of the screenshot test.
    """

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:
        self._worker.run()


def start_worker(
    worker: Worker, finished_callback: Callable[[Any], None] | None = None
) -> WorkerHandle:
    """Move `worker` to a new thread, run it there and return its handle.

    Call from the GUI thread. `finished_callback(result)` runs in the GUI thread when the
    worker finishes with a result. The worker and the thread are deleted (``deleteLater``, in
    the GUI thread) once the thread has finished.
    """
    thread = _WorkerThread(worker)
    thread.setObjectName(f"fovflow-{type(worker).__name__}")
    worker.moveToThread(thread)
    handle = WorkerHandle(worker, thread, finished_callback)
    _RUNNING.add(handle)
    thread.start()
    return handle


def running_handles() -> list[WorkerHandle]:
    """Every worker whose thread has not ended yet."""
    return list(_RUNNING)
