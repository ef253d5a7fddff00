"""Visualization tab: frames of a run with tracked outlines, traces, and cell quality marks.

Quality is a property of a cell: marking it bad sets ``good`` on every row of that cell in every
``traces_ch_C.csv`` of its FOV (rewritten atomically on Save), and merge honours it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backend_bases import KeyEvent
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fovflow.errors import FovflowError, MissingFileError
from fovflow.gui.frame_panel import FramePanel
from fovflow.gui.log_panel import show_error
from fovflow.gui.run_files import run_time_unit, write_quality
from fovflow.gui.trace_plot import TracePlot
from fovflow.gui.widgets import near, with_button
from fovflow.io.ctc import run_fovs
from fovflow.io.frames import Frames
from fovflow.io.layout import LABELS, image_stacks, open_stack, trace_files
from fovflow.io.lineage import run_lineage
from fovflow.io.manifest import stack_titles
from fovflow.io.tables import HOURS_PER_UNIT, TRACE_COLUMNS, read_traces


class VisualizationTab(QWidget):
    """Signal ``status(str)`` for the status bar."""

    status = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.traces = pd.DataFrame()
        self.good: dict[int, bool] = {}  # per cell of the current FOV, as edited
        self.unsaved: dict[int, dict[int, bool]] = {}  # FOV -> edits not yet written
        self.selected: int | None = None
        self.time_unit = "frame"
        self._labels: Frames | None = None
        self._stacks: dict[str, Frames] = {}  # the current FOV's stacks opened so far
        self._frame_times: dict[int, float] = {}
        self._offered: Path | None = None

        self.run_edit = QLineEdit(placeholderText="run folder")
        self.run_edit.returnPressed.connect(lambda: self.open_run(Path(self.run_edit.text())))
        self.fov_combo, self.channel_combo = QComboBox(), QComboBox()
        self.fov_combo.currentIndexChanged.connect(self._fov_changed)
        self.channel_combo.currentIndexChanged.connect(self.show_frame)
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_slider.valueChanged.connect(self.show_frame)
        self.frame_label = QLabel("frame 0/0")
        self.frame_panel = FramePanel()
        self.frame_panel.cell_clicked.connect(self._on_cell_clicked)
        self.frame_panel.canvas.mpl_connect("key_press_event", self._on_canvas_key)
        self.trace_plot = TracePlot()
        self.cell_table = QTableWidget(0, 3)
        self.cell_table.setHorizontalHeaderLabels(["cell", "frames", "good"])
        self.cell_table.verticalHeader().hide()
        self.cell_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.cell_table.itemChanged.connect(self._on_cell_item)
        self.cell_table.itemSelectionChanged.connect(self._on_table_selection)
        self.save_button = QPushButton("Save quality")
        self.save_button.clicked.connect(self.save_quality)
        self.unsaved_label = QLabel("")

        controls = QHBoxLayout()
        for label, widget in [("FOV", self.fov_combo), ("channel", self.channel_combo)]:
            controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addWidget(self.frame_slider, stretch=1)
        controls.addWidget(self.frame_label)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(with_button(self.run_edit, "Open run…", self._browse))
        left_layout.addLayout(controls)
        left_layout.addWidget(self.frame_panel, stretch=1)
        hint = QLabel("click a cell to select it; right-click toggles good/bad; wheel zooms, "
                      "drag pans, double-click shows the whole frame; ← → step through frames")
        hint.setWordWrap(True)
        left_layout.addWidget(hint)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.trace_plot, stretch=3)
        right_layout.addWidget(self.cell_table, stretch=2)
        saving = QHBoxLayout()
        saving.addWidget(self.save_button)
        saving.addWidget(self.unsaved_label, stretch=1)
        right_layout.addLayout(saving)
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        QVBoxLayout(self).addWidget(self.splitter)

    # ---- run and FOV ----------------------------------------------------------------------
    @Slot(Path)
    def offer_run(self, run_dir: Path) -> None:
        """Open `run_dir` unless another run is shown (called after a run): at once if the tab is
        visible, else when it is shown, so the window does not draw what nobody sees."""
        if self.run_dir is None:
            self.run_edit.setText(str(run_dir))
            self._offered = Path(run_dir)
            if self.isVisible():
                self._open_offered()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._open_offered()

    def _open_offered(self) -> None:
        if self._offered is not None and self.run_dir is None:
            offered, self._offered = self._offered, None
            self.open_run(offered)

    def open_run(self, run_dir: Path) -> None:
        """Show the run in `run_dir` (its first FOV); a folder that is not a run is reported
        in the status bar and a dialog."""
        run_dir = Path(run_dir)
        try:
            fovs = run_fovs(run_dir)
        except MissingFileError as exc:  # no folder, or no fov_XXX/labels.zarr in it
            self._report(str(exc))
            return
        self.run_dir = run_dir
        self.run_edit.setText(str(run_dir))
        self.time_unit = run_time_unit(run_dir)
        self.fov_combo.blockSignals(True)
        self.fov_combo.clear()
        for fov in fovs:
            self.fov_combo.addItem(f"{fov:03d}", fov)
        self.fov_combo.blockSignals(False)
        self.status.emit(f"opened run {run_dir}")
        self._fov_changed()

    @property
    def fov(self) -> int:
        return int(self.fov_combo.currentData())

    @property
    def stack(self) -> str:
        """The name of the image stack shown (``pc``, ``fl_ch_1``...)."""
        return str(self.channel_combo.currentData() or "")

    def _fov_changed(self) -> None:
        assert self.run_dir is not None
        self._labels = open_stack(self.run_dir, self.fov, LABELS)
        self._stacks = {}
        channels = image_stacks(self.run_dir, self.fov)
        traces = list(trace_files(self.run_dir, self.fov).values())
        try:
            self.traces = read_traces(traces[0]) if traces else pd.DataFrame(
                columns=TRACE_COLUMNS)
        except FovflowError as exc:
            self._report(f"error: {exc}")
            self.traces = pd.DataFrame(columns=TRACE_COLUMNS)
        try:
            lineage = run_lineage(self.run_dir, self.fov)
        except FovflowError as exc:  # the traces' parent column still tells the divisions
            self._report(f"error: {exc}")
            lineage = None
        cells = self.traces.groupby("cell")["good"].first().astype(bool).to_dict()
        times = self.traces.drop_duplicates("frame")
        self._frame_times = dict(zip(times["frame"].astype(int), times["time"].astype(float),
                                     strict=True))
        self.good = cells | self.unsaved.get(self.fov, {})
        self.selected = None
        shown = self.stack  # the same channel in the next FOV, if it has it
        self.channel_combo.blockSignals(True)
        self.channel_combo.clear()
        for stack, title in stack_titles(self.run_dir, channels).items():
            self.channel_combo.addItem(title, stack)
        self.channel_combo.setCurrentIndex(max(0, self.channel_combo.findData(shown)))
        self.channel_combo.blockSignals(False)
        if self._labels is None:
            self._report(f"error: FOV {self.fov} of {self.run_dir} has no tracked labels")
            return
        self.frame_slider.setMaximum(len(self._labels) - 1)
        self._fill_cell_table()
        self.trace_plot.show_fov(self.traces, self.good, self.time_unit, lineage)
        self.show_frame()

    # ---- frame ----------------------------------------------------------------------------
    @Slot()
    def show_frame(self) -> None:
        """Draw the chosen channel's frame with outlines and ids; mark its time on the traces."""
        if self._labels is None or self.run_dir is None or not self.stack:
            return
        t = self.frame_slider.value()
        if self.stack not in self._stacks:  # opening costs more than reading a frame
            frames = open_stack(self.run_dir, self.fov, self.stack)
            if frames is None:  # removed since the FOV was opened
                return
            self._stacks[self.stack] = frames
        frames = self._stacks[self.stack]
        here = self.traces[self.traces["frame"] == t] if len(self.traces) else self.traces
        self.frame_panel.show_frame(frames[t], self._labels[t], here, self.good, self.selected,
                                    channel=self.channel_combo.currentText())
        self.frame_label.setText(f"frame {t}/{self.frame_slider.maximum()}"
                                 f"{_time_text(self._frame_times.get(t), self.time_unit)}")
        self.trace_plot.mark_frame(t)

    def step_frame(self, delta: int) -> None:
        self.frame_slider.setValue(self.frame_slider.value() + delta)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        moves = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}
        if event.key() in moves:
            self.step_frame(moves[Qt.Key(event.key())])
        else:
            super().keyPressEvent(event)

    def _on_canvas_key(self, event: KeyEvent) -> None:
        if event.key in ("left", "right"):
            self.step_frame(-1 if event.key == "left" else 1)

    @Slot(int, bool)
    def _on_cell_clicked(self, cell: int, toggle: bool) -> None:
        self.select_cell(cell)
        if toggle:
            self.set_good(cell, not self.good.get(cell, True))

    # ---- cells ----------------------------------------------------------------------------
    def select_cell(self, cell: int) -> None:
        """Select `cell`: highlight its outline and trace, show its page and table row."""
        self.selected = cell
        cells = list(self.good)
        if cell in cells:
            self.cell_table.blockSignals(True)
            self.cell_table.selectRow(cells.index(cell))
            self.cell_table.blockSignals(False)
        self.status.emit(f"FOV {self.fov} cell {cell}: {'good' if self.good.get(cell) else 'bad'}")
        self.frame_panel.selected = cell
        self.frame_panel.redraw()
        self.trace_plot.select(cell)

    def set_good(self, cell: int, good: bool) -> None:
        """Mark `cell` good or bad (kept until Save writes the traces)."""
        self.good[cell] = good
        self.unsaved.setdefault(self.fov, {})[cell] = good
        row = list(self.good).index(cell)
        self.cell_table.blockSignals(True)
        self.cell_table.item(row, 2).setCheckState(
            Qt.CheckState.Checked if good else Qt.CheckState.Unchecked)
        self.cell_table.blockSignals(False)
        self._show_unsaved()
        self.status.emit(f"FOV {self.fov} cell {cell}: {'good' if good else 'bad'} (unsaved)")
        self.frame_panel.redraw()  # it draws the same `good` mapping
        self.trace_plot.plot()

    @Slot()
    def save_quality(self) -> None:
        """Write the edited ``good`` values into every traces table of the edited FOVs."""
        assert self.run_dir is not None
        for fov, edits in self.unsaved.items():
            write_quality(self.run_dir, fov, edits)
        self.status.emit(f"saved cell quality of {len(self.unsaved)} FOV(s)")
        self.unsaved = {}
        self._show_unsaved()

    def _fill_cell_table(self) -> None:
        lengths = self.traces.groupby("cell").size().to_dict() if len(self.traces) else {}
        self.cell_table.blockSignals(True)
        self.cell_table.setRowCount(len(self.good))
        for row, (cell, good) in enumerate(self.good.items()):
            self.cell_table.setItem(row, 0, _readonly(str(cell)))
            self.cell_table.setItem(row, 1, _readonly(str(lengths.get(cell, 0))))
            check = QTableWidgetItem()
            check.setCheckState(Qt.CheckState.Checked if good else Qt.CheckState.Unchecked)
            self.cell_table.setItem(row, 2, check)
        self.cell_table.clearSelection()  # no row of the last FOV stays highlighted
        self.cell_table.blockSignals(False)

    def _on_cell_item(self, item: QTableWidgetItem) -> None:
        if item.column() == 2:
            cell = list(self.good)[item.row()]
            self.set_good(cell, item.checkState() == Qt.CheckState.Checked)

    def _on_table_selection(self) -> None:
        rows = {index.row() for index in self.cell_table.selectedIndexes()}
        if len(rows) == 1:
            self.select_cell(list(self.good)[rows.pop()])

    def _show_unsaved(self) -> None:
        count = sum(len(edits) for edits in self.unsaved.values())
        self.unsaved_label.setText(f"{count} unsaved change(s)" if count else "")

    def _report(self, message: str) -> None:
        """A problem the user must see: in the status bar and in a (non-blocking) dialog."""
        self.status.emit(message)
        show_error(self, "fovflow visualization", message.removeprefix("error: "))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", near(self.run_edit.text()))
        if folder:
            self.open_run(Path(folder))


def _time_text(time: float | None, unit: str) -> str:
    """The frame's acquisition time for its label, in hours or minutes (``""`` if unknown)."""
    if time is None or unit not in HOURS_PER_UNIT:
        return ""
    hours = time * HOURS_PER_UNIT[unit]
    return f" · {hours:.2f} h" if hours >= 1 else f" · {hours * 60:.1f} min"


def _readonly(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item
