"""Per-cell features of every frame, as a long table with one row per cell and frame.

Features are computed for all cells of a frame at once, by label-indexed reductions over the
pixels of the cells (``np.bincount`` with weights, ``scipy.ndimage.find_objects``). A feature is
one function registered with `register_feature`; user features are added the same way::

    @register_feature("intensity_max")
    def intensity_max(cells: Cells) -> np.ndarray:
        return scipy.ndimage.maximum(cells.intensity_frame, cells.label_frame, cells.ids)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from fovflow.processing._stacks import Stack, iter_frames
from fovflow.progress import Progress

__all__ = ["DEFAULT_FEATURES", "FEATURES", "Cells", "extract_features", "register_feature"]

Feature = Callable[["Cells"], NDArray[Any]]
FEATURES: dict[str, Feature] = {}
"""Registered features by column name; see `register_feature`."""

DEFAULT_FEATURES = ("intensity_total", "intensity_mean", "area")
_FIXED_COLUMNS = ("fov", "cell", "frame", "time", "good", "position_x", "position_y")


def register_feature(name: str) -> Callable[[Feature], Feature]:
    """Register ``function(cells: Cells) -> array`` as the feature (and column) `name`.

    The function returns one value per cell of ``cells.ids``, in that order.

    Raises
    ------
    ValueError
        If `name` is a fixed column or already registered.
    """
    def register(function: Feature) -> Feature:
        if name in FEATURES or name in _FIXED_COLUMNS:
            raise ValueError(f"feature {name!r} is already defined")
        FEATURES[name] = function
        return function
    return register


class Cells:
    """The cells of one frame: their ids and shared reductions for the feature functions.

    Parameters
    ----------
    labels : (Y, X) array of non-negative integer labels, 0 = background
    intensity : (Y, X) array of numbers
    """

    def __init__(self, labels: NDArray[np.integer[Any]], intensity: NDArray[Any]) -> None:
        self.label_frame = labels
        self.intensity_frame = intensity
        self.pixels = np.flatnonzero(labels)
        """Flat indices of the pixels that belong to a cell."""
        pixel_labels = labels.ravel()[self.pixels]
        counts = np.bincount(pixel_labels)
        self.ids = np.flatnonzero(counts)
        """The cell ids present in the frame, ascending."""
        self.area = counts[self.ids]
        """Number of pixels of each cell."""
        index = np.zeros(len(counts), np.intp)
        index[self.ids] = np.arange(len(self.ids))
        self.index = index[pixel_labels]
        """Per cell pixel, the position of its cell in `ids`."""

    def sum(self, values: NDArray[Any]) -> NDArray[np.float64]:
        """Per cell, the sum of `values` given for each cell pixel (in `pixels` order)."""
        return np.bincount(self.index, weights=values, minlength=len(self.ids))

    @cached_property
    def intensity(self) -> NDArray[Any]:
        """The intensity of each cell pixel."""
        return self.intensity_frame.ravel()[self.pixels]

    @cached_property
    def intensity_total(self) -> NDArray[np.float64]:
        return self.sum(self.intensity)

    @cached_property
    def centroid(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mean (x, y) pixel position of each cell's mask, in pixels."""
        y, x = np.divmod(self.pixels, self.label_frame.shape[1])
        return self.sum(x) / self.area, self.sum(y) / self.area

    @cached_property
    def bounding_box(self) -> NDArray[np.intp]:
        """Per cell, ``(y_min, x_min, y_max, x_max)`` with inclusive maxima."""
        objects = ndimage.find_objects(self.label_frame)
        return np.array([(objects[i - 1][0].start, objects[i - 1][1].start,
                          objects[i - 1][0].stop - 1, objects[i - 1][1].stop - 1)
                         for i in self.ids], np.intp).reshape(-1, 4)


@register_feature("intensity_total")
def _intensity_total(cells: Cells) -> NDArray[np.float64]:
    return cells.intensity_total


@register_feature("intensity_mean")
def _intensity_mean(cells: Cells) -> NDArray[np.float64]:
    return cells.intensity_total / cells.area


@register_feature("area")
def _area(cells: Cells) -> NDArray[np.intp]:
    return cells.area


def _bounding_box_feature(column: int) -> Feature:
    return lambda cells: cells.bounding_box[:, column]


for _column, _name in enumerate(("bbox_y_min", "bbox_x_min", "bbox_y_max", "bbox_x_max")):
    register_feature(_name)(_bounding_box_feature(_column))


def extract_features(
    labels: Stack,
    intensity: Stack,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    times: Sequence[float] | None = None,
    fov: int = 0,
    min_length: int = 30,
    border: int = 0,
    progress: Progress | None = None,
) -> dict[str, NDArray[Any]]:
    """Measure every cell in every frame: a long table sorted by cell, then frame.

    Parameters
    ----------
    labels : (T, Y, X) stack of non-negative integer labels
        One id per tracked cell, 0 = background (e.g. from `track_cells`).
    intensity : (T, Y, X) stack of numbers
        E.g. a background-corrected fluorescence channel. NaN pixels make the intensity
        features of their cell NaN in that frame.
    features : names in `FEATURES`
        Columns after the fixed ones, in this order.
    times : T numbers, optional
        The time of each frame, in the caller's units; the frame index if None.
    fov : int
        Written to the ``fov`` column.
    min_length : int
        A cell present in fewer frames is not ``good``.
    border : int
        A cell with a pixel closer than `border` pixels to the edge in any frame is not
        ``good`` (0: no border exclusion).
    progress : callable, optional
        ``progress(done, total)`` after each frame; may raise `fovflow.errors.Cancelled`.

    Returns
    -------
    dict of column name -> 1-D array
        ``fov, cell, frame, time, good, position_x, position_y`` then `features`, one row per
        cell and frame it is present in; ``good`` is the same for all rows of a cell.

    Raises
    ------
    ValueError
        If the stacks differ in length or shape, labels are negative or not integers, `times`
        has the wrong length, or a feature is unknown.

    Notes
    -----
    O(pixels) per frame for all cells together (plus the features' own cost). Memory: a few
    arrays of one frame's cell pixels.
    """
    unknown = [name for name in features if name not in FEATURES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; choose from {sorted(FEATURES)}")
    if times is not None and len(times) != len(labels):
        raise ValueError(f"times has {len(times)} values for {len(labels)} frames")
    if min_length < 0 or border < 0:
        raise ValueError(f"min_length and border must not be negative, got {min_length}, {border}")
    parts: dict[str, list[NDArray[Any]]] = {name: [] for name in ("cell", "frame", "position_x",
                                                                 "position_y", *features)}
    near_border: list[NDArray[Any]] = []
    for t, (label_frame, intensity_frame) in iter_frames(
        ("labels", labels, "iu"), ("intensity", intensity, "biuf")
    ):
        if label_frame.dtype.kind == "i" and label_frame.min(initial=0) < 0:
            raise ValueError(f"labels[{t}] has negative labels")
        cells = Cells(label_frame, intensity_frame)
        x, y = cells.centroid
        for name, values in (("cell", cells.ids), ("frame", np.full(len(cells.ids), t)),
                             ("position_x", x), ("position_y", y),
                             *((name, FEATURES[name](cells)) for name in features)):
            parts[name].append(np.asarray(values))
        if border:
            box = cells.bounding_box
            limits = np.array(label_frame.shape) - border
            near_border.append(cells.ids[(box[:, :2] < border).any(axis=1)
                                         | (box[:, 2:] >= limits).any(axis=1)])
        if progress is not None:
            progress(t + 1, len(labels))
    columns = {name: np.concatenate(values) for name, values in parts.items()}
    order = np.lexsort((columns["frame"], columns["cell"]))
    columns = {name: values[order] for name, values in columns.items()}
    cell_ids, lengths = np.unique(columns["cell"], return_counts=True)
    good_cells = lengths >= min_length
    if near_border:
        good_cells &= ~np.isin(cell_ids, np.concatenate(near_border))
    frame_times = np.arange(len(labels), dtype=np.float64) if times is None else np.asarray(
        times, np.float64)
    return {
        "fov": np.full(len(order), fov),
        "cell": columns["cell"],
        "frame": columns["frame"],
        "time": frame_times[columns["frame"]],
        "good": np.repeat(good_cells, lengths),
        **{name: columns[name] for name in ("position_x", "position_y", *features)},
    }
