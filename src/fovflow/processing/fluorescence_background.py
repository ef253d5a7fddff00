"""The smooth background under fluorescent cells, and the frame smoothed with it removed: what
both fluorescence splits (`fovflow.processing.fluorescence`, `fovflow.processing.brightness`)
threshold."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fovflow.processing._stacks import check_finite

__all__ = ["rounding_noise", "smoothed_frame", "smoothing_sigma"]

_DOWNSAMPLE = 8  # the background is smooth: estimated on a frame 8x smaller


def smoothed_frame(frame: NDArray[Any], diameter: float, local: bool, smoothing: float | None,
              *, extrapolated: bool = False) -> NDArray[np.float32]:
    """The frame as float32, smoothed (`smoothing` sigma, default ``diameter / 30``, at
    least 1), with its local background subtracted if `local` (`_background`)."""
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D, got shape {frame.shape}")
    check_finite(frame, "frame")
    sigma = smoothing_sigma(diameter, smoothing)
    if sigma < 0:
        raise ValueError(f"smoothing must not be negative, got {smoothing}")
    image = np.ascontiguousarray(frame, np.float32)
    if sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if local:
        image = cv2.subtract(image, _background(image, diameter, extrapolated=extrapolated))
    return image


def smoothing_sigma(diameter: float, smoothing: float | None) -> float:
    return max(1.0, diameter / 30) if smoothing is None else smoothing


def rounding_noise(dtype: np.dtype[Any], sigma: float) -> float:
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
