"""`JobControl`: the job a tab runs in a worker thread, with its Start and Cancel buttons.

Every tab runs its long jobs the same way: one at a time, Start disabled and Cancel enabled
while it runs, both back once the worker's thread has ended (however the work ended). The tab
says what to do with the worker's progress, result and error; this class does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QPushButton

from fovflow.gui.workers import Worker, WorkerHandle, start_worker


class JobControl(QObject):
    """Starts a tab's jobs and keeps its buttons in step with them.

    Signals
    -------
    ended()
        The job's thread has ended and the buttons are back (Start enabled, Cancel not).
    """

    ended = Signal()

    def __init__(self, start_button: QPushButton, cancel_button: QPushButton | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._start_button, self._cancel_button = start_button, cancel_button
        self.handle: WorkerHandle | None = None  # of the last job started

    @property
    def running(self) -> bool:
        """True from `start` until the job's thread has ended."""
        return self.handle is not None and self.handle.running

    def start(self, worker: Worker, *, on_progress: Callable[[Any], None] | None = None,
              on_result: Callable[[Any], None] | None = None,
              on_error: Callable[[str, str], None] | None = None) -> WorkerHandle:
        """Run `worker` in its thread; its `progress` events go to `on_progress`, its result
        to `on_result` and its error (message, traceback) to `on_error`, in the GUI thread.

        Connect any other signal of the worker (``aborted``, ``file_processed``) before."""
        if on_progress is not None:
            worker.progress.connect(on_progress)
        if on_error is not None:
            worker.error_occurred.connect(on_error)
        self.handle = start_worker(worker, finished_callback=on_result)
        self.handle.ended.connect(self._on_ended)
        self._start_button.setEnabled(False)
        if self._cancel_button is not None:
            self._cancel_button.setEnabled(True)
        return self.handle

    @Slot()
    def cancel(self) -> bool:
        """Ask the job to stop at its next check (returns at once); False if none was started."""
        if self.handle is None:
            return False
        self.handle.stop()
        if self._cancel_button is not None:
            self._cancel_button.setEnabled(False)
        return True

    @Slot()
    def _on_ended(self) -> None:
        self._start_button.setEnabled(True)
        if self._cancel_button is not None:
            self._cancel_button.setEnabled(False)
        self.ended.emit()
