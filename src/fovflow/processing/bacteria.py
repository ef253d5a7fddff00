"""Rod-shaped bacteria in phase contrast: dark rods, bright halos and seams between them.

In phase contrast a bacterium is darker than the background and ringed by a bright halo; in a
microcolony the rods touch, and what parts them is a thin bright line (their halos meet) across
their sides or at a division site. So the rods are found by their darkness, at the scale of
their *width* (not their length, which varies from one to many widths: a filament is one cell),
and parted where the image curves down across a bright line. The method's `diameter` is the
rods' width.

The steps, all of them sizes in widths:

1. **Darkness**: the black top-hat of the smoothed log image (its closing by a square of 3
   widths, minus itself): how much darker a pixel is than the brightest around it, for rods
   of any length and any illumination level. Pixels well above the top-hat's noise, in pieces
   that reach far above it (hysteresis), are the rods: the colony with its seams included.
2. **Seams**: where the smallest eigenvalue of the Hessian (at a fifth of the width) is
   negative, the image curves down along a direction: a bright line. Cut there (relative to
   the rods' median darkness), the colony falls apart into its rods; a lone rod keeps its
   shape. Pieces under 3/4 of a width squared are dropped.
3. **Faint seams**: a colony's inner rods are paler than those at its edge, and so are the
   seams between them. Each piece is cut again where the curvature passes 0.07 of *its own*
   mean darkness (not the frame's median), where that leaves two or more parts of at least
   0.65 of the median piece's area (a rod is not cut at a pale spot into small bits).
4. The rods grow back by a fifth of the width into the dark pixels (the seams they were cut
   from go to the nearer rod).
5. **Filaments and stalks**: thin dark lines (the Hessian's largest eigenvalue at 0.3 width)
   touching a rod become part of it, as *Caulobacter* stalks and filaments belong to their
   cell; lines touching none and longer than 4 widths are cells of their own.
6. **Pale pieces**: cells whose body is on average less than 0.4 as dark (above the
   background) as the rods' median are dropped: shadows of an uneven background and the dark
   rims of halos, wider than a rod and far paler.

Rods wider than about 21 px are segmented on the frame scaled down (`working_scale`: to rods
of 16 px, no less than 0.6, where that drops a quarter of the frame's side). Rods that
touch without any bright seam between them (pressed together, dim optics; filaments lying
side by side) stay one cell: a rule joining pieces across dark seams helped sparse cells but
merged whole simulated colonies (``benchmarks/RESULTS.md``).

Omnipose (Cutler et al. 2022) showed why lengths must not set the size for bacteria; these are
plain filters in its spirit (scale from the width, elongated cells kept whole), not its network.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fovflow.processing._stacks import check_finite, log_frame, regular_sample
from fovflow.processing.phase import working_scale, working_size
from fovflow.processing.splitting import (
    grow_labels,
    keep_labels,
    label_instances,
    regions_with_stats,
)

__all__ = ["rod_darkness", "segment_bacteria"]

_CLIPPED_SIGMAS = 3.0  # noise estimate: values this far above the median are signal
_CLIP_ROUNDS = 5
_NOISE_SAMPLE = 16384  # pixels the noise is estimated from
_MAD_TO_SIGMA = 1.4826
# Filaments: thin dark lines stand this many noise widths out of the curvature's noise
# (hysteresis: low and high), on pixels at least this much darker than the background.
_FILAMENT_SIGMAS = (4.0, 8.0)
_FILAMENT_DARKNESS = 2.0
# A faint seam parts a piece only into parts of at least this fraction of the median piece.
_FAINT_PART = 0.65
_OPENING = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


def segment_bacteria(
    frame: NDArray[Any],
    *,
    diameter: float,
    background: float = 3.0,
    low: float = 5.0,
    high: float = 15.0,
    seam_scale: float = 0.2,
    seam_curvature: float = 0.1,
    faint_seam: float = 0.07,
    pale: float = 0.4,
    min_area: int | None = None,
    growth: float = 0.2,
    filaments: bool = True,
    filament_scale: float = 0.3,
    filament_length: float = 4.0,
    working_width: float | None = 16.0,
) -> NDArray[np.int32]:
    """Segment one phase-contrast frame of rod-shaped bacteria into cells.

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    diameter : float
        The rods' width in pixels (``auto``: `fovflow.processing.segmentation.estimate_diameter`
        with ``method="bacteria"``); every size below is a multiple of it.
    background : float
        Side of the top-hat's square, in widths: rods up to about half of it wide are found.
    low, high : float
        Hysteresis thresholds of the darkness, in noise widths above its median: rods are
        pixels above `low` in pieces reaching `high`.
    seam_scale : float
        Gaussian scale of the curvature that finds the bright seams, in widths.
    seam_curvature : float
        Cut where the image curves down across a line by more than this fraction of the
        rods' median darkness (scale-normalised curvature); larger cuts fewer seams.
    faint_seam : float
        Cut each piece again where the curvature passes this fraction of the piece's own mean
        darkness, where that parts it into pieces of at least 0.65 of the median piece's
        area: rods pressed together whose seam is fainter than the frame's rods make it.
        0 skips this second cut.
    pale : float
        Drop cells whose body's mean darkness is less than this fraction of the rods' median
        darkness (both above the background's): uneven background, halos' dark rims. Lone
        filaments are kept. 0 keeps every cell.
    min_area : int, optional
        Smallest rod in pixels before growing back; default 3/4 of a width squared.
    growth : float
        How far (in widths) the rods grow back into the dark pixels.
    filaments : bool
        Attach thin dark lines (stalks, filaments) to the rod they touch, and keep those that
        touch none and are longer than `filament_length` widths as cells.
    filament_scale : float
        Gaussian scale of the thin lines' curvature, in widths.
    filament_length : float
        Shortest lone filament kept as a cell (its bounding box's longer side), in widths.
    working_width : float, optional
        Rods wider than this (px) are segmented on the frame scaled down (area averaging) so
        that they measure about this much, where that drops at least a quarter of the frame's
        side (rods wider than 4/3 of this), but to no less than 0.6 of their size (as the
        phase method: the seams must stay sharp), and the labels scaled back (nearest
        pixel): the same cells at half the time or less (``benchmarks/RESULTS.md``). None
        segments at the frame's own resolution. Explicit sizes stay those of `frame`.

    Returns
    -------
    (Y, X) int32 labels, 0 = background.

    Raises
    ------
    ValueError
        If `frame` is not 2-D or holds NaN or infinity, or a parameter is out of range.

    Notes
    -----
    O(pixels): blurs, a closing, second derivatives, three labellings and the growth's
    watershed of the pixels near the rods.
    """
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D, got shape {frame.shape}")
    check_finite(frame, "frame")
    if diameter <= 0:
        raise ValueError(f"diameter must be positive, got {diameter}")
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got low={low}, high={high}")
    for name, value in (("background", background), ("seam_scale", seam_scale),
                        ("filament_scale", filament_scale)):
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    for name, value in (("faint_seam", faint_seam), ("pale", pale)):
        if value < 0:
            raise ValueError(f"{name} must be 0 (off) or positive, got {value}")
    if working_width is not None and working_width <= 0:
        raise ValueError(f"working_width must be positive or None, got {working_width}")
    if min_area is None:
        min_area = round(0.75 * diameter * diameter)
    factor = working_scale(diameter, working_width)
    if factor < 1.0:
        height, width = frame.shape
        size, factor = working_size(frame.shape, factor)
        smaller = cv2.resize(np.ascontiguousarray(frame, np.float32), size,
                             interpolation=cv2.INTER_AREA)
        labels = segment_bacteria(
            smaller, diameter=diameter * factor, background=background, low=low, high=high,
            seam_scale=seam_scale, seam_curvature=seam_curvature, faint_seam=faint_seam,
            pale=pale, min_area=round(min_area * factor**2), growth=growth, filaments=filaments,
            filament_scale=filament_scale, filament_length=filament_length,
            working_width=None)
        return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    log = log_frame(frame)
    darkness = rod_darkness(log, diameter, background)
    level, noise = _noise_level(darkness)
    dark = _hysteresis(darkness, level + low * noise, level + high * noise)
    if not cv2.countNonZero(dark):
        return np.zeros(frame.shape, np.int32)
    scale = max(1.0, seam_scale * diameter)
    smallest, _ = _hessian_eigenvalues(log, scale)
    contrast = max(float(np.median(darkness[dark > 0])), 1e-6)
    # The scale-normalised curvature (times scale²), relative to the rods' darkness.
    seam = cv2.compare(smallest, -seam_curvature * contrast / (scale * scale), cv2.CMP_LE)
    labels = _rods(dark, seam, min_area)
    if faint_seam > 0 and labels.any():
        labels = _part_at_faint_seams(labels, smallest, darkness, faint_seam / (scale * scale),
                                      min_area)
    labels = grow_labels(labels, dark, growth * diameter)
    bodies = labels > 0
    if filaments:
        labels = _with_filaments(labels, log, darkness > level + _FILAMENT_DARKNESS * noise,
                                 max(1.0, filament_scale * diameter),
                                 filament_length * diameter)
    if pale > 0 and labels.any():
        labels = _without_pale(labels, darkness, bodies, level, pale * (contrast - level))
    return labels


def _rods(dark: NDArray[np.uint8], seam: NDArray[np.uint8], min_area: int) -> NDArray[np.int32]:
    """The pieces of `dark` (0/1) left by cutting out `seam` (0/255) and opening 3x3, those of
    at least `min_area` px labelled."""
    rods = cv2.morphologyEx(cv2.bitwise_and(dark, 1 - seam // 255), cv2.MORPH_OPEN, _OPENING)
    pieces, stats = regions_with_stats(rods)
    return keep_labels(pieces, stats[:, cv2.CC_STAT_AREA] >= max(min_area, 1))


def _part_at_faint_seams(labels: NDArray[np.int32], smallest: NDArray[np.float32],
                         darkness: NDArray[np.float32], curvature: float, min_area: int
                         ) -> NDArray[np.int32]:
    """`labels` with each piece cut again where `smallest` (the curvature) is below
    -`curvature` times the piece's own mean `darkness`, where that leaves two or more parts of
    `_FAINT_PART` of the median piece's area (and `min_area`): rods pressed together whose
    seam is too faint for the frame's threshold, most of them a colony's inner, paler rods.

    A piece the faint seams do not part in two stays whole (not shaved by them)."""
    # Within the pieces' bounding box only: lone rods fill little of a frame.
    left, top, width, height = cv2.boundingRect((labels > 0).view(np.uint8))
    box = np.s_[top:top + height, left:left + width]
    pieces = labels[box]
    flat = pieces.ravel()
    areas = np.bincount(flat)
    own = np.bincount(flat, weights=darkness[box].ravel()) / np.maximum(areas, 1)
    limit = (-curvature * own).astype(np.float32)[pieces]
    inside = (pieces > 0).view(np.uint8)
    faint = cv2.bitwise_and(cv2.compare(smallest[box], limit, cv2.CMP_LE), inside * np.uint8(255))
    smallest_part = max(min_area, round(_FAINT_PART * float(np.median(areas[1:]))))
    parts = _rods(inside, faint, smallest_part)
    owner = np.zeros(int(parts.max()) + 1, np.int32)  # the piece each part lies in
    owner[parts.ravel()] = flat
    owner[0] = 0
    parted = np.bincount(owner, minlength=len(areas)) >= 2
    parted[0] = False
    if not parted.any():
        return labels
    # Whole pieces keep ids 1..k, the parts of the parted ones follow; each pixel is in one of
    # them or (the faint seams) in neither.
    whole = np.zeros(len(areas), np.int32)
    kept = ~parted
    kept[0] = False
    whole[kept] = np.arange(1, int(kept.sum()) + 1, dtype=np.int32)
    new = parted[owner]
    ids = np.zeros(len(owner), np.int32)
    ids[new] = np.arange(int(kept.sum()) + 1, int(kept.sum() + new.sum()) + 1, dtype=np.int32)
    result = np.zeros_like(labels)
    result[box] = whole[pieces] + ids[parts]
    return result


def _without_pale(labels: NDArray[np.int32], darkness: NDArray[np.float32],
                  bodies: NDArray[np.bool_], level: float, least: float) -> NDArray[np.int32]:
    """`labels` without those whose `bodies` pixels' mean `darkness` is less than `least`
    above `level` (cells without a body, lone filaments, stay)."""
    inside = labels[bodies]
    area = np.bincount(inside, minlength=int(labels.max()) + 1)
    mean = np.bincount(inside, weights=darkness[bodies], minlength=len(area)) / np.maximum(area, 1)
    return keep_labels(labels, (area == 0) | (mean - level >= least))


def rod_darkness(log: NDArray[np.float32], width: float, background: float = 3.0
                 ) -> NDArray[np.float32]:
    """How much darker than its brightest surroundings each pixel of the log image is: the
    black top-hat of the image smoothed by 1 px, by a square of `background` x `width`.

    Dark things narrower than about half the square stand out whatever their length; the
    bright seams between touching rods are lower in it than the rods."""
    side = 2 * max(1, round(background * width / 2)) + 1
    smooth = cv2.GaussianBlur(log, (0, 0), 1.0)
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    return cv2.morphologyEx(smooth, cv2.MORPH_BLACKHAT, square)


def _noise_level(values: NDArray[np.float32]) -> tuple[float, float]:
    """The background's median and noise width (sigma) of `values`: median and MAD of a
    regular sample, repeatedly leaving out what stands 3 sigma above (the cells)."""
    sample = np.asarray(regular_sample(values, _NOISE_SAMPLE), np.float64).ravel()
    median = sigma = 0.0
    for _ in range(_CLIP_ROUNDS):
        median = float(np.median(sample))
        sigma = max(_MAD_TO_SIGMA * float(np.median(np.abs(sample - median))), 1e-9)
        kept = sample[sample < median + _CLIPPED_SIGMAS * sigma]
        if len(kept) == len(sample) or not len(kept):
            break
        sample = kept
    return median, sigma


def _hysteresis(values: NDArray[np.float32], low: float, high: float) -> NDArray[np.uint8]:
    """0/1: the 4-connected pieces of `values` > `low` that hold a value > `high` (specks of
    noise touching diagonally do not join a rod)."""
    # Without statistics: a frame's noise above `low` is thousands of specks.
    _, pieces = cv2.connectedComponentsWithAlgorithm(
        cv2.compare(values, low, cv2.CMP_GT) // 255, 4, cv2.CV_32S, cv2.CCL_GRANA)
    keep = np.zeros(int(pieces.max()) + 1, np.uint8)
    keep[pieces[values > high]] = 1
    keep[0] = 0
    return keep[pieces]


def _hessian_eigenvalues(image: NDArray[np.float32], scale: float
                         ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The smaller and larger eigenvalue of the Hessian of `image` smoothed by `scale` px."""
    smooth = cv2.GaussianBlur(image, (0, 0), scale)
    # Sobel's 3x3 second derivatives carry a [1, 2, 1] smoothing (x4), its mixed one two
    # central differences (x4).
    xx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3, scale=0.25)
    yy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3, scale=0.25)
    xy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3, scale=0.25)
    half_trace = cv2.addWeighted(xx, 0.5, yy, 0.5, 0.0)
    root = cv2.magnitude(cv2.addWeighted(xx, 0.5, yy, -0.5, 0.0), xy)
    return cv2.subtract(half_trace, root), cv2.add(half_trace, root)


def _with_filaments(labels: NDArray[np.int32], log: NDArray[np.float32],
                    darker: NDArray[np.bool_], scale: float, shortest: float
                    ) -> NDArray[np.int32]:
    """`labels` with the thin dark lines of `log` (at `scale` px, within `darker`) that touch
    a label joined to it, and those touching none longer than `shortest` px as new labels."""
    _, curvature = _hessian_eigenvalues(log, scale)
    level, noise = _noise_level(cv2.absdiff(curvature, 0.0))
    low, high = (level + sigmas * noise for sigmas in _FILAMENT_SIGMAS)
    lines = _hysteresis(curvature, low, high).view(np.bool_) & darker & (labels == 0)
    if not lines.any():
        return labels
    cells = labels > 0
    # Unbounded growth through the lines: each piece of lines and cells that holds one cell
    # becomes that cell; a line between two cells is shared out by distance.
    joined = grow_labels(labels, (lines | cells).view(np.uint8), float(max(labels.shape)))
    pieces, stats = regions_with_stats((lines & (joined == 0)).view(np.uint8))
    long = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= shortest
    long[0] = False
    if not long.any():
        return joined
    lone = label_instances(np.where(long[pieces], pieces, 0))
    return np.where(lone > 0, lone + int(joined.max()), joined).astype(np.int32)
