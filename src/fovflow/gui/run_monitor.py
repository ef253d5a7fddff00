"""What the processing tab shows of a run: a progress bar of the work done, a status per FOV and
a summary that counts the FOVs while the run goes and says what it did when it ends."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fovflow.io.layout import LOG_NAME
from fovflow.ranges import format_ranges
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.events import FovFinished, FovStarted, RunFinished, RunStarted, StepProgress
from fovflow.workflow.run import RunReport

BAR_STEPS = 1000
_STATES = ("done", "running", "queued", "failed", "cancelled")


class RunMonitor(QWidget):
    """Fed a run's events by `show`, after `begin`; the bar counts only work that finished (a
    cancelled or failed FOV's unfinished steps are not done)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._todo: dict[int, tuple[str, ...]] = {}
        self._work: dict[int, float] = {}
        self._rows: dict[int, int] = {}
        self._state: dict[int, str] = {}  # FOV -> one of _STATES
        self._workers = "the workers"
        self._workers_up = False  # a worker of this run has begun a FOV
        self.progress_bar = QProgressBar(maximum=BAR_STEPS, format="%p %")
        self.fov_table = QTableWidget(0, 2)
        self.fov_table.setHorizontalHeaderLabels(["FOV", "status"])
        self.fov_table.verticalHeader().hide()
        self.fov_table.horizontalHeader().setStretchLastSection(True)
        self.fov_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.fov_table, stretch=1)
        layout.addWidget(self.summary_label)

    def begin(self, config: WorkflowConfig) -> None:
        """Forget the last run; `config` says which workers the next one starts."""
        self._todo, self._work, self._rows, self._state = {}, {}, {}, {}
        self._workers, self._workers_up = _workers(config), False
        self.fov_table.setRowCount(0)
        self.progress_bar.setValue(0)
        self.summary_label.setText(f"reading {config.input.name}…")

    def show(self, event: object) -> None:
        """Show one engine event."""
        if isinstance(event, RunStarted):
            self._todo = event.todo
            for fov in event.fovs:
                self._state[fov] = "queued"
                self._set_status(fov, f"queued: {self._workers} starting…"
                                 if event.todo.get(fov) else "queued")
        elif isinstance(event, FovStarted):
            self._state[event.fov] = "running"
            self._set_status(event.fov, "started")
            self._workers_ready()
        elif isinstance(event, StepProgress):
            self._state[event.fov] = "running"
            self._set_status(event.fov, f"running {event.step} at frame "
                                        f"{event.done}/{event.total}")
            self._workers_ready()
            steps = self._todo.get(event.fov, ())
            finished = steps.index(event.step) if event.step in steps else 0
            self._advance(event.fov, finished + event.done / max(event.total, 1))
        elif isinstance(event, FovFinished):
            if event.ok:  # a cancelled or failed FOV did not do the rest of its work
                self._advance(event.fov, len(self._todo.get(event.fov, ())))
            self._state[event.fov] = ("cancelled" if event.cancelled else
                                      "done" if event.ok else "failed")
            item = self._set_status(event.fov, _fov_status(event))
            item.setToolTip(event.traceback or "")
        if isinstance(event, RunFinished):
            self._show_report(event.report)
        else:
            self._show_counts()

    def say(self, text: str) -> None:
        """Put `text` in the summary (an error, a start that waits)."""
        self.summary_label.setText(text)

    def _workers_ready(self) -> None:
        """Once a worker runs a FOV, the others wait for a free worker, not for start-up."""
        if self._workers_up:
            return
        self._workers_up = True
        for fov, state in self._state.items():
            if state == "queued":
                self._set_status(fov, "queued")

    def _show_counts(self) -> None:
        counts = {state: sum(1 for s in self._state.values() if s == state) for state in _STATES}
        if counts["queued"] == len(self._state) and not counts["running"]:
            self.say(f"{len(self._state)} FOV(s) queued; starting {self._workers}…")
            return
        others = [f"{count} {state}" for state, count in counts.items()
                  if count and state != "done"]
        text = f"{counts['done']} of {len(self._state)} FOV(s) done"
        self.say(f"{text}; {', '.join(others)}" if others else text)

    def _show_report(self, report: RunReport) -> None:
        if report.ok:
            self.progress_bar.setValue(BAR_STEPS)
        self.say(f"{'; '.join(report_parts(report)) or 'nothing to do'} in "
                 f"{report.seconds:.1f} s; log: {report.output / LOG_NAME}")

    def _advance(self, fov: int, units: float) -> None:
        self._work[fov] = units
        total = sum(len(steps) for steps in self._todo.values())
        if total:
            self.progress_bar.setValue(round(BAR_STEPS * sum(self._work.values()) / total))

    def _set_status(self, fov: int, text: str) -> QTableWidgetItem:
        if fov not in self._rows:
            row = self._rows[fov] = self.fov_table.rowCount()
            self.fov_table.insertRow(row)
            self.fov_table.setItem(row, 0, QTableWidgetItem(f"{fov:03d}"))
            self.fov_table.setItem(row, 1, QTableWidgetItem())
        item = self.fov_table.item(self._rows[fov], 1)
        item.setText(text)
        return item


def report_parts(report: RunReport) -> list[str]:
    """``4 processed (0-3)``, ``1 failed (2)``...: what the run did, FOV by FOV."""
    return [f"{len(fovs)} {label} ({format_ranges(fovs)})" for label, fovs in
            [("processed", report.processed), ("already complete", report.skipped),
             ("failed", tuple(report.failed)), ("cancelled", report.cancelled)] if fovs]


def _workers(config: WorkflowConfig) -> str:
    if config.executor == "serial":
        return "the worker"
    kind = {"process": "worker processes", "thread": "worker threads"}.get(config.executor,
                                                                          "Dask workers")
    return f"{config.n_workers} {kind}"


def _fov_status(event: FovFinished) -> str:
    if event.cancelled:
        return "cancelled"
    if not event.ok:
        return f"failed: {event.error}"
    return "done (already complete)" if event.skipped else f"done in {event.seconds:.1f} s"
