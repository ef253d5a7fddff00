"""What the visualization tab draws, in numpy: one RGB image of a frame, downsampled to the
screen, contrast-stretched between two values, with the tracked cells' outlines coloured by
quality. Strided views and one lookup keep a 2048x2048 frame well under 100 ms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

GOOD_RGB = (50, 230, 80)
BAD_RGB = (255, 60, 60)
SELECTED_RGB = (255, 230, 0)
MIN_CANVAS_PX = (240, 180)


def display_step(shape: tuple[int, ...], screen_px: int) -> int:
    """The stride that brings the larger side of `shape` to at most about `screen_px`."""
    return max(1, -(-max(shape[-2:]) // max(screen_px, 1)))


def contrast_limits(image: NDArray[Any], low: float = 1.0, high: float = 99.5
                    ) -> tuple[float, float]:
    """The values at the `low` and `high` percentiles of `image` (of at most ~65k pixels):
    the black and white points of its display."""
    sample = image[:: max(1, image.shape[0] // 256), :: max(1, image.shape[1] // 256)]
    lo, hi = np.percentile(sample, sorted((low, high)))
    return float(lo), float(hi)


def to_uint8(image: NDArray[Any], lo: float, hi: float) -> NDArray[np.uint8]:
    """`image` scaled to 0..255 between the values `lo` (black) and `hi` (white)."""
    scaled = (image.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / max(hi - lo, 1e-12))
    return np.clip(scaled, 0.0, 255.0).astype(np.uint8)


def render(gray: NDArray[np.uint8], labels: NDArray[Any], good: Mapping[int, bool],
           selected: int | None, *, fill: float = 0.0) -> NDArray[np.uint8]:
    """An opaque RGBA image of `gray` with each cell's outline: green if good, red if bad,
    yellow if selected; with `fill` > 0 the cells are also tinted in their colour at that
    opacity. `labels` has the shape of `gray`. (RGBA because matplotlib would add the alpha
    channel itself, a copy of the whole image at every draw.)

    An outline pixel is a cell pixel with a 4-neighbour of another label (or background), on
    every side of the cell.
    """
    differs_down = labels[1:, :] != labels[:-1, :]
    differs_right = labels[:, 1:] != labels[:, :-1]
    edges = np.zeros(labels.shape, dtype=bool)
    edges[1:, :] |= differs_down
    edges[:-1, :] |= differs_down
    edges[:, 1:] |= differs_right
    edges[:, :-1] |= differs_right
    inside = labels > 0
    edges &= inside
    colours = np.empty((int(labels.max(initial=0)) + 1, 3), dtype=np.uint8)
    colours[:] = GOOD_RGB
    bad = [cell for cell, is_good in good.items() if not is_good and cell < len(colours)]
    colours[bad] = BAD_RGB
    if selected is not None and 0 < selected < len(colours):
        colours[selected] = SELECTED_RGB
    rgba = np.empty((*gray.shape, 4), dtype=np.uint8)
    rgba[..., :3] = gray[:, :, None]
    rgba[..., 3] = 255
    rgb = rgba[..., :3]
    if fill > 0:
        tinted = rgb[inside].astype(np.float32) * (1 - fill) + colours[labels[inside]] * fill
        rgb[inside] = tinted.astype(np.uint8)
    rgb[edges] = colours[labels[edges]]
    return rgba


def make_canvas(width: float, height: float, *, layout: str | None = "constrained"
                ) -> tuple[Figure, FigureCanvasQTAgg]:
    """A matplotlib figure embedded as a Qt widget (no pyplot, so no global backend)."""
    figure = Figure(figsize=(width, height), layout=layout)
    canvas = FigureCanvasQTAgg(figure)
    canvas.setMinimumSize(*MIN_CANVAS_PX)  # below this, layouts collapse and text overlaps
    return figure, canvas
