"""The frame panel of the visualization tab: one frame with the cells' outlines, zoomed and
panned with the mouse, its contrast set by two percentiles, the value and cell under the cursor.

Axes coordinates are full-resolution pixel edges (pixel (r, c) covers [c, c + 1) x [r, r + 1)),
whatever part of the frame is shown and however much it is downsampled to fit the screen, so a
click, a cell's position and a zoom window all mean the same pixel at every zoom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.backend_bases import MouseButton, MouseEvent
from matplotlib.image import AxesImage
from numpy.typing import NDArray
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from fovflow.gui.frame_view import contrast_limits, display_step, make_canvas, render, to_uint8

MAX_IDS_SHOWN = 60  # text is slow to draw: beyond this, only the selected cell's id
MIN_DISPLAY_PX = 400  # never downsample below this, even while the canvas is small
MIN_VIEW_PX = 16  # the closest zoom: this many frame pixels across
ZOOM_PER_STEP = 1.25  # one wheel notch
DRAG_PX = 4  # a press that moves further is a pan, not a click
_ID_OUTLINE = [patheffects.withStroke(linewidth=2.2, foreground="black")]


class FramePanel(QWidget):
    """Shows frames given by `show_frame`. Signals: ``cell_clicked(cell, toggle)`` (toggle:
    the right button, which marks a cell good or bad)."""

    cell_clicked = Signal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = np.zeros((1, 1), np.uint16)  # the frame at full resolution
        self.labels = np.zeros((1, 1), np.int64)
        self.cells = pd.DataFrame(columns=["cell", "position_x", "position_y"])
        self.good: Mapping[int, bool] = {}
        self.selected: int | None = None
        self.channel = ""
        self.view: tuple[int, int, int, int] | None = None  # y0, y1, x0, x1; None: all
        self._limits = (0.0, 1.0)
        self._artist: AxesImage | None = None
        self._press: tuple[float, float, tuple[int, int, int, int]] | None = None
        self._panned = False

        self.fill_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=0)
        self.fill_slider.setToolTip("fill the cells with their outline's colour: opacity, %")
        self.fill_slider.setMaximumWidth(90)
        self.fill_slider.valueChanged.connect(self.redraw)
        self.low_spin = _percent_spin(1.0, "black point: this percentile of the frame's "
                                           "values shows black")
        self.high_spin = _percent_spin(99.5, "white point: this percentile of the frame's "
                                             "values shows white")
        for spin in (self.low_spin, self.high_spin):
            spin.valueChanged.connect(self._contrast_changed)
        self.fit_button = QPushButton("Whole frame")
        self.fit_button.setToolTip("show the whole frame again (or double-click it)")
        self.fit_button.clicked.connect(self.reset_view)
        self.figure, self.canvas = make_canvas(6, 6, layout=None)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.axes = self.figure.add_axes((0.0, 0.0, 1.0, 1.0))
        self.axes.set_axis_off()
        for name, slot in [("button_press_event", self._on_press),
                           ("button_release_event", self._on_release),
                           ("motion_notify_event", self._on_motion),
                           ("scroll_event", self._on_scroll)]:
            self.canvas.mpl_connect(name, slot)
        self.hover_label = QLabel("")
        self.ids_label = QLabel("")
        self.ids_label.setStyleSheet("color: #a05a00")

        display = QHBoxLayout()
        display.addWidget(QLabel("fill"))
        display.addWidget(self.fill_slider)
        display.addWidget(QLabel("contrast"))
        display.addWidget(self.low_spin)
        display.addWidget(QLabel("–"))
        display.addWidget(self.high_spin)
        display.addStretch(1)
        display.addWidget(self.fit_button)
        under = QHBoxLayout()
        under.addWidget(self.hover_label, stretch=1)
        under.addWidget(self.ids_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(display)
        layout.addWidget(self.canvas, stretch=1)
        layout.addLayout(under)

    def show_frame(self, image: NDArray[Any], labels: NDArray[Any], cells: pd.DataFrame,
                   good: Mapping[int, bool], selected: int | None, *, channel: str) -> None:
        """Show a frame (`image` and its `labels`, full resolution) with the ids of `cells`
        (``cell, position_x, position_y`` in this frame); the zoom stays if the size does."""
        if image.shape != self.image.shape:
            self.view = None
        self.image, self.labels, self.cells = image, labels, cells
        self.good, self.selected, self.channel = good, selected, channel
        self._limits = contrast_limits(image, self.low_spin.value(), self.high_spin.value())
        self.redraw()

    def reset_view(self) -> None:
        self.view = None
        self.redraw()

    def zoom(self, factor: float, centre: tuple[float, float] | None = None) -> None:
        """Zoom in by `factor` (< 1 zooms out) around `centre` (x, y in frame pixels; the view's
        centre by default), keeping that point where it is on the screen."""
        y0, y1, x0, x1 = self._window()
        height, width = self.image.shape
        cx, cy = centre if centre is not None else ((x0 + x1) / 2, (y0 + y1) / 2)
        new_w = min(max((x1 - x0) / factor, MIN_VIEW_PX), width)
        new_h = min(max((y1 - y0) / factor, MIN_VIEW_PX), height)
        if new_w >= width and new_h >= height:
            self.reset_view()
            return
        left = cx - (cx - x0) * new_w / (x1 - x0)
        top = cy - (cy - y0) * new_h / (y1 - y0)
        self._set_view(top, top + new_h, left, left + new_w)

    def redraw(self) -> None:
        """Draw the visible part of the frame, downsampled to the canvas, with outlines, fill
        and cell ids."""
        y0, y1, x0, x1 = self._window()
        screen = max(self.canvas.width(), self.canvas.height(), MIN_DISPLAY_PX)
        step = display_step((y1 - y0, x1 - x0), screen)
        shown = self.image[y0:y1:step, x0:x1:step]
        gray = to_uint8(shown, *self._limits)
        rgb = render(gray, self.labels[y0:y1:step, x0:x1:step], self.good, self.selected,
                     fill=self.fill_slider.value() / 100)
        extent = (x0, x0 + shown.shape[1] * step, y0 + shown.shape[0] * step, y0)
        if self._artist is None:
            self._artist = self.axes.imshow(rgb, interpolation="nearest", extent=extent)
        else:
            self._artist.set_data(rgb)
            self._artist.set_extent(extent)
        self.axes.set_xlim(x0, x1)
        self.axes.set_ylim(y1, y0)
        self._draw_ids(y0, y1, x0, x1)
        self.canvas.draw_idle()

    # ---- ids ------------------------------------------------------------------------------
    def _draw_ids(self, y0: int, y1: int, x0: int, x1: int) -> None:
        for text in self.axes.texts[:]:
            text.remove()
        cells = self.cells
        inside = cells[cells["position_x"].between(x0, x1) & cells["position_y"].between(y0, y1)]
        hidden = 0
        if len(inside) > MAX_IDS_SHOWN:
            hidden = len(inside) - int((inside["cell"] == self.selected).sum())
            inside = inside[inside["cell"] == self.selected]
        self.ids_label.setText(f"ids of {hidden} cells hidden: zoom in (mouse wheel) to read "
                               "them" if hidden else "")
        for row in inside.itertuples():
            self.axes.text(row.position_x + 0.5, row.position_y + 0.5, str(row.cell),
                           color="yellow" if row.cell == self.selected else "white",
                           fontsize=8, fontweight="bold", ha="center", va="center",
                           path_effects=_ID_OUTLINE)

    # ---- mouse ----------------------------------------------------------------------------
    def pixel_at(self, event: MouseEvent) -> tuple[int, int] | None:
        """(row, column) of the frame under the mouse, or None outside it."""
        if event.inaxes is not self.axes or event.xdata is None or event.ydata is None:
            return None
        height, width = self.labels.shape
        row, column = math.floor(event.ydata), math.floor(event.xdata)
        return (row, column) if 0 <= row < height and 0 <= column < width else None

    def _on_press(self, event: MouseEvent) -> None:
        if event.dblclick:
            self.reset_view()
        elif event.button in (MouseButton.LEFT, MouseButton.MIDDLE):
            self._press, self._panned = (event.x, event.y, self._window()), False

    def _on_motion(self, event: MouseEvent) -> None:
        if self._press is not None:
            self._pan(event)
            return
        pixel = self.pixel_at(event)
        if pixel is None or self.image.shape != self.labels.shape:
            self.hover_label.setText("")
            return
        cell = int(self.labels[pixel])
        self.hover_label.setText(f"x {pixel[1]}, y {pixel[0]}: {self.channel} "
                                 f"{self.image[pixel]}" + (f", cell {cell}" if cell else ""))

    def _pan(self, event: MouseEvent) -> None:
        start_x, start_y, (y0, y1, x0, x1) = self._press  # type: ignore[misc]
        dx, dy = event.x - start_x, event.y - start_y
        if not self._panned and math.hypot(dx, dy) < DRAG_PX:
            return
        self._panned = True
        box = self.axes.get_window_extent()
        scale = (x1 - x0) / max(box.width, 1.0)  # frame pixels per screen pixel
        # Screen y grows upwards, frame rows downwards: dragging up shows rows further down.
        self._set_view(y0 + dy * scale, y1 + dy * scale, x0 - dx * scale, x1 - dx * scale)

    def _on_release(self, event: MouseEvent) -> None:
        press, self._press = self._press, None
        if (press is not None and self._panned) or event.button not in (MouseButton.LEFT,
                                                                          MouseButton.RIGHT):
            return
        pixel = self.pixel_at(event)
        if pixel is not None and (cell := int(self.labels[pixel])):
            self.cell_clicked.emit(cell, event.button == MouseButton.RIGHT)

    def _on_scroll(self, event: MouseEvent) -> None:
        if event.inaxes is self.axes and event.xdata is not None:
            self.zoom(ZOOM_PER_STEP ** event.step, (event.xdata, event.ydata))

    # ---- view -----------------------------------------------------------------------------
    def _window(self) -> tuple[int, int, int, int]:
        height, width = self.image.shape
        return self.view if self.view is not None else (0, height, 0, width)

    def _set_view(self, y0: float, y1: float, x0: float, x1: float) -> None:
        """Show rows y0..y1 and columns x0..x1, moved inside the frame and rounded."""
        height, width = self.image.shape
        h, w = min(round(y1 - y0), height), min(round(x1 - x0), width)
        top = min(max(round(y0), 0), height - h)
        left = min(max(round(x0), 0), width - w)
        self.view = (top, top + h, left, left + w)
        self.redraw()

    def _contrast_changed(self) -> None:
        self._limits = contrast_limits(self.image, self.low_spin.value(), self.high_spin.value())
        self.redraw()


def _percent_spin(value: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(minimum=0.0, maximum=100.0, value=value, decimals=1, singleStep=0.5,
                          suffix=" %")
    spin.setToolTip(tip)
    return spin
