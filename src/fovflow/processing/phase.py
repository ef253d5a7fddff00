"""Phase-contrast segmentation: a textured-cell foreground, split into cell instances.

Cells in phase contrast are textured, the background is smooth: the local standard deviation of
the log image separates them, whatever the illumination level. Touching cells are then split
(`fovflow.processing.splitting`).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import filters

from fovflow.processing._stacks import check_finite, log_frame, regular_sample
from fovflow.processing.splitting import (
    MAX_SLIVER_LENGTH,
    fill_holes,
    label_instances,
    split_by_bodies,
    split_by_intensity,
    split_touching,
    touching_border,
    with_border_pieces,
)

__all__ = ["local_log_std", "phase_foreground", "segment_phase", "threshold_log_otsu",
           "threshold_mode_sigma", "without_untextured", "working_scale", "working_size"]

_MAX_SQUARE = 1025  # side of the largest opening or closing square: one allocated kernel
# The fixed sizes of the first version were chosen for the simulator's cells of 35 px radius,
# whose diameter `estimate_diameter` measures as 54-65 px (median 60); other diameters scale them.
_REFERENCE_DIAMETER = 60.0
_REFERENCE_OPENING = 19  # px, the 7x7 square three times
_REFERENCE_BORDER_AREA = 30  # px
_SPLITS = ("bodies", "bright", "distance", "intensity", "none")
_LOG_FLOOR = 1e-4  # below any deviation of a real image, above zero
# Splitting on a smaller frame pays (in time) only where it drops at least a quarter of the
# frame's side (the frame keeps under 56 % of its pixels)...
_WORTH_SCALING = 0.75
# ...and is never scaled below this: at half size the 2-3 px bright seams between touching
# simulated cells blur away (recall 0.99 -> 0.95, 2-3 identity switches per movie).
_SMALLEST_SCALE = 0.6


def segment_phase(
    frame: NDArray[Any],
    *,
    diameter: float,
    window: int = 3,
    threshold: str = "otsu",
    bins: int = 200,
    n_sigma: float = 3.0,
    opening: int | None = None,
    closing: int | None = None,
    min_border_area: int | None = None,
    split: str = "bodies",
    neck: float = 0.7,
    min_area: int | None = None,
    min_texture: float = 0.5,
    working_diameter: float | None = 30.0,
) -> NDArray[np.int32]:
    """Segment one phase-contrast frame into cell instances.

    The foreground is `phase_foreground`; it is then split into cells: by their dark bodies
    (``split="bodies"``, `split_by_bodies`: phase-dark cells apart where a bright seam runs
    between them, then by shape), by bright bodies (``"bright"``: the same on the frame
    turned over, for cells brighter than their rim: rounded or slightly defocused small
    cells), by the image alone (``"intensity"``, `split_by_intensity`:
    dark bodies flooded up to the seams) or by the shape of the foreground (``"distance"``,
    `split_touching`). Faint regions (debris, out-of-focus particles) are then dropped
    (`without_untextured`).

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    diameter : float
        Typical cell diameter in pixels; the sizes left at None derive from it.
    window, threshold, bins, n_sigma
        See `phase_foreground`. ``"otsu"`` (the default here) also finds the cells of a
        confluent layer, where the background is no longer the histogram's mode.
    opening, closing : int, optional
        Side of the square of the opening and of the closing (odd); default ``0.32 *
        diameter`` (19 px for 60 px cells).
    min_border_area : int, optional
        See `phase_foreground`; default ``30 * (diameter / 60)**2`` px.
    split : {"bodies", "bright", "distance", "intensity", "none"}
        How touching cells are separated; ``"none"`` keeps them together, as one region.
        On real recordings ``"bodies"`` matched as many or more cells than ``"intensity"``
        at the same or better precision (``benchmarks/RESULTS.md``).
    neck : float
        See `split_touching` (``"bodies"``, ``"bright"`` and ``"distance"``).
    min_area : int, optional
        Smallest cell in pixels (with ``"bodies"``: smallest body); default a disk of half
        the diameter (``"bright"``: of a third). Cells the frame border cuts need only
        `min_border_area`.
    min_texture : float
        See `without_untextured`; 0 keeps every region.
    working_diameter : float, optional
        Cells larger than 4/3 of this (px) are split on the frame and foreground scaled down
        (bilinear) so that they measure about this much, but to no less than 0.6 of their
        size; the labels are scaled back (nearest pixel) and cut to the
        full-resolution foreground, so outlines keep the frame's resolution. A 44 px cell
        needs no more pixels to be told from its neighbours, and the split costs less than
        half (``benchmarks/RESULTS.md``). Explicit sizes stay those of `frame`. None splits
        at the frame's own resolution.

    Returns
    -------
    (Y, X) int32 labels, 0 = background.

    Notes
    -----
    O(pixels), independent of the number of cells.
    """
    scale = diameter / _REFERENCE_DIAMETER
    opening = _odd(_REFERENCE_OPENING * scale) if opening is None else opening
    closing = _odd(_REFERENCE_OPENING * scale) if closing is None else closing
    if min_border_area is None:
        min_border_area = round(_REFERENCE_BORDER_AREA * scale**2)
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; choose {', '.join(_SPLITS)}")
    if not 0.0 <= min_texture <= 1.0:
        raise ValueError(f"min_texture must be between 0 and 1, got {min_texture}")
    if working_diameter is not None and working_diameter <= 0:
        raise ValueError(f"working_diameter must be positive or None, got {working_diameter}")
    mask = phase_foreground(frame, window=window, threshold=threshold, bins=bins,
                            n_sigma=n_sigma, opening_size=opening, opening_iterations=1,
                            closing_size=closing, closing_iterations=1,
                            min_border_area=min_border_area,
                            max_border_extent=MAX_SLIVER_LENGTH * diameter)
    if min_area is None:  # bright bodies are cores inside a dark rim: a daughter's is smaller
        min_area = round(np.pi * (diameter / (6 if split == "bright" else 4)) ** 2)
    scale = working_scale(diameter, working_diameter)
    if scale == 1.0:
        return _split(mask, frame, diameter=diameter, split=split, neck=neck, min_area=min_area,
                      min_border_area=min_border_area, min_texture=min_texture)
    height, width = frame.shape
    size, factor = working_size(frame.shape, scale)
    smaller = cv2.resize(np.ascontiguousarray(frame, np.float32), size,
                         interpolation=cv2.INTER_LINEAR)
    # A smaller pixel is foreground if any of the 4 pixels it is interpolated from is: the
    # labels scaled back then cover the whole foreground, which cuts them to its outline.
    smaller_mask = cv2.compare(cv2.resize(mask.view(np.uint8), size,
                                          interpolation=cv2.INTER_LINEAR), 0, cv2.CMP_GT) // 255
    labels = _split(smaller_mask, smaller, diameter=diameter * factor, split=split, neck=neck,
                    min_area=round(min_area * factor**2),
                    min_border_area=round(min_border_area * factor**2), min_texture=0.0)
    labels = np.where(mask, cv2.resize(labels, (width, height),
                                       interpolation=cv2.INTER_NEAREST), 0)
    # Textures at the frame's resolution (averaged pixels are smoother), on every second row
    # and column: hundreds of pixels per cell this large.
    return without_untextured(labels, frame, min_texture, step=2) if min_texture > 0 else labels


def working_scale(diameter: float, working_diameter: float | None) -> float:
    """The scale a frame of cells of `diameter` px is split at so that they measure about
    `working_diameter` (None: 1, the frame's own), but no less than `_SMALLEST_SCALE`; 1 where
    that would not drop at least a quarter of the frame's side (`_WORTH_SCALING`)."""
    if working_diameter is None:
        return 1.0
    scale = max(working_diameter / diameter, _SMALLEST_SCALE)
    return 1.0 if scale >= _WORTH_SCALING else scale


def working_size(shape: tuple[int, ...], scale: float) -> tuple[tuple[int, int], float]:
    """The (width, height) of a frame of `shape` scaled by `scale`, for ``cv2.resize``, and the
    scale its whole rows make of it (what sizes in pixels scale by)."""
    height, width = shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return size, size[1] / height


def _split(mask: NDArray[Any], frame: NDArray[Any], *, diameter: float, split: str, neck: float,
           min_area: int, min_border_area: int, min_texture: float) -> NDArray[np.int32]:
    """The foreground's cells, split as `split` says, without the untextured ones."""
    sizes = {"min_area": min_area, "min_border_area": min_border_area}
    if split == "intensity":
        labels = split_by_intensity(mask, frame, diameter=diameter, **sizes)
    elif split in ("bodies", "bright"):
        # Bright bodies are the dark bodies of the frame turned over (its range kept).
        image = frame if split == "bodies" else _turned_over(frame)
        labels = split_by_bodies(mask, image, diameter=diameter, neck=neck, **sizes)
    else:
        labels = split_touching(mask, diameter=diameter,
                                neck=neck if split == "distance" else 0.0, **sizes)
    return without_untextured(labels, frame, min_texture) if min_texture > 0 else labels


def _turned_over(frame: NDArray[Any]) -> NDArray[np.float32]:
    """The frame with bright and dark swapped, within its own range."""
    pixels = np.asarray(frame, np.float32)
    low, high = cv2.minMaxLoc(pixels)[:2]
    return (low + high) - pixels


def without_untextured(labels: NDArray[np.int32], frame: NDArray[Any], fraction: float, *,
                       step: int = 1) -> NDArray[np.int32]:
    """`labels` without the regions whose texture is under `fraction` of the frame's cells'.

    A region's texture is the standard deviation of the log image over it: a phase-contrast
    cell holds a dark body and its bright halo, debris and out-of-focus particles are fainter.
    The reference is the 90th percentile of the textures over the regions' pixels (weighted by
    area, so many specks do not pull it down), so the rule adapts to the optics and needs a few
    cells in the frame, not a calibrated level. Regions touching the frame border are left out
    of the reference (when others exist): there a chamber wall or the camera's edge, far more
    textured than cells, would set it and drop every cell (a real frame: 9 -> 23 of 64 cells).
    With `step` > 1 the textures are measured on every `step`-th row and column: a regular
    sample of each region's pixels, at 1/`step`² of the cost; a region the sample misses is
    kept.

    Notes
    -----
    O(pixels + regions).
    """
    count = int(labels.max()) + 1
    if count <= 2:
        return labels
    sampled = labels[::step, ::step]
    inside = sampled > 0  # bincounts over the cells' pixels only: a fraction of the frame
    cells = sampled[inside]
    values = log_frame(frame[::step, ::step])[inside]
    area = np.bincount(cells, minlength=count)[1:]
    mean = np.bincount(cells, values, count)[1:] / np.maximum(area, 1)
    square = np.bincount(cells, values * values, count)[1:] / np.maximum(area, 1)
    texture = np.where(area > 0, np.sqrt(np.maximum(square - mean * mean, 0.0)), np.inf)
    at_border = touching_border(labels, count)[1:]
    pool = ~at_border if not at_border.all() else np.ones(count - 1, bool)
    pooled, pooled_area = texture[pool], area[pool]
    if not pooled_area.any():  # the sample holds no pixel of the cells: nothing to measure
        return labels
    order = np.argsort(pooled)
    # The percentile over pixels, not regions.
    by_area = np.cumsum(pooled_area[order]) / pooled_area.sum()
    reference = pooled[order][min(int(np.searchsorted(by_area, 0.9)), len(pooled) - 1)]
    faint = np.concatenate(([False], texture < fraction * reference))
    if not faint.any():
        return labels
    return label_instances(np.where(faint[labels], 0, labels))


def phase_foreground(
    frame: NDArray[Any],
    *,
    window: int = 3,
    threshold: str = "mode",
    bins: int = 200,
    n_sigma: float = 3.0,
    opening_size: int = 7,
    opening_iterations: int = 3,
    closing_size: int = 7,
    closing_iterations: int = 3,
    min_border_area: int = 30,
    max_border_extent: float | None = None,
) -> NDArray[np.bool_]:
    """The foreground (cell) mask of one phase-contrast frame.

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
    threshold : {"mode", "otsu"}
        ``"mode"``: the histogram mode plus `n_sigma` sigma (`threshold_mode_sigma`), for
        fields that are mostly background; ``"otsu"``: `threshold_log_otsu`, for any field.
    bins : int
        Number of histogram bins between the smallest and largest deviation ("mode").
    n_sigma : float
        Threshold distance above the mode, in sigma of the values at or below the mode.
    opening_size, closing_size : int
        Side of the square structuring element (odd, >= 1).
    opening_iterations, closing_iterations : int
        Repetitions of each erosion and dilation (0 skips the operation).
    min_border_area : int
        Smallest border piece, in pixels, kept although the opening removed it (0 keeps all).
    max_border_extent : float, optional
        Longest such piece (its bounding box's longer side, px); default any.

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
    if threshold not in ("mode", "otsu"):
        raise ValueError(f"unknown threshold {threshold!r}; choose mode or otsu")
    deviation = local_log_std(frame, window=window)
    if threshold == "mode":
        level = threshold_mode_sigma(deviation, bins=bins, n_sigma=n_sigma)
    else:
        level = threshold_log_otsu(deviation, bins=bins, n_sigma=n_sigma)
    binary = deviation > level
    mask = fill_holes(binary.view(np.uint8))
    opened = _morphology(mask, cv2.MORPH_OPEN, opening_size, opening_iterations)
    mask = with_border_pieces(mask, opened, min_border_area, max_border_extent)
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
    log = log_frame(frame)
    log = cv2.subtract(log, cv2.mean(log)[0])
    size = (window, window)
    mean = cv2.boxFilter(log, -1, size, borderType=cv2.BORDER_REFLECT)
    mean_square = cv2.boxFilter(cv2.multiply(log, log), -1, size, borderType=cv2.BORDER_REFLECT)
    variance = cv2.max(cv2.subtract(mean_square, cv2.multiply(mean, mean)), 0.0)
    return cv2.sqrt(variance)


def threshold_log_otsu(values: NDArray[Any], *, bins: int = 200, n_sigma: float = 3.0
                       ) -> float:
    """Otsu's threshold of ``log(values)``, but never within the noise of the lower class.

    Otsu splits the deviations into two classes, smooth background and textured cells,
    whichever is the larger, so a confluent layer is found where the histogram's mode is a
    cell's texture. Otsu always finds two classes, also in a frame of noise alone, so the
    threshold is at least the lower class's own `threshold_mode_sigma`: what stands out of
    the background's noise.

    Notes
    -----
    O(values): computed on a regular sample of about 65k values.
    """
    sample = np.ascontiguousarray(regular_sample(values), np.float32)
    logs = np.log(sample + _LOG_FLOOR)
    if np.ptp(logs) <= 0:
        return float(values.max())
    otsu = float(np.exp(filters.threshold_otsu(logs)) - _LOG_FLOOR)
    lower = sample[sample <= otsu].reshape(1, -1)
    return max(otsu, threshold_mode_sigma(lower, bins=bins, n_sigma=n_sigma))


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


def _odd(size: float) -> int:
    """The odd whole number nearest to `size`, at least 1."""
    return max(1, 2 * round((size - 1) / 2) + 1)
