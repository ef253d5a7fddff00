"""Analysis tab: load sample tables, fit a model with progress and cancel, inspect the fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import QEvent, QItemSelection, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from fovflow.analysis.diagnostics import fit_notes
from fovflow.analysis.models import Model, available_models
from fovflow.analysis.tables_fit import TableFitted, fitted_path, sample_tables
from fovflow.errors import FovflowError
from fovflow.execution.knobs import usable_cores
from fovflow.gui.fit_parameters import FitParameterTable
from fovflow.gui.fit_plots import draw_fit, draw_histograms
from fovflow.gui.frame_view import make_canvas
from fovflow.gui.jobs import JobControl
from fovflow.gui.log_panel import show_error
from fovflow.gui.run_files import save_fit_report
from fovflow.gui.table_model import DataFrameModel
from fovflow.gui.tasks import FitWorker, ProgressEvent
from fovflow.gui.widgets import near, with_button
from fovflow.gui.workers import WorkerHandle
from fovflow.io.tables import SampleTable, read_any_table, read_fitted_table, to_hours


class AnalysisTab(QWidget):
    """Signal ``status(str)`` for the status bar."""

    status = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table_path: Path | None = None
        self.table: SampleTable | None = None
        self.fitted = pd.DataFrame()
        self.models: dict[str, Model] = {}

        self.path_edit = QLineEdit(placeholderText="sample table or folder of them")
        self.path_edit.returnPressed.connect(lambda: self.load_path(Path(self.path_edit.text())))
        self.table_combo = QComboBox()
        self.table_combo.currentIndexChanged.connect(self._table_chosen)
        self.model_combo = QComboBox()
        self.model_combo.currentTextChanged.connect(self._model_chosen)
        self.parameters = FitParameterTable()
        self.interval_spin = QDoubleSpinBox(minimum=0.0, maximum=1e6, value=10.0, suffix=" min")
        self.interval_spin.setToolTip("minutes per frame, for tables timed in frames")
        # As `fovflow fit`: every core this process may use.
        self.workers_spin = QSpinBox(minimum=1, maximum=256, value=usable_cores())
        self.all_tables = QCheckBox("fit every table of the folder")
        self.start_button = QPushButton("Start fitting")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.job = JobControl(self.start_button, self.cancel_button, self)
        self.progress_bar = QProgressBar(format="%v/%m cells")
        self.r2_spin = QDoubleSpinBox(minimum=-1.0, maximum=1.0, value=0.9, singleStep=0.05)
        self.r2_spin.valueChanged.connect(self._refresh_results)
        self.good_only = QCheckBox("good fits only (R² ≥)")
        self.good_only.toggled.connect(self._refresh_results)
        self.count_label = QLabel("")
        self.notes_label = QLabel("")
        self.notes_label.setWordWrap(True)
        self.results = DataFrameModel()
        self.results_view = QTableView()
        self.results_view.setModel(self.results)
        self.results_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.results_view.selectionModel().selectionChanged.connect(self._row_chosen)
        self.save_button = QPushButton("Save plots and tables…")
        self.save_button.clicked.connect(self._browse_save)
        self.curve_figure, self.curve_canvas = make_canvas(5, 3)
        self.hist_figure, self.hist_canvas = make_canvas(5, 3)
        # Rows of histograms are laid out for the canvas's width: again once a resize settles.
        self._relayout = QTimer(self, singleShot=True, interval=200)
        self._relayout.timeout.connect(self._draw_histograms)
        self.hist_canvas.installEventFilter(self)
        self.parameters.setSizeAdjustPolicy(
            QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)  # never clipped cells

        form = QFormLayout()
        form.addRow(with_button(self.path_edit, "Table…", self._browse_table,
                                ("Folder…", self._browse_folder)))
        form.addRow("Table", self.table_combo)
        form.addRow("Model", self.model_combo)
        form.addRow(self.parameters)
        form.addRow(self.parameters.help_label)
        form.addRow("Frame interval", self.interval_spin)
        form.addRow("Workers", self.workers_spin)
        form.addRow(self.all_tables)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        form.addRow(self.progress_bar)
        left = QWidget()
        left.setLayout(form)
        filters = QHBoxLayout()
        for widget in (self.good_only, self.r2_spin, self.count_label):
            filters.addWidget(widget)
        filters.addStretch(1)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.addLayout(filters)
        notes = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        notes.setWidget(self.notes_label)
        notes.setMaximumHeight(6 * self.fontMetrics().lineSpacing())  # the table keeps room
        middle_layout.addWidget(notes)
        middle_layout.addWidget(self.results_view)
        middle_layout.addWidget(self.save_button)
        plots = QSplitter()
        plots.setOrientation(plots.orientation().Vertical)
        plots.addWidget(self.curve_canvas)
        histograms = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        histograms.setWidget(self.hist_canvas)
        plots.addWidget(histograms)
        splitter = QSplitter()
        for widget in (left, middle, plots):
            splitter.addWidget(widget)
        splitter.setSizes([400, 460, 540])
        QVBoxLayout(self).addWidget(splitter)
        self._load_models()

    # ---- tables ---------------------------------------------------------------------------
    @Slot(list)
    def offer_tables(self, written: list[Path]) -> None:
        """Load the folder of freshly merged tables unless a table is already loaded."""
        if written and self.table is None:
            self.load_path(written[0].parent)
            self.table_combo.setCurrentIndex(max(0, self.table_combo.findText(
                "intensity_total", Qt.MatchFlag.MatchContains)))

    def load_path(self, path: Path) -> None:
        """Load a sample table, or list the tables of a folder and load the first."""
        try:
            tables = sample_tables(path)
        except FovflowError as exc:
            self._on_error(str(exc), "")
            return
        self.path_edit.setText(str(path))
        self.table_combo.blockSignals(True)
        self.table_combo.clear()
        for table in tables:
            self.table_combo.addItem(table.name, table)
        self.table_combo.blockSignals(False)
        self._table_chosen()

    def _table_chosen(self) -> None:
        path = self.table_combo.currentData()
        if path is None:
            return
        try:
            self.table = read_any_table(path)
        except FovflowError as exc:
            # Nothing of the table shown before stays beside the name of one that failed.
            self.table, self.table_path, self.fitted = None, None, pd.DataFrame()
            self.notes_label.setText("")
            self._refresh_results()
            self._on_error(str(exc), "")
            return
        self.table_path = path
        self.fitted = pd.DataFrame()
        for name in self.models:  # previously fitted results load with their settings
            if fitted_path(path, name).is_file():
                self._show_fitted(fitted_path(path, name))
        self._refresh_results()
        self.status.emit(f"loaded {path.name}: {self.table.values.shape[1]} cells, "
                         f"{self.table.values.shape[0]} time points ({self.table.time_unit})")

    # ---- fitting --------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        """Fit the chosen table (or every table listed) in a worker thread."""
        try:
            if self.table_path is None:
                raise FovflowError("load a sample table first")
            settings = self.parameters.settings()
        except FovflowError as exc:
            self._on_error(str(exc), "")
            return
        tables = ([self.table_combo.itemData(i) for i in range(self.table_combo.count())]
                  if self.all_tables.isChecked() else [self.table_path])
        interval = self.interval_spin.value()
        worker = FitWorker(tables, settings, n_workers=self.workers_spin.value(),
                           frame_interval_h=interval / 60 if interval > 0 else None)
        worker.file_processed.connect(self._on_table_fitted)
        worker.aborted.connect(self._on_aborted)
        self.job.start(worker, on_progress=self._on_progress, on_result=self._on_finished,
                       on_error=self._on_error)
        self.status.emit(f"fitting {settings.model} to {len(tables)} table(s)")

    @Slot()
    def cancel(self) -> None:
        self.job.cancel()

    @property
    def handle(self) -> WorkerHandle | None:
        """The handle of the last fit started (None before the first)."""
        return self.job.handle

    @Slot(object)
    def _on_progress(self, progress: ProgressEvent) -> None:
        self.progress_bar.setMaximum(progress.total)
        self.progress_bar.setValue(progress.done)
        self.status.emit(f"fitting {progress.label}: {progress.done}/{progress.total} cells")

    @Slot(str, object)
    def _on_table_fitted(self, table: str, event: TableFitted) -> None:
        self.status.emit(f"{Path(table).name}: {event.n_success}/{event.n_cells} fits succeeded")
        if Path(table) == self.table_path:
            self._show_fitted(event.output)
            self._refresh_results()

    def _on_finished(self, outputs: list[Path]) -> None:
        self.status.emit(f"fitting finished: {len(outputs)} fitted table(s) written")

    @Slot()
    def _on_aborted(self) -> None:
        self.status.emit("fitting cancelled")

    # ---- results --------------------------------------------------------------------------
    def _show_fitted(self, path: Path) -> None:
        """Load a fitted table, show the settings it was fitted with and what to know about it."""
        self.fitted, record = read_fitted_table(path)
        self.model_combo.setCurrentText(str(record.get("model", "")))
        model = self.models.get(self.model_combo.currentText())
        if model is None:
            return
        try:
            self.parameters.show_recorded(model, record)
        except FovflowError as exc:  # recorded by another version of a plugin model
            self._on_error(f"{path.name}: its settings do not fit {model.name}: {exc}", "")
        self.notes_label.setText("\n".join(fit_notes(self.fitted, self.parameters.constrained())))

    def shown_fits(self) -> pd.DataFrame:
        """The results as shown: every fit, or the successful ones above the R² threshold."""
        if not len(self.fitted) or not self.good_only.isChecked():
            return self.fitted
        good = self.fitted["success"].astype(bool) & (self.fitted["r_squared"]
                                                      >= self.r2_spin.value())
        return self.fitted[good]

    def _refresh_results(self) -> None:
        shown = self.shown_fits()
        self.results.set_frame(shown.reset_index(drop=True))
        self.results_view.resizeColumnsToContents()
        self.count_label.setText(f"{len(shown)} of {len(self.fitted)} cells")
        model = self.models.get(self.model_combo.currentText())
        if model is None or not len(shown):
            for figure in (self.curve_figure, self.hist_figure):
                figure.clear()
                figure.canvas.draw_idle()
            return
        self._draw_histograms()
        self.results_view.selectRow(0)

    def _draw_histograms(self) -> None:
        shown = self.shown_fits()
        model = self.models.get(self.model_combo.currentText())
        if model is None or not len(shown):
            return
        varying = [n for n in model.names if n in shown and shown[n].nunique() > 1]
        draw_histograms(self.hist_figure, shown[shown["success"].astype(bool)], varying,
                        {p.name: p.unit for p in model.parameters})

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.hist_canvas and event.type() == QEvent.Type.Resize:
            self._relayout.start()
        return super().eventFilter(watched, event)

    def _row_chosen(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        rows = selected.indexes()
        if not rows or self.table is None:
            return
        row = self.results.frame.iloc[rows[0].row()]
        model = self.models.get(str(row["model"]))
        if model is None:
            return
        column = f"fov_{int(row['fov']):03d}_cell_{int(row['cell'])}"
        times = self.table.values.index.to_numpy(dtype=float)
        draw_fit(self.curve_figure, self._hours(times), self.table.values[column].to_numpy(),
                 model, row, title=column)

    def save_results(self, folder: Path) -> list[Path]:
        """Write the shown fits as a fitted table, plus curve and histogram plots and a summary
        (fits not shown count as unsuccessful in the plots)."""
        assert self.table is not None and self.table_path is not None
        settings = self.parameters.settings()
        written = save_fit_report(self.table, self.table_path.stem, self.fitted,
                                  self.shown_fits(), settings, self._interval_h(), folder)
        self.status.emit(f"saved {len(written)} files in {folder}")
        return written

    # ---- helpers --------------------------------------------------------------------------
    def _load_models(self) -> None:
        try:
            self.models = available_models()
        except FovflowError as exc:
            self._on_error(f"model plugins: {exc}", "")
            self.models = {}
        self.model_combo.addItems(list(self.models))
        self.model_combo.setCurrentText("maturation")

    def _model_chosen(self, name: str) -> None:
        if name in self.models:
            self.parameters.show_model(self.models[name])

    def _interval_h(self) -> float | None:
        return self.interval_spin.value() / 60 if self.interval_spin.value() > 0 else None

    def _hours(self, times: np.ndarray) -> np.ndarray:
        assert self.table is not None
        return to_hours(times, self.table.time_unit, frame_interval_h=self._interval_h())

    @Slot(str, str)
    def _on_error(self, message: str, details: str) -> None:
        self.status.emit(f"error: {message}")
        show_error(self, "fovflow analysis", message, details)

    def _browse_table(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Sample table", near(self.path_edit.text()),
                                              "CSV (*.csv)")
        if path:
            self.load_path(Path(path))

    def _browse_folder(self) -> None:
        if folder := QFileDialog.getExistingDirectory(self, "Folder of sample tables",
                                                 near(self.path_edit.text())):
            self.load_path(Path(folder))

    def _browse_save(self) -> None:
        if not len(self.fitted):
            self._on_error("fit a table (or load one with its fits) first", "")
        elif folder := QFileDialog.getExistingDirectory(self, "Save plots and tables in",
                                                   near(self.path_edit.text())):
            self.save_results(Path(folder))

