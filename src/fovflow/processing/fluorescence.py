"""Fluorescence segmentation: bright nuclei or cells on a dark, possibly uneven background."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skimage import filters

from fovflow.processing._stacks import regular_sample
from fovflow.processing.brightness import split_by_brightness
from fovflow.processing.fluorescence_background import smoothed_frame
from fovflow.processing.splitting import fill_holes, split_touching

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
    between them, or where their outline pinches, and dim nuclei beside bright ones are
    found. With ``split="shape"`` the foreground is `fluorescence_foreground`; it is then
    split into cells by its outline (`split_touching`). `SPLIT_PARAMETERS` says which
    parameters each split reads; another one set away from its default is refused, so that a
    setting is never silently ignored.

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
    image = smoothed_frame(frame, diameter, local, smoothing)
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
