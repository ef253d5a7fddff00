"""Worker threads: documented signal order, cooperative stop that returns at once, clean end."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, Slot

from fovflow.errors import ConfigError
from fovflow.gui.workers import Worker, running_handles, start_worker


class _Recorder(QObject):
    """Receives worker signals in the GUI thread and notes their order and thread."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.threads: set[bool] = set()
        worker.started.connect(self.on_started)
        worker.progress.connect(self.on_progress)
        worker.finished.connect(self.on_finished)
        worker.error_occurred.connect(self.on_error)
        worker.aborted.connect(self.on_aborted)
        worker.done.connect(self.on_done)

    def _note(self, name: str) -> None:
        self.calls.append(name)
        self.threads.add(threading.current_thread() is threading.main_thread())

    @Slot()
    def on_started(self) -> None:
        self._note("started")

    @Slot(object)
    def on_progress(self, event: object) -> None:
        self._note(f"progress {event}")

    @Slot(object)
    def on_finished(self, result: object) -> None:
        self._note(f"finished {result}")

    @Slot(str, str)
    def on_error(self, message: str, details: str) -> None:
        self._note(f"error {message}")

    @Slot()
    def on_aborted(self) -> None:
        self._note("aborted")

    @Slot()
    def on_done(self) -> None:
        self._note("done")


class _Counting(Worker):
    def __init__(self, steps: int, fail: bool = False, delay: float = 0.0) -> None:
        super().__init__()
        self.steps, self.fail, self.delay = steps, fail, delay

    def work(self) -> int:
        for step in range(self.steps):
            self.cancel_token.raise_if_cancelled()
            self.progress.emit(step)
            time.sleep(self.delay)
        if self.fail:
            raise ConfigError("bad value")
        return self.steps


def _run(qtbot, worker: Worker) -> tuple[_Recorder, list[object]]:
    recorder, results = _Recorder(worker), []
    handle = start_worker(worker, finished_callback=results.append)
    with qtbot.waitSignal(handle.ended, timeout=5000):
        pass
    assert not handle.running and handle not in running_handles()
    return recorder, results


def test_signals_arrive_in_order_in_the_gui_thread_and_the_result_reaches_the_callback(qtbot):
    recorder, results = _run(qtbot, _Counting(3))
    assert recorder.calls == ["started", "progress 0", "progress 1", "progress 2", "finished 3",
                              "done"]
    assert recorder.threads == {True}
    assert results == [3]


def test_a_failing_worker_reports_its_message_and_no_result(qtbot):
    recorder, results = _run(qtbot, _Counting(1, fail=True))
    assert recorder.calls == ["started", "progress 0", "error bad value", "done"]
    assert results == []


def test_stop_returns_at_once_and_a_cancelled_worker_reports_no_result(qtbot):
    worker = _Counting(10_000, delay=0.01)
    recorder, results = _Recorder(worker), []
    handle = start_worker(worker, finished_callback=results.append)
    qtbot.waitUntil(lambda: len(recorder.calls) > 2, timeout=5000)
    start = time.perf_counter()
    handle.stop()
    assert time.perf_counter() - start < 0.01
    with qtbot.waitSignal(handle.ended, timeout=2000):
        pass
    assert recorder.calls[-2:] == ["aborted", "done"]
    assert not any(call.startswith("finished") for call in recorder.calls)
    assert results == []
