"""The traces panel of the visualization tab: one feature over time in hours, a page of cells at
a time or the lineage of the selected cell, with divisions and the shown frame marked."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from fovflow.gui.frame_view import make_canvas
from fovflow.io.tables import HOURS_PER_UNIT, TRACE_COLUMNS, feature_columns
from fovflow.processing.lineage import Lineage

PAGE_SIZE = 10


class TracePlot(QWidget):
    """The chosen feature of the cells on the current page (or of the selected cell's family):
    bad cells dashed, the selected one bold, ▲ where a daughter begins, ▼ where its mother
    ends, a vertical line at the frame shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.traces = pd.DataFrame(columns=TRACE_COLUMNS)
        self.good: Mapping[int, bool] = {}
        self.selected: int | None = None
        self.time_unit = "frame"
        self.parents: dict[int, int] = {}  # cell -> its mother
        self._frame_times: dict[int, float] = {}
        self._marked_frame: int | None = None
        self._frame_line: Line2D | None = None
        self.feature_combo = QComboBox()
        self.feature_combo.currentIndexChanged.connect(self.plot)
        self.page_spin = QSpinBox(minimum=1, maximum=1, prefix="page ")
        self.page_spin.valueChanged.connect(self.plot)
        self.lineage_box = QCheckBox("lineage")
        self.lineage_box.setToolTip("plot the selected cell's family (its mother, sisters and "
                                    "daughters, and theirs) instead of a page of cells")
        self.lineage_box.toggled.connect(self.plot)
        self.note_label = QLabel("")
        self.note_label.setWordWrap(True)
        self.figure, self.canvas = make_canvas(5, 3)
        self.axes = self.figure.add_subplot()

        controls = QHBoxLayout()
        controls.addWidget(QLabel("feature"))
        controls.addWidget(self.feature_combo, stretch=1)
        controls.addWidget(self.page_spin)
        controls.addWidget(self.lineage_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, stretch=1)
        layout.addWidget(self.note_label)

    def show_fov(self, traces: pd.DataFrame, good: Mapping[int, bool], time_unit: str,
                 lineage: Lineage | None = None) -> None:
        """Plot another FOV's traces; `good` (cell -> good, in the cell table's order) is read
        again at every redraw, so edits to it show at the next one. Mothers and daughters come
        from `lineage`, or from the traces' ``parent`` column without one."""
        self.traces, self.good, self.time_unit, self.selected = traces, good, time_unit, None
        self.parents = _mothers(traces, lineage)
        times = traces.drop_duplicates("frame")
        self._frame_times = dict(zip(times["frame"].astype(int), times["time"].astype(float),
                                     strict=True))
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

    def mark_frame(self, frame: int) -> None:
        """Move the vertical line to `frame` (once drawn, only the line is redrawn)."""
        self._marked_frame = frame
        if self._frame_line is None:  # none drawn yet: draw it with the curves
            self.plot()
        elif frame in self._frame_times:
            x = self._x(np.array([self._frame_times[frame]]))[0]
            self._frame_line.set_xdata([x, x])
            self.canvas.draw_idle()

    def x_label(self) -> str:
        return "time (h)" if self.time_unit in HOURS_PER_UNIT else f"time ({self.time_unit})"

    def shown_cells(self) -> list[int]:
        """The cells plotted: the page's, or the selected cell's family in lineage mode."""
        if self.lineage_box.isChecked() and self.selected is not None:
            return self._family_of(self.selected)
        first = (self.page_spin.value() - 1) * PAGE_SIZE
        return list(self.good)[first:first + PAGE_SIZE]

    @Slot()
    def plot(self) -> None:
        feature = self.feature_combo.currentText()
        self.axes.clear()
        self._frame_line = None
        self.page_spin.setEnabled(not self.lineage_box.isChecked())
        cells = self.shown_cells()
        traced = set(self.good)
        missing = [cell for cell in cells if cell not in traced]
        self.note_label.setText(
            f"no trace for cell(s) {', '.join(map(str, missing))} (shorter than the minimum "
            "length, or at the frame border)" if missing else "")
        if not feature or not len(self.traces):
            self.canvas.draw_idle()
            return
        for cell in (cell for cell in cells if cell in traced):
            rows = self.traces[self.traces["cell"] == cell]
            line, = self.axes.plot(self._x(rows["time"].to_numpy(float)), rows[feature],
                                   "-" if self.good[cell] else "--",
                                   lw=2.5 if cell == self.selected else 1.0, label=str(cell))
            self._mark_divisions(cell, rows, feature, line.get_color())
        if self._marked_frame in self._frame_times:
            x = self._x(np.array([self._frame_times[self._marked_frame]]))[0]
            self._frame_line = self.axes.axvline(x, color="0.4", lw=0.8, ls=":")
        # Outside the axes: a legend over the curves of ten cells hides them at small sizes.
        self.axes.legend(fontsize=7, ncols=1 if len(cells) <= 5 else 2, title="cell",
                         title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                         borderaxespad=0.0, frameon=False)
        self.axes.set_xlabel(self.x_label())
        self.axes.set_ylabel(feature)
        self.canvas.draw_idle()

    def _mark_divisions(self, cell: int, rows: pd.DataFrame, feature: str, colour: str) -> None:
        if cell in self.parents and len(rows):  # a daughter: its first point
            self.axes.plot(self._x(rows["time"].to_numpy(float)[:1]), rows[feature].iloc[:1],
                           "^", color=colour, ms=6)
        if any(mother == cell for mother in self.parents.values()) and len(rows):
            self.axes.plot(self._x(rows["time"].to_numpy(float)[-1:]), rows[feature].iloc[-1:],
                           "v", color=colour, ms=6)

    def _family_of(self, cell: int) -> list[int]:
        """The tree `cell` belongs to: its first ancestor and all that ancestor's descendants
        (so mother, sisters and daughters), mothers before daughters."""
        root, seen = cell, {cell}
        while root in self.parents and self.parents[root] not in seen:
            root = self.parents[root]
            seen.add(root)
        children: dict[int, list[int]] = {}
        for daughter, mother in self.parents.items():
            children.setdefault(mother, []).append(daughter)
        family, todo = [], [root]
        while todo:
            current = todo.pop(0)
            family.append(current)
            todo += sorted(children.get(current, []))
        return family

    def _x(self, times: np.ndarray) -> np.ndarray:
        """Times as plotted: hours for a run timed in s, min or h; frames stay frames."""
        return times * HOURS_PER_UNIT.get(self.time_unit, 1.0)


def _mothers(traces: pd.DataFrame, lineage: Lineage | None) -> dict[int, int]:
    """The mother of each cell that has one."""
    if lineage is not None:
        return lineage.parents()
    if "parent" not in traces or not len(traces):
        return {}
    parents = traces.groupby("cell")["parent"].first()
    return {int(cell): int(mother) for cell, mother in parents.items() if mother > 0}
