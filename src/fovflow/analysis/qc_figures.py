"""The QC report's pictures as PNG bytes (matplotlib, headless Agg backend).

Per FOV: a strip of three small plots (cells per frame, image statistics relative to their
median, track lengths) with flagged frames marked, and thumbnails of frames with the outlines
of their segmented cells.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray
from skimage.segmentation import find_boundaries

from fovflow.analysis.qc import FovQc, FrameStatistics

THUMBNAIL_PX = 320  # longest side of a thumbnail; larger frames are subsampled
_FLAG_COLOUR = "C3"


@dataclass(frozen=True)
class Thumbnail:
    """One frame to show: its index, the phase-contrast image and its instance labels."""

    frame: int
    image: NDArray[np.generic]
    labels: NDArray[np.integer] | None


def fov_plots_png(qc: FovQc, statistics: FrameStatistics | None) -> bytes:
    """Cells per frame, mean intensity and focus over their medians, and a histogram of track
    lengths, side by side; flagged frames are red."""
    figure, (counts, images, lengths) = plt.subplots(1, 3, figsize=(10.5, 2.4),
                                                     layout="constrained")
    flagged = np.array([flag.frame for flag in qc.flags], np.int64)
    frames = np.arange(qc.cells_per_frame.size)
    counts.plot(frames, qc.cells_per_frame, color="C0", lw=1.2)
    counts.plot(flagged, qc.cells_per_frame[flagged], "o", color=_FLAG_COLOUR, ms=4)
    counts.set(title="cells per frame", xlabel="frame", ylim=(0, None))
    if statistics is not None and statistics.mean.size:
        for values, name, colour in ((statistics.mean, "mean intensity", "C2"),
                                     (statistics.focus, "focus", "C4")):
            relative = values / (np.median(values) or 1.0)
            images.plot(np.arange(values.size), relative, color=colour, lw=1.2, label=name)
        for frame in flagged:
            images.axvline(frame, color=_FLAG_COLOUR, lw=0.8, alpha=0.6)
        images.legend(fontsize=7, frameon=False)
    images.set(title="image / median", xlabel="frame")
    if qc.track_lengths.size:
        lengths.hist(qc.track_lengths, bins=min(30, max(5, qc.track_lengths.size)), color="C0")
    lengths.set(title="track length", xlabel="frames", ylabel="cells")
    lengths.yaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (counts, images, lengths):
        axis.title.set_fontsize(9)
        axis.tick_params(labelsize=7)
        axis.xaxis.label.set_fontsize(8)
        axis.yaxis.label.set_fontsize(8)
    return _png(figure)


def thumbnails_png(thumbnails: Sequence[Thumbnail]) -> bytes:
    """The frames side by side, contrast-stretched, with cell outlines in yellow."""
    figure, axes = plt.subplots(1, len(thumbnails), figsize=(2.7 * len(thumbnails), 3.1),
                                layout="constrained", squeeze=False)
    for axis, thumbnail in zip(axes[0], thumbnails, strict=True):
        step = max(1, -(-max(thumbnail.image.shape) // THUMBNAIL_PX))
        image = np.asarray(thumbnail.image, np.float64)[::step, ::step]
        low, high = np.percentile(image, [1, 99])
        axis.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1)
        if thumbnail.labels is not None:
            outline = find_boundaries(np.asarray(thumbnail.labels)[::step, ::step], mode="inner")
            overlay = np.zeros((*outline.shape, 4))
            overlay[outline] = (1.0, 0.85, 0.0, 1.0)
            axis.imshow(overlay)
            n_cells = np.count_nonzero(np.unique(thumbnail.labels))
            axis.set_title(f"frame {thumbnail.frame}: {n_cells} cells", fontsize=9)
        else:
            axis.set_title(f"frame {thumbnail.frame} (not segmented)", fontsize=9)
        axis.set_axis_off()
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96)
    plt.close(figure)
    return buffer.getvalue()
