"""Merge panel: samples (name, FOV ranges) edited as a table, saved as samples.yaml, merged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from fovflow.analysis.merge import Sample, read_samples
from fovflow.errors import ConfigError
from fovflow.gui.jobs import JobControl
from fovflow.gui.log_panel import show_error
from fovflow.gui.tasks import MergeWorker, ProgressEvent
from fovflow.gui.widgets import near, with_button
from fovflow.ranges import format_ranges, parse_ranges

SAMPLES_FILE = "samples.yaml"


class MergePanel(QGroupBox):
    """Signals: ``status(str)``; ``merged(list)`` with the wide tables written."""

    status = Signal(str)
    merged = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Merge traces into samples", parent)
        self._merging: Path | None = None  # the run folder of the merge under way
        self.run_dir_edit = QLineEdit(placeholderText="run folder with fov_XXX/traces_ch_C.csv")
        self.run_dir_edit.textChanged.connect(self._run_dir_changed)
        self.samples_table = QTableWidget(0, 2)
        self.samples_table.setHorizontalHeaderLabels(["sample", "FOVs (e.g. 0-3,5)"])
        self.samples_table.horizontalHeader().setStretchLastSection(True)
        self.samples_table.verticalHeader().hide()
        self.min_length = QSpinBox(minimum=1, maximum=100000, value=10)
        self.min_length.setToolTip("good frames a cell needs to enter a sample table")
        self.merge_button = QPushButton("Run Merge")
        self.merge_button.clicked.connect(self.merge)
        self.job = JobControl(self.merge_button, parent=self)
        self.progress_bar = QProgressBar(format="%v/%m samples")
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)

        buttons = QHBoxLayout()
        for text, slot in [("Add", self.add_sample), ("Remove", self._remove_selected),
                           ("Load…", self._browse_load), ("Save…", self._browse_save)]:
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout = QFormLayout(self)
        layout.addRow("Run folder", with_button(self.run_dir_edit, "Browse…", self._browse_run))
        layout.addRow(self.samples_table)
        layout.addRow(buttons)
        layout.addRow("Min. length", self.min_length)
        layout.addRow(self.merge_button, self.progress_bar)
        layout.addRow(self.result_label)

    def add_sample(self, name: str = "", fovs: str = "") -> None:
        row = self.samples_table.rowCount()
        self.samples_table.insertRow(row)
        self.samples_table.setItem(row, 0, QTableWidgetItem(name or f"sample{row + 1}"))
        self.samples_table.setItem(row, 1, QTableWidgetItem(fovs))

    def samples(self) -> list[Sample]:
        """The samples in the table, checked like a samples.yaml (names, ranges, overlaps)."""
        rows = [(self.samples_table.item(r, 0).text().strip(),
                 self.samples_table.item(r, 1).text().strip())
                for r in range(self.samples_table.rowCount())]
        if not rows:
            raise ConfigError("add at least one sample (a name and its FOVs)")
        return [Sample(name, tuple(parse_ranges(fovs))) for name, fovs in rows]

    def save_samples(self, path: Path) -> list[Sample]:
        """Write the table to `path` as samples.yaml, read it back (validating it), return it."""
        entries = [{"name": s.name, "fovs": format_ranges(s.fovs)} for s in self.samples()]
        path.write_text(yaml.safe_dump({"samples": entries}, sort_keys=False), encoding="utf-8")
        return read_samples(path)

    def load_samples(self, path: Path) -> None:
        self.samples_table.setRowCount(0)
        for sample in read_samples(path):
            self.add_sample(sample.name, format_ranges(sample.fovs))

    @Slot()
    def merge(self) -> None:
        """Save the samples to RUN/samples.yaml and merge the run's traces in a worker."""
        run_dir = Path(self.run_dir_edit.text().strip())
        try:
            if not self.run_dir_edit.text().strip() or not run_dir.is_dir():
                raise ConfigError(f"choose an existing run folder, not {str(run_dir)!r}")
            samples = self.save_samples(run_dir / SAMPLES_FILE)
        except ConfigError as exc:
            self._on_error(str(exc), "")
            return
        self._merging = run_dir
        self.result_label.setText(f"merging the traces of {run_dir}…")
        self.job.start(MergeWorker(run_dir, samples, self.min_length.value()),
                       on_progress=self._on_progress, on_result=self._on_merged,
                       on_error=self._on_error)

    @Slot(object)
    def _on_progress(self, progress: ProgressEvent) -> None:
        self.progress_bar.setMaximum(progress.total)
        self.progress_bar.setValue(progress.done)

    def _on_merged(self, written: list[Path]) -> None:
        folder = written[0].parent if written else self._merging
        self._merging = None
        self.result_label.setText(f"wrote {len(written)} sample tables in {folder}")
        self.status.emit(f"merge finished: {len(written)} tables")
        self.merged.emit(written)

    @Slot(str, str)
    def _on_error(self, message: str, details: str) -> None:
        self._merging = None
        self.result_label.setText(f"error: {message}")
        self.status.emit(f"error: {message}")
        show_error(self, "fovflow merge", message, details)

    @Slot(str)
    def _run_dir_changed(self, text: str) -> None:
        """A message about another run folder's merge is not left beside this one."""
        if self._merging is None:
            self.result_label.setText("")
            self.progress_bar.reset()

    def _remove_selected(self) -> None:
        for row in sorted({i.row() for i in self.samples_table.selectedIndexes()}, reverse=True):
            self.samples_table.removeRow(row)

    def _browse_run(self) -> None:
        if folder := QFileDialog.getExistingDirectory(self, "Run folder",
                                                 near(self.run_dir_edit.text())):
            self.run_dir_edit.setText(folder)

    def _browse_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Samples", near(self.run_dir_edit.text()),
                                              "YAML (*.yaml *.yml)")
        if path:
            self._guarded(lambda: self.load_samples(Path(path)))

    def _browse_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Samples", SAMPLES_FILE, "YAML (*.yaml)")
        if path:
            self._guarded(lambda: self.save_samples(Path(path)))

    def _guarded(self, action: Callable[[], object]) -> None:
        try:
            action()
        except ConfigError as exc:
            self._on_error(str(exc), "")
