"""Segmentation of phase-contrast images into a foreground (cell) mask.

Cells in phase contrast are textured, the background is smooth: the local standard deviation of
the log image separates them, whatever the illumination level.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fovflow.processing._stacks import (
    OutputStack,
    Progress,
    Stack,
    check_finite,
    iter_frames,
    output_stack,
)

__all__ = ["local_log_std", "segment_frame", "segment_phase_contrast", "threshold_mode_sigma"]

_MAX_SQUARE = 1025  # side of the largest opening or closing square: one allocated kernel


def segment_phase_contrast(
    stack: Stack,
    *,
    window: int = 3,
    bins: int = 200,
    n_sigma: float = 3.0,
    opening_size: int = 7,
    opening_iterations: int = 3,
    closing_size: int = 7,
    closing_iterations: int = 3,
    min_border_area: int = 30,
    out: OutputStack | None = None,
    progress: Progress | None = None,
) -> OutputStack:
    """Segment every frame of a phase-contrast stack into a boolean foreground mask.

    Parameters
    ----------
    stack : (T, Y, X) stack of uint8, uint16, signed integer or float frames
        Phase-contrast images; read one frame at a time, so it may be memory-mapped or lazy.
    window, bins, n_sigma, opening_size, opening_iterations, closing_size, closing_iterations,
    min_border_area
        See `segment_frame`.
    out : writable (T, Y, X) stack, optional
        Where to write the masks (e.g. a ``np.memmap`` or zarr array); a new bool array if None.
    progress : callable, optional
        ``progress(done, total)`` after each frame; may raise `fovflow.errors.Cancelled`, which
        stops the work at once and propagates.

    Returns
    -------
    (T, Y, X) bool array, or `out`
        True where a cell is.

    Raises
    ------
    ValueError
        If a frame is not 2-D, has another shape than the first, a non-numeric dtype, or holds
        NaN or infinity; or if a parameter is out of range.

    Notes
    -----
    O(pixels) per frame, independent of the number of cells; about 16 ms per 1024x1024 frame
    on one core (``benchmarks/bench_steps.py``). Memory: a few float32 frames of temporaries.
    """
    result: OutputStack | None = None
    for t, (frame,) in iter_frames(("stack", stack, "uif")):
        if result is None:
            result = output_stack(out, len(stack), frame.shape, np.bool_)
        result[t] = segment_frame(
            frame, window=window, bins=bins, n_sigma=n_sigma,
            opening_size=opening_size, opening_iterations=opening_iterations,
            closing_size=closing_size, closing_iterations=closing_iterations,
            min_border_area=min_border_area,
        )
        if progress is not None:
            progress(t + 1, len(stack))
    assert result is not None  # iter_frames raises on an empty stack
    return result


def segment_frame(
    frame: NDArray[Any],
    *,
    window: int = 3,
    bins: int = 200,
    n_sigma: float = 3.0,
    opening_size: int = 7,
    opening_iterations: int = 3,
    closing_size: int = 7,
    closing_iterations: int = 3,
    min_border_area: int = 30,
) -> NDArray[np.bool_]:
    """Segment one phase-contrast frame.

    The steps: local standard deviation of ``log(1 + max(frame, 0))`` over a `window` x
    `window` square (`local_log_std`); foreground where it exceeds the histogram mode plus
    `n_sigma` sigma of the values at or below the mode (`threshold_mode_sigma`); holes filled;
    binary opening, then closing, with an `opening_size` square repeated `opening_iterations`
    times (`closing_*` likewise). Pieces the opening removed that touch the frame border and
    have at least `min_border_area` pixels are put back before the closing: they are cells the
    border cuts to slivers narrower than the opening, which would otherwise go undetected
    (on simulated 256x256 frames, detection recall 0.85 -> 0.98 at unchanged precision).

    Pixels outside the image count as copies of the nearest edge pixel (reflection for the
    local deviation), so cells touching the border are neither eroded nor cut back. Holes are
    background regions not 4-connected to the border.

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    window : int
        Side of the square for the local standard deviation (odd, >= 3).
    bins : int
        Number of histogram bins between the smallest and largest deviation.
    n_sigma : float
        Threshold distance above the mode, in sigma of the values at or below the mode.
    opening_size, closing_size : int
        Side of the square structuring element (odd, >= 1).
    opening_iterations, closing_iterations : int
        Repetitions of each erosion and dilation (0 skips the operation).
    min_border_area : int
        Smallest border piece, in pixels, kept although the opening removed it (0 keeps all).

    Returns
    -------
    (Y, X) bool array

    Raises
    ------
    ValueError
        If `frame` is not 2-D or holds NaN or infinity, or a parameter is out of range.

    Notes
    -----
    O(pixels): box filters and morphology with rectangles cost the same for any size, since
    `iterations` repetitions of a ``k x k`` square equal one square of side
    ``iterations * (k - 1) + 1``.
    """
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D, got shape {frame.shape}")
    check_finite(frame, "frame")
    _check_parameters(window, bins, n_sigma, opening_size, opening_iterations,
                      closing_size, closing_iterations)
    if min_border_area < 0:
        raise ValueError(f"min_border_area must not be negative, got {min_border_area}")
    deviation = local_log_std(frame, window=window)
    binary = (deviation > threshold_mode_sigma(deviation, bins=bins, n_sigma=n_sigma))
    mask = _fill_holes(binary.view(np.uint8))
    opened = _morphology(mask, cv2.MORPH_OPEN, opening_size, opening_iterations)
    mask = _with_border_pieces(mask, opened, min_border_area)
    mask = _morphology(mask, cv2.MORPH_CLOSE, closing_size, closing_iterations)
    return mask.view(np.bool_)


def local_log_std(frame: NDArray[Any], *, window: int = 3) -> NDArray[np.float32]:
    """Standard deviation of ``log(1 + max(frame, 0))`` over a sliding square window.

    Borders are handled by reflection (``d c b a | a b c d``, scipy's ``mode="reflect"``).

    Notes
    -----
    O(pixels), float32. The log image is centred on its mean before squaring, so the
    variance ``E[x^2] - E[x]^2`` keeps float32 precision.
    """
    image = cv2.max(np.ascontiguousarray(frame, np.float32), 0.0)
    log = cv2.log(cv2.add(image, 1.0))
    log = cv2.subtract(log, cv2.mean(log)[0])
    size = (window, window)
    mean = cv2.boxFilter(log, -1, size, borderType=cv2.BORDER_REFLECT)
    mean_square = cv2.boxFilter(cv2.multiply(log, log), -1, size, borderType=cv2.BORDER_REFLECT)
    variance = cv2.max(cv2.subtract(mean_square, cv2.multiply(mean, mean)), 0.0)
    return cv2.sqrt(variance)


def threshold_mode_sigma(values: NDArray[Any], *, bins: int = 200, n_sigma: float = 3.0) -> float:
    """The histogram mode plus `n_sigma` sigma of the values at or below the mode.

    The mode is the centre of the fullest of `bins` equal bins between the smallest and the
    largest value (the first one on a tie, as ``np.argmax``). Sigma is the root mean square
    distance of the values at or below the mode from the mode: the half of the background
    peak that cells do not reach.

    Notes
    -----
    O(values). Bins follow ``np.histogram``; a value within float32 rounding of a bin edge may
    land in the neighbouring bin.
    """
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return low
    scale = bins / (high - low)
    # Round-to-nearest of (x - 0.5) is floor(x) except exactly on an edge; the top edge
    # belongs to the last bin, as in np.histogram.
    index = cv2.convertScaleAbs(values, alpha=scale, beta=-low * scale - 0.5)
    counts = cv2.calcHist([index], [0], None, [bins + 1], [0, bins + 1]).ravel()
    counts[bins - 1] += counts[bins]
    mode = low + (int(np.argmax(counts[:bins])) + 0.5) / scale
    below = cv2.subtract(cv2.min(values, mode), mode)
    n_below = int(np.count_nonzero(values <= mode))
    sigma = (cv2.norm(below, cv2.NORM_L2SQR) / n_below) ** 0.5 if n_below else 0.0
    return mode + n_sigma * sigma


def _fill_holes(binary: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Set background regions that are not 4-connected to the border to 1."""
    padded = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.floodFill(padded, None, (0, 0), 2, flags=4)
    return (padded[1:-1, 1:-1] != 2).view(np.uint8)


def _with_border_pieces(before: NDArray[np.uint8], opened: NDArray[np.uint8], min_area: int
                        ) -> NDArray[np.uint8]:
    """`opened` plus the pieces of `before` it lost that touch the border (>= `min_area` px).

    Flood fills from the border visit only those pieces, each marked with its own value: ~4 ms
    per 1024x1024 frame, where labelling every lost piece of the frame took 13 ms. Beyond 254
    pieces at the border (noise, not cells) the rest are left out.
    """
    lost = cv2.subtract(before, opened)  # 1 where the opening removed foreground
    filled = np.zeros((lost.shape[0] + 2, lost.shape[1] + 2), np.uint8)  # OpenCV's own mask
    keep = np.zeros(256, np.uint8)  # by piece value: 1 to put it back
    value = 1
    for y, x in _border_run_starts(lost):
        if lost[y, x] != 1 or value == 255:  # already filled from a run of the same piece
            continue
        value += 1
        keep[value] = cv2.floodFill(lost, filled, (x, y), value, flags=8)[0] >= min_area
    if not keep.any():
        return opened
    return cv2.bitwise_or(opened, cv2.LUT(lost, keep))


def _border_run_starts(lost: NDArray[np.uint8]) -> list[tuple[int, int]]:
    """(y, x) of the first pixel of every run of lost pixels along the four borders."""
    rows, columns = lost.shape
    starts: list[tuple[int, int]] = []
    for line, place in ((lost[0], lambda i: (0, i)), (lost[-1], lambda i: (rows - 1, i)),
                        (lost[:, 0], lambda i: (i, 0)), (lost[:, -1], lambda i: (i, columns - 1))):
        on = line == 1
        first = np.flatnonzero(on & ~np.concatenate(([False], on[:-1])))
        starts += [place(int(i)) for i in first]
    return starts


def _morphology(mask: NDArray[np.uint8], operation: int, size: int, iterations: int
                ) -> NDArray[np.uint8]:
    if iterations == 0 or size == 1:
        return mask
    side = iterations * (size - 1) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    # OpenCV's default border leaves pixels outside the image out of the min / max, which for
    # a square equals replicating the edge: border cells keep their full extent.
    return cv2.morphologyEx(mask, operation, kernel)


def _check_parameters(window: int, bins: int, n_sigma: float, *morphology: int) -> None:
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number >= 3, got {window}")
    if not 2 <= bins <= 255:
        raise ValueError(f"bins must be between 2 and 255, got {bins}")
    if n_sigma < 0:
        raise ValueError(f"n_sigma must not be negative, got {n_sigma}")
    sizes, iterations = morphology[0::2], morphology[1::2]
    if any(size < 1 or size % 2 == 0 for size in sizes):
        raise ValueError(f"opening_size and closing_size must be odd and >= 1, got {sizes}")
    if any(count < 0 for count in iterations):
        raise ValueError(f"iterations must not be negative, got {iterations}")
    sides = [count * (size - 1) + 1 for size, count in zip(sizes, iterations, strict=True)]
    if max(sides) > _MAX_SQUARE:
        raise ValueError(f"size and iterations give squares of {sides} px; at most {_MAX_SQUARE} "
                         "px (a larger square would erase every cell)")
