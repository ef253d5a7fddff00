"""Visualization tab: frames of a run with tracked outlines, traces, and cell quality marks.

Quality is a property of a cell: marking it bad sets ``good`` on every row of that cell in every
``traces_ch_C.csv`` of its FOV (rewritten atomically on Save), and merge honours it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backend_bases import KeyEvent, MouseEvent
from matplotlib.image import AxesImage
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
from fovflow.gui.frame_view import contrast, display_step, make_canvas, render
from fovflow.gui.log_panel import show_error
from fovflow.gui.run_files import frame_stacks, run_time_unit, write_quality
from fovflow.gui.trace_plot import TracePlot
from fovflow.gui.widgets import with_button
from fovflow.io.ctc import run_fovs
from fovflow.io.store import Frames, fov_dir, open_frames
from fovflow.io.tables import TRACE_COLUMNS, read_traces

MAX_IDS_SHOWN = 60
MIN_DISPLAY_PX = 400  # never downsample below this, even while the canvas is small


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
        self._shown_labels = np.zeros((1, 1), dtype=np.int64)
        self._image: AxesImage | None = None
        self._shown_image = np.zeros((1, 1))
        self._step = 1
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
        self.fill_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=0)
        self.fill_slider.setToolTip("fill the cells with their outline's colour: opacity, %")
        self.fill_slider.setMaximumWidth(90)
        self.fill_slider.valueChanged.connect(self.show_frame)
        self.hover_label = QLabel("")
        self.image_figure, self.image_canvas = make_canvas(6, 6, layout=None)
        self.image_canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.image_canvas.mpl_connect("button_press_event", self._on_click)
        self.image_canvas.mpl_connect("key_press_event", self._on_canvas_key)
        self.image_canvas.mpl_connect("motion_notify_event", self._on_hover)
        self.image_axes = self.image_figure.add_axes((0.0, 0.0, 1.0, 1.0))
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
        controls.addWidget(QLabel("fill"))
        controls.addWidget(self.fill_slider)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(with_button(self.run_edit, "Open run…", self._browse))
        left_layout.addLayout(controls)
        left_layout.addWidget(self.image_canvas, stretch=1)
        left_layout.addWidget(self.hover_label)
        left_layout.addWidget(QLabel("click a cell to select it; right-click toggles good/bad; "
                                     "← → step through frames"))
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.trace_plot, stretch=2)
        right_layout.addWidget(self.cell_table, stretch=2)
        saving = QHBoxLayout()
        saving.addWidget(self.save_button)
        saving.addWidget(self.unsaved_label, stretch=1)
        right_layout.addLayout(saving)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        QVBoxLayout(self).addWidget(splitter)

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
        run_dir = Path(run_dir)
        try:
            fovs = run_fovs(run_dir)
        except MissingFileError as exc:  # no folder, or no fov_XXX/labels.zarr in it
            self.status.emit(str(exc))
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

    def _fov_changed(self) -> None:
        assert self.run_dir is not None
        folder = fov_dir(self.run_dir, self.fov)
        self._labels = open_frames(folder / "labels.zarr")
        channels = frame_stacks(folder)
        traces = sorted(folder.glob("traces_ch_*.csv"))
        try:
            self.traces = read_traces(traces[0]) if traces else pd.DataFrame(
                columns=TRACE_COLUMNS)
        except FovflowError as exc:
            self.status.emit(f"error: {exc}")
            show_error(self, "fovflow", str(exc))
            self.traces = pd.DataFrame(columns=TRACE_COLUMNS)
        cells = self.traces.groupby("cell")["good"].first().astype(bool).to_dict()
        times = self.traces.drop_duplicates("frame")
        self._frame_times = dict(zip(times["frame"].astype(int), times["time"].astype(float),
                                     strict=True))
        self.good = cells | self.unsaved.get(self.fov, {})
        self.selected = None
        self.channel_combo.blockSignals(True)
        self.channel_combo.clear()
        self.channel_combo.addItems(channels)
        self.channel_combo.blockSignals(False)
        self.frame_slider.setMaximum(len(self._labels) - 1)
        self._fill_cell_table()
        self.show_frame()
        self.trace_plot.show_fov(self.traces, self.good, self.time_unit)

    # ---- frame ----------------------------------------------------------------------------
    @Slot()
    def show_frame(self) -> None:
        """Draw the chosen channel's frame (downsampled, percentile contrast) with outlines."""
        if self._labels is None or self.run_dir is None or not self.channel_combo.currentText():
            return
        t = self.frame_slider.value()
        path = fov_dir(self.run_dir, self.fov) / f"{self.channel_combo.currentText()}.zarr"
        frames = open_frames(path)
        screen = max(self.image_canvas.width(), self.image_canvas.height(), MIN_DISPLAY_PX)
        step = display_step(frames.shape, screen)
        image = frames.array[t, ::step, ::step]
        self._shown_image, self._step = image, step
        self._shown_labels = self._labels.array[t, ::step, ::step]
        rgb = render(contrast(image), self._shown_labels, self.good, self.selected,
                     fill=self.fill_slider.value() / 100)
        if self._image is None or self._image.get_array().shape != rgb.shape:
            self.image_axes.clear()
            self.image_axes.set_axis_off()
            self._image = self.image_axes.imshow(rgb, interpolation="nearest")
        else:
            self._image.set_data(rgb)
        for text in self.image_axes.texts[:]:
            text.remove()
        here = self.traces[self.traces["frame"] == t] if len(self.traces) else self.traces
        if len(here) > MAX_IDS_SHOWN:  # text is slow to draw: then only the selected cell's id
            here = here[here["cell"] == self.selected]
        for row in here.itertuples():
            self.image_axes.text(row.position_x / step, row.position_y / step, str(row.cell),
                                 color="yellow" if row.cell == self.selected else "white",
                                 fontsize=8, fontweight="bold", ha="center", va="center")
        self.image_canvas.draw_idle()
        self.frame_label.setText(f"frame {t}/{self.frame_slider.maximum()}"
                                 f"{_time_text(self._frame_times.get(t), self.time_unit)}")

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

    def _shown_pixel(self, event: MouseEvent) -> tuple[int, int] | None:
        """(row, column) of the shown frame under the mouse, or None outside it."""
        if event.inaxes is not self.image_axes or event.xdata is None or event.ydata is None:
            return None
        height, width = self._shown_labels.shape
        return min(max(round(event.ydata), 0), height - 1), min(max(round(event.xdata), 0),
                                                                 width - 1)

    def _on_hover(self, event: MouseEvent) -> None:
        pixel = self._shown_pixel(event)
        if pixel is None or self._shown_image.shape != self._shown_labels.shape:
            self.hover_label.setText("")
            return
        cell = int(self._shown_labels[pixel])
        value = self._shown_image[pixel]
        y, x = (self._step * coordinate for coordinate in pixel)
        self.hover_label.setText(f"x {x}, y {y}: {self.channel_combo.currentText()} {value}"
                                 + (f", cell {cell}" if cell else ""))

    def _on_click(self, event: MouseEvent) -> None:
        pixel = self._shown_pixel(event)
        if pixel is None:
            return
        cell = int(self._shown_labels[pixel])
        if cell:
            self.select_cell(cell)
            if event.button == 3:
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
        self.show_frame()
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
        self.show_frame()
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

    def _browse(self) -> None:
        if folder := QFileDialog.getExistingDirectory(self, "Run folder"):
            self.open_run(Path(folder))


def _time_text(time: float | None, unit: str) -> str:
    """The frame's acquisition time for its label, in hours or minutes (``""`` if unknown)."""
    if time is None or unit != "s":
        return ""
    return f" · {time / 3600:.2f} h" if time >= 3600 else f" · {time / 60:.1f} min"


def _readonly(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item
