"""Fluorescence segmentation: bright nuclei or cells on a dark, possibly uneven background."""

from __future__ import annotations

import inspect
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage import filters, morphology
from skimage.segmentation import watershed

from fovflow.processing._stacks import check_finite, regular_sample
from fovflow.processing.splitting import fill_holes, label_instances, split_touching

__all__ = ["SPLITS", "SPLIT_PARAMETERS", "THRESHOLDS", "fluorescence_foreground",
           "segment_fluorescence", "split_by_brightness"]

THRESHOLDS = {
    "triangle": filters.threshold_triangle,  # a dim population beside a large background peak
    "otsu": filters.threshold_otsu,
    "li": filters.threshold_li,
}
SPLITS = ("shape", "brightness")
# The parameters of `segment_fluorescence` each split reads (beside `diameter` and `split`);
# the others, set away from their defaults, are refused. The brightness split has no use for
# `threshold`: its foreground is set by the noise, so that dim nuclei count (a histogram
# threshold separates bright from dim ones), and each nucleus' edge by its own brightness; nor
# for `neck`, a constriction of the outline, where it cuts along the dim seams between hills.
SPLIT_PARAMETERS = {"shape": ("threshold", "local", "smoothing", "neck", "min_area"),
                    "brightness": ("local", "smoothing", "min_area")}
_DOWNSAMPLE = 8  # the background is smooth: estimated on a frame 8x smaller
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


def segment_fluorescence(
    frame: NDArray[Any],
    *,
    diameter: float,
    threshold: str | float = "triangle",
    local: bool = True,
    smoothing: float | None = None,
    neck: float = 0.7,
    min_area: int | None = None,
    split: str = "brightness",
) -> NDArray[np.int32]:
    """Segment one fluorescence frame (a nuclear or whole-cell marker) into cell instances.

    With ``split="brightness"`` (the default), the cells are the basins of the brightness
    around its hills (`split_by_brightness`): touching nuclei come apart along the dim seam
    between them, and dim nuclei beside bright ones are found. With ``split="shape"`` the
    foreground is `fluorescence_foreground`; it is then split into cells by its outline
    (`split_touching`). `SPLIT_PARAMETERS` says which parameters each split reads; another
    one set away from its default is refused, so that a setting is never silently ignored.

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    diameter : float
        Typical cell diameter in pixels.
    threshold, local, smoothing
        See `fluorescence_foreground`.
    neck : float
        See `split_touching` (0 keeps touching cells together).
    min_area : int, optional
        Smallest cell in pixels; default the area of a disk of a quarter of the diameter.
    split : {"brightness", "shape"}
        How touching cells are told apart.

    Returns
    -------
    (Y, X) int32 labels, 0 = background.

    Notes
    -----
    O(pixels).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose {', '.join(SPLITS)}")
    _check_threshold(threshold)  # also when the brightness split leaves it unused: a typo
    given = {"threshold": threshold, "local": local, "smoothing": smoothing, "neck": neck,
             "min_area": min_area}
    unused = sorted(name for name, value in given.items()
                    if name not in SPLIT_PARAMETERS[split] and value != _DEFAULTS[name])
    if unused:
        raise ValueError(f"{', '.join(unused)}: read by split: shape only, not by split: "
                         f"{split}; remove {'them' if len(unused) > 1 else 'it'} or add "
                         "split: shape")
    if min_area is None:
        min_area = round(np.pi * (diameter / 8) ** 2)
    if split == "brightness":
        return split_by_brightness(frame, diameter=diameter, local=local, smoothing=smoothing,
                                   min_area=min_area)
    mask = fluorescence_foreground(frame, diameter=diameter, threshold=threshold, local=local,
                                   smoothing=smoothing)
    return split_touching(mask, diameter=diameter, neck=neck, min_area=min_area)


_DEFAULTS = {name: parameter.default
             for name, parameter in inspect.signature(segment_fluorescence).parameters.items()}


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
    them, even where their outline has no neck. The frame is smoothed and its background
    removed as in `fluorescence_foreground`, but with the background carried across the
    frame's border (`_background`, extrapolated): this foreground's floor is a few noise
    sigmas, and a gradient's background cut flat at a border would leave a band of false
    nuclei along it. The foreground is every pixel more than `_NOISE_SIGMAS` noise sigmas
    (from the lower half of the pixels, at least the rounding's) above the background, so dim
    nuclei count as well as bright ones. The markers are the hills of the log
    brightness, smoothed by a sixth of the diameter (hills of a nucleus, not of its
    chromatin), that rise at least `_HILL_DEPTH` above every path to a higher one (h-maxima:
    a dim nucleus beside a bright one keeps its hill, a dip inside one nucleus makes none);
    the foreground is flooded from them (watershed of the log brightness), and each basin
    keeps the pixels at least `_SHARE_OF_LEVEL` of its median: a bright nucleus loses its
    blurred halo, a dim one keeps its edge, bright spots inside one do not shrink it. A basin
    whose median is less than `_BASIN_SIGMAS` noise sigmas above the background is haze
    just above the foreground's floor and is dropped.

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    diameter : float
        Typical nucleus diameter in pixels.
    local, smoothing
        See `fluorescence_foreground`.
    min_area : int
        Nuclei smaller than this (in pixels) are dropped.

    Returns
    -------
    (Y, X) int32 labels 1..n, 0 = background.

    Notes
    -----
    O(pixels log pixels): three blurs, a morphological reconstruction (on a frame reduced by
    up to a twelfth of the diameter: the hills are smooth at that scale), a watershed and a
    sort of the foreground's pixels for the basins' medians.
    """
    image = _smoothed(frame, diameter, local, smoothing, extrapolated=True)
    low = regular_sample(image)
    low = low[low <= np.median(low)]
    level = np.median(low)
    # The MAD sigma, but at least that of rounding integer pixels: a background clipped flat
    # at the frame's floor has no spread to measure (GOWT1 under a gamma of 2 is 95 % zeros,
    # and each speck of haze over them was a nucleus).
    noise = max(1.4826 * float(np.median(np.abs(low - level))),
                _rounding_noise(frame.dtype, _smoothing_sigma(diameter, smoothing)), 1e-6)
    foreground = fill_holes((image > level + _NOISE_SIGMAS * noise).view(np.uint8))
    hills = cv2.GaussianBlur(cv2.log(cv2.max(image, 0.0) + 3 * noise), (0, 0), diameter / 6)
    _, markers = cv2.connectedComponents(_hill_tops(hills, diameter) & foreground,
                                         connectivity=8, ltype=cv2.CV_32S)
    basins = watershed(-hills, markers, mask=foreground > 0)
    levels = _medians(image, basins)
    levels[levels < level + _BASIN_SIGMAS * noise] = np.inf  # haze: dropped whole
    levels[0] = np.inf
    basins[image < _SHARE_OF_LEVEL * levels[basins]] = 0
    return label_instances(basins, min_area=min_area)


def _medians(image: NDArray[np.float32], labels: NDArray[np.int32]) -> NDArray[np.float32]:
    """The median of `image` over each label 0..max (the upper one of an even count).

    One sort of the labelled pixels by (label, value): ~30x faster than
    `scipy.ndimage.median`, which selects label by label.
    """
    inside = labels > 0
    values, owners = image[inside], labels[inside]
    order = np.lexsort((values, owners))
    counts = np.bincount(owners, minlength=int(labels.max()) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    medians = np.zeros(len(counts), np.float32)
    present = counts > 0
    medians[present] = values[order][starts[present] + counts[present] // 2]
    return medians


def _hill_tops(hills: NDArray[np.float32], diameter: float) -> NDArray[np.uint8]:
    """1 on the regional maxima of `hills` that rise at least `_HILL_DEPTH` above their
    surroundings (h-maxima), found on a copy reduced by a twelfth of the diameter."""
    height, width = hills.shape
    factor = max(1, min(round(diameter / 12), height // 8, width // 8))
    small = cv2.resize(hills, (width // factor, height // factor),
                       interpolation=cv2.INTER_AREA) if factor > 1 else hills
    base = morphology.reconstruction(small - _HILL_DEPTH, small, method="dilation")
    tops = (small - base > _HILL_DEPTH / 2).view(np.uint8)
    if factor > 1:
        tops = cv2.resize(tops, (width, height), interpolation=cv2.INTER_NEAREST)
    return tops


def fluorescence_foreground(
    frame: NDArray[Any],
    *,
    diameter: float,
    threshold: str | float = "triangle",
    local: bool = True,
    smoothing: float | None = None,
) -> NDArray[np.bool_]:
    """The foreground mask of a fluorescence frame: bright where cells are.

    The frame is smoothed with a Gaussian of `smoothing` sigma; with `local`, a smooth
    background (a grey opening with a disk wider than a cell, on a frame 8x smaller) is
    subtracted, so uneven illumination does not shift the threshold. Pixels above the
    threshold are foreground, holes are filled.

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    diameter : float
        Typical cell diameter in pixels.
    threshold : {"triangle", "otsu", "li"} or float
        Automatic method (scikit-image's), or a fixed value in the frame's units (after the
        background subtraction when `local`).
    local : bool
        Subtract the local background first.
    smoothing : float, optional
        Gaussian sigma in pixels; default ``diameter / 30``, at least 1.

    Returns
    -------
    (Y, X) bool array

    Notes
    -----
    O(pixels); the background costs about 1/64 of a full-size opening.
    """
    _check_threshold(threshold)
    # The border replicated, not extrapolated as for the brightness split: so the shape
    # split's labels, and the run folders made with them, stay as they were.
    image = _smoothed(frame, diameter, local, smoothing)
    if isinstance(threshold, str):
        sample = regular_sample(image)  # a histogram statistic of a smooth image
        level = THRESHOLDS[threshold](sample) if np.ptp(sample) > 0 else np.inf
    else:
        level = float(threshold)
    mask = (image > level).view(np.uint8)
    return fill_holes(mask).view(np.bool_)


def _check_threshold(threshold: str | float) -> None:
    if isinstance(threshold, str) and threshold not in THRESHOLDS:
        raise ValueError(f"unknown threshold {threshold!r}; choose {', '.join(THRESHOLDS)} "
                         "or a number")


def _smoothed(frame: NDArray[Any], diameter: float, local: bool, smoothing: float | None,
              *, extrapolated: bool = False) -> NDArray[np.float32]:
    """The frame as float32, smoothed (`smoothing` sigma, default ``diameter / 30``, at
    least 1), with its local background subtracted if `local` (`_background`)."""
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D, got shape {frame.shape}")
    check_finite(frame, "frame")
    sigma = _smoothing_sigma(diameter, smoothing)
    if sigma < 0:
        raise ValueError(f"smoothing must not be negative, got {smoothing}")
    image = np.ascontiguousarray(frame, np.float32)
    if sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if local:
        image = cv2.subtract(image, _background(image, diameter, extrapolated=extrapolated))
    return image


def _smoothing_sigma(diameter: float, smoothing: float | None) -> float:
    return max(1.0, diameter / 30) if smoothing is None else smoothing


def _rounding_noise(dtype: np.dtype[Any], sigma: float) -> float:
    """The sigma of rounding to integers (a step over the root of 12), after a Gaussian blur
    of `sigma`, which divides white noise by 2 sqrt(pi) sigma; 0 for a float dtype."""
    if dtype.kind not in "ui":
        return 0.0
    return float(np.sqrt(1 / 12) / max(1.0, 2 * np.sqrt(np.pi) * sigma))


def _background(image: NDArray[np.float32], diameter: float, *, extrapolated: bool
                ) -> NDArray[np.float32]:
    """A smooth background under the cells: grey opening with a disk of 1.5 diameters.

    Without `extrapolated` the frame's border is replicated, and a gradient that rises
    towards an edge is cut flat there, by up to its rise over the disk's radius (three
    quarters of a diameter), while the blur and the upscaling bend it near every edge: on the
    tests' ramp (nuclei 300 high) the background ends ~65 under the frame at the bright edge
    and ~45 over it at the dim one. With `extrapolated` it is carried across the border: the
    eroded frame (bright cells gone, so that they cannot reflect into dark dips) is extended
    before the dilation, the opened one before the blur and the upscaling (`_extended`).
    """
    height, width = image.shape
    small_width, small_height = max(1, width // _DOWNSAMPLE), max(1, height // _DOWNSAMPLE)
    small = cv2.resize(image, (small_width, small_height), interpolation=cv2.INTER_AREA)
    radius = max(1, round(0.75 * diameter / _DOWNSAMPLE))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    blur = max(1.0, (2 * radius + 1) / 4)
    eroded = cv2.erode(small, disk, borderType=cv2.BORDER_REPLICATE)
    margin = radius if extrapolated else 0
    opened = cv2.dilate(_extended(eroded, small, margin), disk, borderType=cv2.BORDER_REPLICATE)
    opened = opened[margin:margin + small_height, margin:margin + small_width]
    margin = int(np.ceil(3 * blur)) if extrapolated else 0  # the blur's reach
    opened = cv2.GaussianBlur(_extended(opened, small, margin), (0, 0), blur)
    scale_x, scale_y = width / small_width, height / small_height
    left, top = round(margin * scale_x), round(margin * scale_y)
    full = cv2.resize(opened, (width + 2 * left, height + 2 * top),
                      interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(full[top:top + height, left:left + width])


def _extended(image: NDArray[np.float32], frame: NDArray[np.float32], margin: int
              ) -> NDArray[np.float32]:
    """`image` with `margin` pixels added on every side by point reflection through its
    border pixels (a ramp runs on), but never above the `frame` it was made from, replicated:
    a cluster of cells at the border is not extrapolated into a brighter background."""
    if not margin:
        return image
    return np.minimum(np.pad(image, margin, mode="reflect", reflect_type="odd"),
                      cv2.copyMakeBorder(frame, margin, margin, margin, margin,
                                         cv2.BORDER_REPLICATE))
