"""Processing tab: choose a file, channels, features, output and parameters; run and watch it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from fovflow.errors import ConfigError, FovflowError
from fovflow.gui.jobs import JobControl
from fovflow.gui.log_panel import show_error
from fovflow.gui.merge_panel import MergePanel
from fovflow.gui.parameters import ParameterTable
from fovflow.gui.run_monitor import RunMonitor, report_parts
from fovflow.gui.segmentation_fields import SegmentationFields
from fovflow.gui.tasks import MetadataWorker, RunWorker
from fovflow.gui.widgets import checkable, is_checked, near, with_button
from fovflow.gui.workers import WorkerHandle, start_worker
from fovflow.io.microscopy import DatasetMetadata, describe_sizes
from fovflow.processing.extraction import DEFAULT_FEATURES, FEATURES
from fovflow.workflow.config import WorkflowConfig, diameter_px
from fovflow.workflow.events import RunFinished, StepProgress
from fovflow.workflow.prepare import check_steps


class ProcessingTab(QWidget):
    """Signals: ``status(str)`` for the status bar, ``run_finished(Path)`` with the run folder."""

    status = Signal(str)
    run_finished = Signal(Path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metadata: DatasetMetadata | None = None
        self._start_when_ended = False  # Start clicked while the last run's workers stop

        self.input_edit = QLineEdit(placeholderText="microscopy file (OME-TIFF, ND2, CZI)")
        self.input_edit.returnPressed.connect(self._load_typed)
        self.metadata_label = QLabel("no file loaded")
        self.metadata_label.setWordWrap(True)
        self.segment_combo = QComboBox()
        self.segment_combo.setToolTip("the channel cells are segmented in (and then tracked)")
        self.segmentation = SegmentationFields()
        self.fl_list = QListWidget()
        self.fl_list.setToolTip("channels whose intensities are measured; the segmented "
                                "channel may be one of them")
        self.feature_list = QListWidget()
        for name in FEATURES:
            self.feature_list.addItem(checkable(name, name in DEFAULT_FEATURES))
        self.fl_list.setMaximumHeight(60)
        self.feature_list.setMaximumHeight(90)
        self.output_edit = QLineEdit(placeholderText="run folder")
        self.parameters = ParameterTable()
        self.segmentation.method_changed.connect(self.parameters.set_segmentation_method)

        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.job = JobControl(self.start_button, self.cancel_button, self)
        self.job.ended.connect(self._on_ended)
        self.monitor = RunMonitor()
        self.merge_panel = MergePanel()
        self.merge_panel.status.connect(self.status)

        setup = QGroupBox("Input and parameters")
        form = QFormLayout(setup)
        form.addRow("File", with_button(self.input_edit, "Browse…", self._browse_input))
        form.addRow("", self.metadata_label)
        form.addRow("Segment channel", self.segment_combo)
        form.addRow("Method", self.segmentation)
        form.addRow("Fluorescence", self.fl_list)
        form.addRow("Features", self.feature_list)
        form.addRow("Output", with_button(self.output_edit, "Browse…", self._browse_output))
        form.addRow(self.parameters)
        form.addRow(self.parameters.help_label)
        run = QGroupBox("Run")
        run_layout = QVBoxLayout(run)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        run_layout.addLayout(buttons)
        run_layout.addWidget(self.monitor, stretch=1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(run)
        right.addWidget(self.merge_panel)
        splitter = QSplitter()
        splitter.addWidget(setup)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([1000, 1000])  # halves, whatever the widgets' size hints
        QVBoxLayout(self).addWidget(splitter)

    # ---- input ----------------------------------------------------------------------------
    def load_file(self, path: Path) -> WorkerHandle:
        """Read `path`'s metadata in a worker; the channel lists fill when it arrives."""
        self.input_edit.setText(str(path))
        self._forget_file()
        self.metadata_label.setText("reading metadata…")
        worker = MetadataWorker(Path(path))
        worker.error_occurred.connect(self._metadata_failed)
        return start_worker(worker, finished_callback=self._show_metadata)

    def _load_typed(self) -> None:
        if self.input_edit.text().strip():
            self.load_file(Path(self.input_edit.text().strip()))

    def _browse_input(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Microscopy file", near(self.input_edit.text()),
                                              "Microscopy (*.ome.tif *.ome.tiff *.nd2 *.czi)")
        if path:
            self.load_file(Path(path))

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", near(self.output_edit.text()))
        if folder:
            self.output_edit.setText(folder)

    @Slot(str, str)
    def _metadata_failed(self, message: str, details: str) -> None:
        self._forget_file()
        self.metadata_label.setText(f"cannot use this file: {message}")
        self._on_error(message, details)

    def _forget_file(self) -> None:
        """No channels of a file that is not (or no longer) the loaded one."""
        self.metadata = None
        self.segment_combo.clear()
        self.fl_list.clear()

    def _show_metadata(self, metadata: DatasetMetadata) -> None:
        self.metadata = metadata
        channels = [f"{i}: {name}" for i, name in enumerate(metadata.channel_names)]
        pixel = f", {metadata.pixel_size_um:g} µm/px" if metadata.pixel_size_um else ""
        size = (f"sizes differ: {describe_sizes(metadata.fov_sizes)}" if metadata.fov_sizes
                else f"{metadata.height} × {metadata.width} px")
        z = f" × {metadata.n_z} Z planes" if metadata.n_z > 1 else ""
        self.metadata_label.setText(
            f"{metadata.n_fovs} FOVs × {metadata.n_frames} frames × {metadata.n_channels} "
            f"channels ({', '.join(channels)}){z}; {size}, "
            f"{metadata.dtype}{pixel}; times in {metadata.time_unit}")
        self.segment_combo.clear()
        self.segment_combo.addItems(channels)
        self.segmentation.set_pixel_size(metadata.pixel_size_um)
        plugin_error = self.segmentation.refresh_methods()
        self.fl_list.clear()
        for index, label in enumerate(channels):  # all but the first, or a file's only one
            self.fl_list.addItem(checkable(label, index != 0 or len(channels) == 1))
        rows = min(len(channels), 3)  # no empty space under a file's few channels
        self.fl_list.setMaximumHeight(rows * self.fl_list.sizeHintForRow(0)
                                      + 2 * self.fl_list.frameWidth() + 2)
        if not self.output_edit.text():
            name = metadata.path.name.split(".")[0]
            self.output_edit.setText(str(metadata.path.with_name(f"{name}_run")))
        self.parameters.set_value("fovs", "all" if metadata.n_fovs > 1 else "0")
        self.parameters.set_value("z", "max" if metadata.n_z > 1 else "none")  # shown, editable
        self.status.emit(f"loaded {metadata.path.name}" + (
            f"; segmentation plugins not loaded: {plugin_error}" if plugin_error else ""))

    # ---- run ------------------------------------------------------------------------------
    def config(self) -> WorkflowConfig:
        """The configuration the widgets describe; `ConfigError` if something is missing or
        invalid: its steps are checked (`check_steps`, milliseconds) and its diameter against
        the file; the run checks the rest (`prepare_run`) before it writes anything."""
        if self.metadata is None:
            raise ConfigError("load a microscopy file first")
        if not self.output_edit.text().strip():
            raise ConfigError("choose an output folder")
        fl = [i for i in range(self.fl_list.count()) if is_checked(self.fl_list.item(i))]
        features = [self.feature_list.item(i).text() for i in range(self.feature_list.count())
                    if is_checked(self.feature_list.item(i))]
        overrides = self.parameters.overrides()
        overrides["segmentation"] = {**self.segmentation.overrides(),
                                     **overrides.get("segmentation", {})}
        config = WorkflowConfig.from_dict({
            "input": self.metadata.path, "output": Path(self.output_edit.text().strip()),
            "segment_channel": self.segment_combo.currentIndex(), "fl_channels": fl,
            "features": features, **overrides})
        parameters = check_steps(config)
        diameter_px(parameters["segmentation"]["diameter"], self.metadata)
        return config

    @Slot()
    def start(self) -> None:
        """Start a run with the current settings (errors go to the status bar and a dialog)."""
        try:
            config = self.config()
        except FovflowError as exc:  # a bad value, or a plugin that cannot be loaded
            self._on_error(str(exc), "")
            return
        self.start_button.setEnabled(False)
        if self.running:  # the last run has reported; its worker processes are still stopping
            self._start_when_ended = True
            self.monitor.say("starting as soon as the last run's workers have stopped…")
            return
        self.monitor.begin(config)
        self.job.start(RunWorker(config, self.metadata), on_progress=self._on_event,
                       on_error=self._on_error)
        self.merge_panel.run_dir_edit.setText(str(config.output))
        self.status.emit(f"run of {config.input.name} started")

    @Slot()
    def cancel(self) -> None:
        if self.job.cancel():
            self.status.emit("cancelling: running FOVs stop at their next frame")

    @property
    def handle(self) -> WorkerHandle | None:
        """The handle of the last run started (None before the first)."""
        return self.job.handle

    @property
    def running(self) -> bool:
        return self.job.running

    @Slot(object)
    def _on_event(self, event: object) -> None:
        self.monitor.show(event)
        if isinstance(event, StepProgress):
            self.status.emit(f"FOV {event.fov}: {event.step} {event.done}/{event.total}")
        elif isinstance(event, RunFinished):
            report = event.report
            self.status.emit("run finished" if report.ok else
                             "run ended: " + "; ".join(report_parts(report)))
            self.start_button.setEnabled(True)  # its worker processes may take a while to stop
            self.cancel_button.setEnabled(False)
            if report.processed or report.skipped:
                self.run_finished.emit(report.output)

    @Slot(str, str)
    def _on_error(self, message: str, details: str) -> None:
        self.status.emit(f"error: {message}")
        self.monitor.say(f"error: {message}")
        show_error(self, "fovflow", message, details)

    @Slot()
    def _on_ended(self) -> None:
        if self._start_when_ended:
            self._start_when_ended = False
            self.start()

