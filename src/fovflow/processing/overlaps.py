"""The regions of two frames: their overlaps (with the stage's shift undone) and their optimal
one-to-one matching, and the regions of a frame."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

__all__ = ["Offset", "best_pairs", "crop", "frame_regions", "match_overlaps", "match_regions",
           "moved", "offset_between", "overlap_windows", "recounted", "region_overlaps",
           "window_around"]

Offset = tuple[int, int]  # (dy, dx): a pixel (y, x) of one frame is at (y + dy, x + dx) in another

_MAX_DENSE_PAIRS = 1 << 20  # larger label-pair histograms are counted sparsely (np.unique)


def offset_between(stage: NDArray[np.float64], earlier: NDArray[np.float64]) -> Offset:
    """The whole-pixel shift of the content between two stage offsets."""
    dy, dx = np.rint(stage - earlier).astype(int).tolist()
    return dy, dx


def moved(frame: NDArray[np.int32], offset: Offset) -> NDArray[np.int32]:
    """The frame with its content moved by `offset`, background where nothing moved in."""
    moved = np.zeros_like(frame)
    source, target = overlap_windows(frame.shape, offset)
    moved[target] = frame[source]
    return moved


def overlap_windows(shape: tuple[int, ...], offset: Offset
                    ) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The parts of two frames that show the same place when the second moved by `offset`."""
    (height, width), (dy, dx) = shape, offset
    source = (slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx)))
    target = (slice(max(0, dy), height - max(0, -dy)), slice(max(0, dx), width - max(0, -dx)))
    return source, target


def match_regions(
    previous: NDArray[np.integer[Any]], current: NDArray[np.integer[Any]], *, min_iou: float = 0.1
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Optimal one-to-one matching of the labelled regions of two frames by overlap.

    The intersection over union of every pair of overlapping regions comes from one histogram
    of (previous label, current label) pixel pairs. Among pairs with IoU >= `min_iou`, the
    matching maximises the summed IoU (Hungarian algorithm).

    Parameters
    ----------
    previous, current : (Y, X) arrays of non-negative integer labels, 0 = background
        Labels should be compact (1..n), since histograms have one bin per label pair.

    Returns
    -------
    previous_labels, current_labels : int arrays
        Matched pairs, sorted by current label.

    Notes
    -----
    O(pixels + pairs); the assignment runs only on regions with more than one candidate
    partner (where cells merge, split or crowd), so it stays small.
    """
    matched_previous, matched_current, _ = match_overlaps(region_overlaps(previous, current),
                                                          min_iou)
    return matched_previous, matched_current


def match_overlaps(overlaps: tuple[NDArray[np.intp], ...], min_iou: float
                   ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """`match_regions` from the `region_overlaps` of two frames, and the area of every current
    label."""
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    iou = intersection / (area_previous[pair_previous] + area_current[pair_current]
                          - intersection)
    return *best_pairs(pair_previous, pair_current, iou, min_iou), area_current


def best_pairs(pair_previous: NDArray[np.intp], pair_current: NDArray[np.intp],
               iou: NDArray[np.float64], min_iou: float) -> tuple[NDArray[np.intp], ...]:
    """One-to-one pairs with IoU >= `min_iou` and the largest summed IoU, by current label."""
    keep = iou >= min_iou
    pair_previous, pair_current, iou = pair_previous[keep], pair_current[keep], iou[keep]
    degree_previous = np.bincount(pair_previous)
    degree_current = np.bincount(pair_current)
    unique = (degree_previous[pair_previous] == 1) & (degree_current[pair_current] == 1)
    matches = [(pair_previous[unique], pair_current[unique])]
    if not unique.all():
        rows, row_index = np.unique(pair_previous[~unique], return_inverse=True)
        columns, column_index = np.unique(pair_current[~unique], return_inverse=True)
        gain = np.zeros((len(rows), len(columns)))
        gain[row_index, column_index] = iou[~unique]
        chosen_rows, chosen_columns = linear_sum_assignment(gain, maximize=True)
        chosen = gain[chosen_rows, chosen_columns] > 0
        matches.append((rows[chosen_rows[chosen]], columns[chosen_columns[chosen]]))
    matched_previous = np.concatenate([m[0] for m in matches])
    matched_current = np.concatenate([m[1] for m in matches])
    order = np.argsort(matched_current)
    return matched_previous[order], matched_current[order]


def region_overlaps(previous: NDArray[Any], current: NDArray[Any], offset: Offset = (0, 0)
                    ) -> tuple[NDArray[np.intp], ...]:
    """Overlapping label pairs (both nonzero) with their pixel counts, and the label areas,
    after the content of `previous` moved by `offset`."""
    n_previous, n_current = int(previous.max(initial=0)), int(current.max(initial=0))
    source, target = overlap_windows(previous.shape, offset)
    before, after = previous[source], current[target]
    if (n_previous + 1) * (n_current + 1) <= _MAX_DENSE_PAIRS:
        keys = before.astype(np.int32) * np.int32(n_current + 1) + after
        counts = np.bincount(keys.ravel(), minlength=(n_previous + 1) * (n_current + 1))
        counts = counts.reshape(n_previous + 1, n_current + 1)
        area_previous, area_current = counts.sum(axis=1), counts.sum(axis=0)
        if offset != (0, 0):  # the areas count the whole frames, not just the shared part
            area_previous += _outside_areas(previous, source, n_previous)
            area_current += _outside_areas(current, target, n_current)
        pairs = np.nonzero(counts[1:, 1:])
        return (pairs[0] + 1, pairs[1] + 1, counts[1:, 1:][pairs], area_previous,
                area_current)
    both = (before != 0) & (after != 0)
    keys = before[both].astype(np.int64) * (n_current + 1) + after[both]
    keys, counts = np.unique(keys, return_counts=True)
    return (keys // (n_current + 1), keys % (n_current + 1), counts,
            np.bincount(previous.ravel(), minlength=n_previous + 1),
            np.bincount(current.ravel(), minlength=n_current + 1))


def _outside_areas(frame: NDArray[Any], window: tuple[slice, slice], n: int) -> NDArray[np.intp]:
    """Pixels per label of the frame outside `window` (thin strips along its edges)."""
    rows, columns = window
    strips = (frame[: rows.start], frame[rows.stop :], frame[rows, : columns.start],
              frame[rows, columns.stop :])
    return sum((np.bincount(strip.ravel(), minlength=n + 1) for strip in strips),
               np.zeros(n + 1, np.intp))


def frame_regions(frame: NDArray[Any], connectivity: int, min_size: int, max_size: int | None
                  ) -> tuple[NDArray[np.int32], int]:
    """The frame's cells labelled 1..n, without those outside the sizes.

    A boolean frame is a mask whose connected regions are the cells (row-major order); an
    integer frame holds instance labels, kept in the order of their values (unchanged, gaps
    included, without size limits: labels of no pixel start no track).
    """
    if frame.dtype == np.bool_:
        n, labels = cv2.connectedComponents(frame.view(np.uint8), connectivity=connectivity,
                                            ltype=cv2.CV_32S)
        if min_size <= 1 and max_size is None:
            return labels, n - 1
    else:
        labels = frame.astype(np.int32, copy=False)
        n = int(labels.max(initial=0)) + 1
        if min_size <= 1 and max_size is None:
            return labels, n - 1
    areas = np.bincount(labels.ravel(), minlength=n)
    keep = (areas >= max(min_size, 1)) & (areas <= (areas.max() if max_size is None
                                                    else max_size))
    keep[0] = False
    relabel = np.zeros(n, np.int32)
    relabel[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return relabel[labels], int(keep.sum())


def recounted(overlaps: tuple[NDArray[np.intp], ...], n_regions: int,
              old_labels: NDArray[np.int32], previous: NDArray[np.int32],
              new_labels: NDArray[np.int32]) -> tuple[NDArray[np.intp], ...]:
    """The `overlaps` after some regions were split: per pixel of those regions, its label
    before (`old_labels`) and after (`new_labels`, up to `n_regions`) and the previous
    frame's label there. O(pairs + those pixels), not a pass over the frame."""
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    kept = ~np.isin(pair_current, old_labels)
    on = previous > 0
    keys, counts = np.unique(previous[on].astype(np.intp) * (n_regions + 1) + new_labels[on],
                             return_counts=True)
    keys = np.concatenate([pair_previous[kept] * (n_regions + 1) + pair_current[kept], keys])
    counts = np.concatenate([intersection[kept], counts])
    order = np.argsort(keys)
    areas = np.zeros(n_regions + 1, np.intp)
    areas[: len(area_current)] = area_current
    areas[np.unique(old_labels)] = 0
    areas += np.bincount(new_labels, minlength=n_regions + 1)
    return (keys[order] // (n_regions + 1), keys[order] % (n_regions + 1), counts[order],
            area_previous, areas)


def window_around(low: NDArray[np.intp], high: NDArray[np.intp]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the box from `low` to `high` (its last row and
    column), grown by half its size on each side (it may reach outside the frame)."""
    (top, left), (bottom, right) = low.tolist(), (high + 1).tolist()
    grow_rows, grow_columns = (bottom - top) // 2 + 2, (right - left) // 2 + 2
    return top - grow_rows, left - grow_columns, bottom + grow_rows, right + grow_columns


def crop(frame: NDArray[np.int32], window: tuple[int, int, int, int], offset: Offset
         ) -> NDArray[np.int32]:
    """The part of `frame` that shows `window` of a frame its content moved to by `offset`,
    0 where it lies outside `frame`."""
    (dy, dx), (top, left, bottom, right) = offset, window
    top, left, bottom, right = top - dy, left - dx, bottom - dy, right - dx
    crop = np.zeros((bottom - top, right - left), np.int32)
    height, width = frame.shape
    rows = slice(max(top, 0), min(bottom, height))
    columns = slice(max(left, 0), min(right, width))
    if rows.start < rows.stop and columns.start < columns.stop:
        crop[rows.start - top : rows.stop - top, columns.start - left : columns.stop - left] = (
            frame[rows, columns])
    return crop
