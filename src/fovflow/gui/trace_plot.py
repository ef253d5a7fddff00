"""The traces panel of the visualization tab: one feature over time, a page of cells at a time."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from fovflow.gui.frame_view import make_canvas
from fovflow.io.tables import TRACE_COLUMNS, feature_columns

PAGE_SIZE = 10


class TracePlot(QWidget):
    """The chosen feature of the cells on the current page: bad cells dashed, the selected one
    bold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.traces = pd.DataFrame(columns=TRACE_COLUMNS)
        self.good: Mapping[int, bool] = {}
        self.selected: int | None = None
        self.time_unit = "frame"
        self.feature_combo = QComboBox()
        self.feature_combo.currentIndexChanged.connect(self.plot)
        self.page_spin = QSpinBox(minimum=1, maximum=1, prefix="page ")
        self.page_spin.valueChanged.connect(self.plot)
        self.figure, self.canvas = make_canvas(5, 3)
        self.axes = self.figure.add_subplot()

        controls = QHBoxLayout()
        controls.addWidget(QLabel("feature"))
        controls.addWidget(self.feature_combo, stretch=1)
        controls.addWidget(self.page_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, stretch=1)

    def show_fov(self, traces: pd.DataFrame, good: Mapping[int, bool], time_unit: str) -> None:
        """Plot another FOV's traces; `good` (cell -> good, in the cell table's order) is read
        again at every redraw, so edits to it show at the next one."""
        self.traces, self.good, self.time_unit, self.selected = traces, good, time_unit, None
        self.feature_combo.blockSignals(True)
        self.feature_combo.clear()
        self.feature_combo.addItems(feature_columns(traces))
        self.feature_combo.blockSignals(False)
        self.page_spin.setMaximum(max(1, -(-len(good) // PAGE_SIZE)))
        self.plot()

    def select(self, cell: int) -> None:
        """Highlight `cell` and turn to its page."""
        self.selected = cell
        cells = list(self.good)
        if cell in cells:
            self.page_spin.blockSignals(True)  # one redraw, below
            self.page_spin.setValue(cells.index(cell) // PAGE_SIZE + 1)
            self.page_spin.blockSignals(False)
        self.plot()

    @Slot()
    def plot(self) -> None:
        feature = self.feature_combo.currentText()
        self.axes.clear()
        if feature and len(self.traces):
            first = (self.page_spin.value() - 1) * PAGE_SIZE
            for cell in list(self.good)[first:first + PAGE_SIZE]:
                rows = self.traces[self.traces["cell"] == cell]
                self.axes.plot(rows["time"], rows[feature], "-" if self.good[cell] else "--",
                               lw=2.5 if cell == self.selected else 1.0, label=str(cell))
            self.axes.legend(fontsize=7, ncols=2, title="cell", title_fontsize=7)
            self.axes.set_xlabel(f"time ({self.time_unit})")
            self.axes.set_ylabel(feature)
        self.canvas.draw_idle()
