"""Tracking of segmented cells from frame to frame by optimal one-to-one overlap matching."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from fovflow.processing._stacks import OutputStack, Progress, Stack, iter_frames, output_stack

__all__ = ["match_regions", "track_cells"]

_MAX_DENSE_PAIRS = 1 << 20  # larger label-pair histograms are counted sparsely (np.unique)


@dataclass(frozen=True)
class _Frame:
    """A tracked frame: its regions, their areas and the track of each region."""

    t: int
    regions: NDArray[np.int32]
    areas: NDArray[np.intp]  # pixels per label (index 0: the background)
    tracks: NDArray[np.int64]  # track id per label, 0 for the background


def track_cells(
    cells: Stack,
    *,
    min_iou: float = 0.1,
    min_size: int = 0,
    max_size: int | None = None,
    connectivity: int = 4,
    max_gap: int = 1,
    split_merged: bool = False,
    out: OutputStack | None = None,
    progress: Progress | None = None,
) -> OutputStack:
    """Label the cells of a stack with one id per track, stable across frames.

    Each frame's cells are its instance labels (integer frames, from `segment_cells`) or the
    connected regions of its mask (boolean frames); cells whose area is outside
    [`min_size`, `max_size`] are dropped. A region continues the track of the region of the
    previous frame it is matched to (`match_regions`). A region left unmatched is then matched
    the same way to the last regions of tracks missing from the previous `max_gap` frames (a
    cell the segmentation missed once), the shortest gap first; a region still unmatched starts
    a new track, so cells that appear late or enter the field are tracked from their first
    frame. Track ids are 1, 2, ... in order of appearance (row-major within a frame); 0 is
    background.

    Parameters
    ----------
    cells : (T, Y, X) stack of integer instance labels (0 = background) or of bool masks
        E.g. from `segment_cells`; read one frame at a time.
    min_iou : float
        Smallest intersection over union for two regions to be matched, in (0, 1].
    min_size, max_size : int
        Smallest and largest region area in pixels (None: no upper bound).
    connectivity : {4, 8}
        Pixel connectivity of a region of a boolean mask.
    max_gap : int
        Most consecutive frames a cell may be missing and keep its track (0: a cell missing
        from one frame starts a new track when it is back).
    split_merged : bool
        Split a region that holds most of two or more cells of the previous frame (touching
        cells the segmentation joined) between them, each pixel to the nearest (`_split_merged`);
        the parts then continue those cells' tracks. Off by default: it also carries a cell
        the segmentation cut in two forward (real nuclei, GOWT1: SEG 0.80 -> 0.72).
    out : writable (T, Y, X) stack of unsigned integers, optional
        Where to write the labels; a new uint32 array if None.
    progress : callable, optional
        ``progress(done, total)`` after each frame; may raise `fovflow.errors.Cancelled`, which
        stops the work at once and propagates.

    Returns
    -------
    (T, Y, X) uint32 array, or `out`

    Raises
    ------
    ValueError
        If a frame is not 2-D or has another shape than the first, a parameter is out of
        range, or there are more tracks than the dtype of `out` holds.

    Notes
    -----
    O(pixels) per frame for the overlaps (one histogram of label pairs), plus the assignment,
    which runs only on the regions with more than one candidate partner. Bridging a gap looks
    only at the pixels of the unmatched regions. Memory: `max_gap` + 3 int32 frames.
    """
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    if min_size < 0 or (max_size is not None and max_size < min_size):
        raise ValueError(f"need 0 <= min_size <= max_size, got {min_size} and {max_size}")
    if max_gap < 0:
        raise ValueError(f"max_gap must not be negative, got {max_gap}")
    result: OutputStack | None = None
    recent: deque[_Frame] = deque(maxlen=max_gap + 1)  # the last frames, newest last
    last_seen = np.full(1, -1, np.int64)  # per track id, the last frame it was in (0: unused)
    for t, (frame,) in iter_frames(("cells", cells, "biu")):
        if result is None:
            result = output_stack(out, len(cells), frame.shape, np.uint32)
            max_id = np.iinfo(result.dtype).max
        regions, n_regions = _regions(frame, connectivity, min_size, max_size)
        tracks = np.zeros(n_regions + 1, np.int64)
        if recent:
            overlaps = _overlaps(recent[-1].regions, regions)
            if split_merged:
                regions, n_regions, overlaps = _split_merged(recent[-1].regions, regions,
                                                             n_regions, overlaps)
                tracks = np.zeros(n_regions + 1, np.int64)
            matched_previous, matched_current, areas = _match(overlaps, min_iou)
            tracks[matched_current] = recent[-1].tracks[matched_previous]
            for earlier in reversed(list(recent)[:-1]):  # the shortest gap first
                _bridge_gap(earlier, last_seen, regions, areas, tracks, min_iou)
        else:
            areas = np.bincount(regions.ravel(), minlength=n_regions + 1)
        present = areas > 0  # instance labels may skip values
        present[0] = False
        new = np.flatnonzero((tracks == 0) & present)
        tracks[new] = np.arange(len(last_seen), len(last_seen) + len(new))
        last_seen = np.concatenate([last_seen, np.zeros(len(new), np.int64)])
        last_seen[tracks[present]] = t
        if len(last_seen) - 1 > max_id:
            raise ValueError(f"{len(last_seen) - 1} tracks do not fit in the dtype of out; "
                             "use uint32")
        result[t] = tracks.astype(np.uint32)[regions]
        recent.append(_Frame(t, regions, areas, tracks))
        if progress is not None:
            progress(t + 1, len(cells))
    assert result is not None  # iter_frames raises on an empty stack
    return result


def _bridge_gap(earlier: _Frame, last_seen: NDArray[np.int64], regions: NDArray[np.int32],
                areas: NDArray[np.intp], tracks: NDArray[np.int64], min_iou: float) -> None:
    """Give unmatched regions the tracks last seen in `earlier` that they match (in place)."""
    lost = last_seen[earlier.tracks] == earlier.t  # per label of `earlier`; never the background
    unmatched = tracks == 0
    unmatched[0] = False
    if not lost.any() or not unmatched.any():
        return
    inside = unmatched[regions]  # the pixels of the unmatched regions, usually few
    current, under = regions[inside], earlier.regions[inside]
    on_lost = lost[under]
    pairs, overlap = np.unique(under[on_lost].astype(np.int64) * len(tracks) + current[on_lost],
                               return_counts=True)
    earlier_labels, current_labels = np.divmod(pairs, len(tracks))
    iou = overlap / (earlier.areas[earlier_labels] + areas[current_labels] - overlap)
    matched_earlier, matched_current = _best_pairs(earlier_labels, current_labels, iou, min_iou)
    tracks[matched_current] = earlier.tracks[matched_earlier]


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
    matched_previous, matched_current, _ = _match(_overlaps(previous, current), min_iou)
    return matched_previous, matched_current


def _match(overlaps: tuple[NDArray[np.intp], ...], min_iou: float
           ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """`match_regions` from the `_overlaps` of two frames, and the area of every current
    label."""
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    iou = intersection / (area_previous[pair_previous] + area_current[pair_current]
                          - intersection)
    return *_best_pairs(pair_previous, pair_current, iou, min_iou), area_current


def _split_merged(previous: NDArray[np.int32], regions: NDArray[np.int32], n_regions: int,
                  overlaps: tuple[NDArray[np.intp], ...]
                  ) -> tuple[NDArray[np.int32], int, tuple[NDArray[np.intp], ...]]:
    """Split every region that holds most of two or more cells of the previous frame.

    Two cells that touch can become one region. Each previous cell that has at least half
    of its area inside such a region, and a quarter of its share of the region's area, seeds
    one part of it; every pixel of the region goes to the nearest seed. The first part keeps
    the region's label, the others get new ones. Returns the regions, their count and their
    overlaps with `previous` (recounted only when something was split).
    """
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    covers = intersection * 2 >= area_previous[pair_previous]
    count = np.bincount(pair_current[covers], minlength=n_regions + 1)
    # A speck beside a cell is no seed.
    covers &= area_previous[pair_previous] * 4 * count[pair_current] >= area_current[pair_current]
    merged = np.flatnonzero(np.bincount(pair_current[covers], minlength=n_regions + 1) >= 2)
    if not len(merged):
        return regions, n_regions, overlaps
    regions = regions.copy()
    boxes = ndimage.find_objects(regions, max_label=int(merged.max()))
    for label in merged:
        box = boxes[label - 1]
        inside = regions[box] == label
        seeds = pair_previous[covers & (pair_current == label)]
        lookup = np.zeros(int(seeds.max()) + 2, np.int32)
        lookup[seeds] = np.arange(1, len(seeds) + 1)
        under = np.minimum(previous[box], seeds.max() + 1)  # labels above the seeds: none
        part = _nearest_seed(np.where(inside, lookup[under], 0), inside)
        new_labels = np.array([label, *range(n_regions + 1, n_regions + len(seeds))], np.int32)
        regions[box][inside] = new_labels[part[inside] - 1]
        n_regions += len(seeds) - 1
    return regions, n_regions, _overlaps(previous, regions)


def _nearest_seed(markers: NDArray[np.int32], inside: NDArray[np.bool_]) -> NDArray[np.int32]:
    """Inside, the marker value (1..k) of the nearest marked pixel."""
    _, nearest = cv2.distanceTransformWithLabels((markers == 0).view(np.uint8), cv2.DIST_L2,
                                                 cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
    marked = markers > 0
    value_of = np.zeros(int(nearest.max()) + 1, np.int32)
    value_of[nearest[marked]] = markers[marked]
    return np.where(inside, value_of[nearest], 0)


def _best_pairs(pair_previous: NDArray[np.intp], pair_current: NDArray[np.intp],
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


def _overlaps(previous: NDArray[Any], current: NDArray[Any]) -> tuple[NDArray[np.intp], ...]:
    """Overlapping label pairs (both nonzero) with their pixel counts, and the label areas."""
    n_previous, n_current = int(previous.max(initial=0)), int(current.max(initial=0))
    if (n_previous + 1) * (n_current + 1) <= _MAX_DENSE_PAIRS:
        keys = previous.astype(np.int32) * np.int32(n_current + 1) + current
        counts = np.bincount(keys.ravel(), minlength=(n_previous + 1) * (n_current + 1))
        counts = counts.reshape(n_previous + 1, n_current + 1)
        area_previous, area_current = counts.sum(axis=1), counts.sum(axis=0)
        pairs = np.nonzero(counts[1:, 1:])
        return (pairs[0] + 1, pairs[1] + 1, counts[1:, 1:][pairs], area_previous,
                area_current)
    both = (previous != 0) & (current != 0)
    keys = previous[both].astype(np.int64) * (n_current + 1) + current[both]
    keys, counts = np.unique(keys, return_counts=True)
    return (keys // (n_current + 1), keys % (n_current + 1), counts,
            np.bincount(previous.ravel(), minlength=n_previous + 1),
            np.bincount(current.ravel(), minlength=n_current + 1))


def _regions(frame: NDArray[Any], connectivity: int, min_size: int, max_size: int | None
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
