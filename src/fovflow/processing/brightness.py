"""The brightness split of fluorescent nuclei: the basins of the brightness around its hills,
cut again where a basin's outline pinches (the `fluorescence` method's default split)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage import morphology
from skimage.segmentation import watershed

from fovflow.processing._stacks import regular_sample
from fovflow.processing.fluorescence_background import (
    rounding_noise,
    smoothed_frame,
    smoothing_sigma,
)
from fovflow.processing.splitting import fill_holes, label_instances, split_touching

__all__ = ["split_by_brightness"]

# split_by_brightness: the foreground is this many noise sigmas above the background...
_NOISE_SIGMAS = 6.0
# ...its markers are hills of the log brightness at least this high (10 % brighter)...
_HILL_DEPTH = 0.1
# ...and each nucleus keeps the pixels at least this share of its median brightness...
_SHARE_OF_LEVEL = 0.5
# ...when that median is this many noise sigmas above the background (1.5 x the foreground's):
# fainter basins are haze just above the foreground's floor (GOWT1 `01`: 419 of the 489
# basins on no cell's marker have a median under 10 sigmas, the 1034 on one all above 9).
_BASIN_SIGMAS = 9.0
# _reconstructed: at most this many geodesic dilations by OpenCV (the tune recordings' hills
# settle in 25-55), then scikit-image's reconstruction finishes.
_MAX_DILATIONS = 256
# _cut_at_necks: a basin is cut where its outline pinches to under this share of the thinner
# side's width (`split_touching`'s neck; the shape split's 0.7 leaves nuclei pressed together
# joined: of the tests' simulated ones 0.81 are found, against 0.96 at 0.85 and 0.77 uncut)...
_NECK = 0.85
# ...into sides each at least this share of the diameter's disc...
_MIN_SIDE = 0.2
# ...and at most this many discs of its own inscribed radius (round; an ellipse of 2:1 is 2).
_MAX_ELONGATION = 2.0
# A basin at most this many discs of its inscribed radius is one round nucleus and is not
# tried: 73-80 % of the tune recordings' and the simulated nuclei's basins are under 1.4, and
# those cut were at least 1.35 (of 80 frames of bench_divisions.py one cut is left in 7).
_ROUND = 1.3


def split_by_brightness(
    frame: NDArray[Any],
    *,
    diameter: float,
    local: bool = True,
    smoothing: float | None = None,
    min_area: int = 0,
) -> NDArray[np.int32]:
    """Label fluorescent nuclei as the basins of the brightness around its hills.

    A nucleus is a hill of brightness; two that touch are two hills with a dim seam between
    them, even where their outline has no neck. The frame is smoothed and its background removed
    as in `fovflow.processing.fluorescence.fluorescence_foreground`, but with the background
    carried across the frame's border (`smoothed_frame`, extrapolated): this foreground's floor
    is a few noise sigmas, and a gradient's background cut flat at a border would leave a band
    of false nuclei along it. The foreground is every pixel more than `_NOISE_SIGMAS` noise
    sigmas (from the lower half of the pixels, at least the rounding's) above the background, so
    dim nuclei count as well as bright ones. The markers are the hills of the log brightness,
    smoothed by a sixth of the diameter (hills of a nucleus, not of its chromatin), that rise at
    least `_HILL_DEPTH` above every path to a higher one (h-maxima: a dim nucleus beside a
    bright one keeps its hill, a dip inside one nucleus makes none); the foreground is flooded
    from them (watershed of the log brightness), and each basin keeps the pixels at least
    `_SHARE_OF_LEVEL` of its median: a bright nucleus loses its blurred halo, a dim one keeps
    its edge, bright spots inside one do not shrink it. A basin whose median is less than
    `_BASIN_SIGMAS` noise sigmas above the background is haze just above the foreground's floor
    and is dropped. Nuclei pressed together with no dim seam between them share a basin; where
    its outline pinches, it is cut into round sides (`_cut_at_necks`).

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    diameter : float
        Typical nucleus diameter in pixels.
    local, smoothing
        See `fovflow.processing.fluorescence.fluorescence_foreground`.
    min_area : int
        Nuclei smaller than this (in pixels) are dropped.

    Returns
    -------
    (Y, X) int32 labels 1..n, 0 = background.

    Notes
    -----
    O(pixels log pixels): three blurs, a morphological reconstruction (on a frame reduced by
    up to a twelfth of the diameter: the hills are smooth at that scale), a watershed of the
    foreground's pieces that hold two or more hills, a sort of the foreground's pixels for
    the basins' medians, and a split by shape of each basin large enough for two nuclei.
    """
    image = smoothed_frame(frame, diameter, local, smoothing, extrapolated=True)
    low = regular_sample(image)
    low = low[low <= np.median(low)]
    level = np.median(low)
    # The MAD sigma, but at least that of rounding integer pixels: a background clipped flat
    # at the frame's floor has no spread to measure (GOWT1 under a gamma of 2 is 95 % zeros,
    # and each speck of haze over them was a nucleus).
    noise = max(1.4826 * float(np.median(np.abs(low - level))),
                rounding_noise(frame.dtype, smoothing_sigma(diameter, smoothing)), 1e-6)
    foreground = fill_holes((image > level + _NOISE_SIGMAS * noise).view(np.uint8))
    hills = cv2.GaussianBlur(cv2.log(cv2.max(image, 0.0) + 3 * noise), (0, 0), diameter / 6)
    _, markers = cv2.connectedComponents(_hill_tops(hills, diameter) & foreground,
                                         connectivity=8, ltype=cv2.CV_32S)
    basins = _flooded(-hills, markers, foreground)
    inside = np.flatnonzero(basins)  # a tenth of GOWT1's pixels: the rest are not looked at
    owners, values = basins.ravel()[inside], image.ravel()[inside]
    levels = _medians(values, owners)
    levels[levels < level + _BASIN_SIGMAS * noise] = np.inf  # haze: dropped whole
    basins.ravel()[inside[values < _SHARE_OF_LEVEL * levels[owners]]] = 0
    return _cut_at_necks(label_instances(basins, min_area=min_area), diameter)


def _cut_at_necks(labels: NDArray[np.int32], diameter: float) -> NDArray[np.int32]:
    """`labels` with a basin cut where its outline pinches: nuclei pressed together with no
    dim seam between them are one basin, but two round sides.

    Each basin large enough for two sides and larger than `_ROUND` discs of its inscribed
    radius is split by shape (`split_touching` with `_NECK`), with its holes filled (a dark
    nucleolus is not a neck). The cut is kept only if every side has at least `_MIN_SIDE` of
    the diameter's disc and at most `_MAX_ELONGATION` discs of its own inscribed radius: round
    as a nucleus, not a stretch of a long cell. The new labels follow the last one; `labels`
    is changed in place.

    Notes
    -----
    O(pixels) for the basins' boxes, then O(box) per basin tried: ~11 ms per GOWT1 frame.
    """
    disc = np.pi * (diameter / 2) ** 2
    areas = np.bincount(labels.ravel())
    boxes = ndimage.find_objects(labels)
    next_label = len(areas)
    for label in np.flatnonzero(areas[1:] >= 2 * _MIN_SIDE * disc) + 1:
        box = boxes[label - 1]
        mine = labels[box] == label
        # A pixel of background around it: the frame's edge is an outline too, so a band of
        # light along the edge is thin, not a row of round sides.
        filled = fill_holes(cv2.copyMakeBorder(mine.view(np.uint8), 1, 1, 1, 1,
                                               cv2.BORDER_CONSTANT, value=0))
        distance = cv2.distanceTransform(filled, cv2.DIST_L2, cv2.DIST_MASK_5)
        if np.count_nonzero(filled) <= _ROUND * np.pi * float(distance.max()) ** 2:
            continue  # as round as one nucleus: most are, and need no split
        sides = split_touching(filled, diameter=diameter, neck=_NECK)
        count = int(sides.max())
        if count < 2:
            continue
        own = sides[1:-1, 1:-1][mine]  # the holes left out
        if np.bincount(own, minlength=count + 1)[1:].min() < _MIN_SIDE * disc:
            continue
        radii = ndimage.maximum(distance, sides, np.arange(1, count + 1))
        if (np.bincount(sides.ravel())[1:] > _MAX_ELONGATION * np.pi * np.square(radii)).any():
            continue
        lookup = np.array([0, label, *range(next_label, next_label + count - 1)], np.int32)
        labels[box][mine] = lookup[own]
        next_label += count - 1
    return labels


def _flooded(elevation: NDArray[np.float32], markers: NDArray[np.int32],
             foreground: NDArray[np.uint8]) -> NDArray[np.int32]:
    """The watershed of `elevation` from `markers` within `foreground` (4-connected, as
    scikit-image's), the same labels, flooded only where it has a choice.

    A 4-connected piece of the foreground with one marker is all that marker's, one with none
    is 0; only the pieces with two or more are flooded, each in its own box (a box keeps its
    pixels' raster order, so scikit-image breaks ties as it does in the whole frame). A GOWT1
    frame has ~2100 pieces (most of them specks), ~400 with a marker and ~12 with two or more,
    which hold a third of the foreground: 16 ms per frame against 37.
    """
    count, pieces, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(
        foreground, 4, cv2.CV_32S, cv2.CCL_GRANA)
    on = markers > 0
    span = int(markers.max()) + 1
    pairs = np.unique(pieces[on].astype(np.int64) * span + markers[on])  # (piece, marker)
    piece, marker = pairs // span, (pairs % span).astype(np.int32)
    per_piece = np.bincount(piece, minlength=count)
    owner = np.zeros(count, np.int32)
    alone = per_piece[piece] == 1
    owner[piece[alone]] = marker[alone]
    basins = owner[pieces]
    for shared in np.flatnonzero(per_piece >= 2):
        x, y, width, height = stats[shared, :4]
        box = np.s_[y:y + height, x:x + width]
        mine = pieces[box] == shared
        flooded = watershed(elevation[box], np.where(mine, markers[box], 0), mask=mine)
        basins[box][mine] = flooded[mine]
    return basins


def _medians(values: NDArray[np.float32], owners: NDArray[np.int32]) -> NDArray[np.float32]:
    """The median of `values` per owner 0..max (the upper one of an even count; 0 for an owner
    with none).

    One sort of keys, the owner in the high 32 bits and the value's bits in the low ones (made
    to order as the floats do): ~30x faster than `scipy.ndimage.median`, which selects label
    by label, and ~4x than a lexsort of (value, owner).
    """
    counts = np.bincount(owners, minlength=1)
    keys = np.sort((owners.astype(np.uint64) << np.uint64(32)) | _ordered_bits(values))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    present = counts > 0
    middle = keys[starts[present] + counts[present] // 2] & np.uint64(0xFFFFFFFF)
    medians = np.zeros(len(counts), np.float32)
    medians[present] = _float_bits(middle.astype(np.uint32))
    return medians


_SIGN = np.uint32(1 << 31)


def _ordered_bits(values: NDArray[np.float32]) -> NDArray[np.uint64]:
    """The bits of float32 values as unsigned integers in the floats' order: a positive
    value's sign bit set, a negative one's every bit flipped."""
    bits = values.view(np.uint32)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN).astype(np.uint64)


def _float_bits(ordered: NDArray[np.uint32]) -> NDArray[np.float32]:
    """The float32 values of `_ordered_bits`."""
    return np.where(ordered & _SIGN, ordered & ~_SIGN, ~ordered).view(np.float32)


def _hill_tops(hills: NDArray[np.float32], diameter: float) -> NDArray[np.uint8]:
    """1 on the regional maxima of `hills` that rise at least `_HILL_DEPTH` above their
    surroundings (h-maxima), found on a copy reduced by a twelfth of the diameter."""
    height, width = hills.shape
    factor = max(1, min(round(diameter / 12), height // 8, width // 8))
    small = cv2.resize(hills, (width // factor, height // factor),
                       interpolation=cv2.INTER_AREA) if factor > 1 else hills
    base = _reconstructed(small - _HILL_DEPTH, small)
    tops = (small - base > _HILL_DEPTH / 2).view(np.uint8)
    if factor > 1:
        tops = cv2.resize(tops, (width, height), interpolation=cv2.INTER_NEAREST)
    return tops


def _reconstructed(seed: NDArray[np.float32], mask: NDArray[np.float32]) -> NDArray[np.float32]:
    """The morphological reconstruction by dilation of `seed` under `mask` (8-connected).

    Geodesic dilations by OpenCV (a 3x3 dilation, then the minimum with the mask), eight at a
    time until nothing changes: the hills' tops settle in tens of them (GOWT1: 1.3 ms per frame
    against 7 for scikit-image's reconstruction, whose result this is: every value is the
    seed's or the mask's). After `_MAX_DILATIONS` scikit-image finishes from where they got
    to (the same result, from any seed between the first and the reconstruction).
    """
    square = np.ones((3, 3), np.uint8)
    for _ in range(_MAX_DILATIONS // 8):
        previous = seed
        for _ in range(8):
            seed = cv2.min(cv2.dilate(seed, square), mask)
        if np.array_equal(seed, previous):
            return seed
    return morphology.reconstruction(seed, mask, method="dilation").astype(np.float32)
