"""Repairs of a frame's regions against the previous frame's cells: a region holding two cells
split between them, pieces of one cell rejoined, and the boxes these work in."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fovflow.processing.overlaps import recounted

__all__ = ["GRID", "box_around", "grid_boxes", "nearest_seed", "rejoined_pieces",
           "split_merged_regions"]

GRID = 4  # `rejoined_pieces` looks for pieces on every 4th row and column
_BOX_BLOCK = 256  # `_new_neighbours` compares this many boxes with all at once


def split_merged_regions(previous: NDArray[np.int32], regions: NDArray[np.int32], n_regions: int,
                         overlaps: tuple[NDArray[np.intp], ...], min_share: float
                         ) -> tuple[NDArray[np.int32], int, tuple[NDArray[np.intp], ...]]:
    """Split every region that holds most of two or more cells of the previous frame, or
    `min_share` of two or more.

    Two cells that touch can become one region. Each previous cell that has at least half
    of its area inside such a region (or `min_share` of it), and a quarter of its share of
    the region's area, seeds one part of it; every pixel of the region goes to the nearest
    seed. A region that holds most of none of its seeds is left whole when they touched in
    the previous frame (within its box): a cell the segmentation cut in two there and along
    another line here; apart, they were a daughter and the neighbour the segmentation joined
    her with, along a wrong seam that cut that neighbour too. The first part keeps
    the region's label, the others get new ones. Returns the regions, their count and their
    overlaps with `previous` (recounted only when something was split).
    """
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    covers = intersection * 2 >= area_previous[pair_previous]
    count = holds_most = np.bincount(pair_current[covers], minlength=n_regions + 1)
    if min_share < 0.5:  # a dividing cell's part beside another cell or a part of her
        covers |= intersection >= min_share * area_previous[pair_previous]
        count = np.bincount(pair_current[covers], minlength=n_regions + 1)
    # A speck beside a cell is no seed.
    covers &= area_previous[pair_previous] * 4 * count[pair_current] >= area_current[pair_current]
    merged = np.flatnonzero(np.bincount(pair_current[covers], minlength=n_regions + 1) >= 2)
    if not len(merged):
        return regions, n_regions, overlaps
    regions = regions.copy()
    low, high = grid_boxes(regions, merged, n_regions + 1)
    parts_before, parts_now, parts_of = [], [], []  # per pixel of a split region
    # A region the grid misses (under 4 px across) is left whole.
    for label in merged[high[merged, 0] >= 0].tolist():
        only = np.zeros(n_regions + 1, bool)
        only[label] = True
        box = box_around(regions, only, *np.maximum(low[label], 0).tolist(),
                         *(high[label] + 1).tolist())
        inside = regions[box] == label
        seeds = pair_previous[covers & (pair_current == label)]
        lookup = np.zeros(int(seeds.max()) + 2, np.int32)
        lookup[seeds] = np.arange(1, len(seeds) + 1)
        under = np.minimum(previous[box], seeds.max() + 1)  # labels above the seeds: none
        if not holds_most[label] and _touching(lookup[under]):
            continue  # parts of one cell the segmentation cut differently before
        part = nearest_seed(np.where(inside, lookup[under], 0), inside)
        new_labels = np.array([label, *range(n_regions + 1, n_regions + len(seeds))], np.int32)
        parts_now.append(new_labels[part[inside] - 1])
        regions[box][inside] = parts_now[-1]
        parts_before.append(previous[box][inside])
        parts_of.append(np.full(len(parts_now[-1]), label))
        n_regions += len(seeds) - 1
    if not parts_now:
        return regions, n_regions, overlaps
    return regions, n_regions, recounted(overlaps, n_regions, np.concatenate(parts_of),
                                         np.concatenate(parts_before),
                                         np.concatenate(parts_now))


def _touching(seeds: NDArray[np.int32]) -> bool:
    """Whether two different seeds (labels above 0) are 4-neighbours somewhere."""
    return any(((before != after) & (before > 0) & (after > 0)).any()
               for before, after in ((seeds[:, :-1], seeds[:, 1:]), (seeds[:-1], seeds[1:])))


def rejoined_pieces(regions: NDArray[np.int32], overlaps: tuple[NDArray[np.intp], ...],
                    min_border: float) -> tuple[NDArray[np.int32], tuple[NDArray[np.intp], ...]]:
    """Join the pieces of one cell of the previous frame that the segmentation cut apart.

    A piece is a region with at least half of its area in one previous cell, or a new region
    (`_new_neighbours`: a cell that appears, cut in two from her first frame on); two pieces
    of the same cell, or two new ones, are joined when they share a border (4-neighbour pixel
    pairs) of at least `min_border` times the equivalent diameter of the smaller. The joined
    region keeps the smallest label, the others are left unused. Returns the regions (a copy
    when something was joined) and their overlaps with the previous frame.

    Notes
    -----
    O(pairs) to find the pieces (and O(pixels / 16) for the boxes of the new regions, when
    there are two or more); where there are some, their pixels are looked for on every
    `GRID` th row and column (a region too thin to meet that grid is not joined), and the
    borders are counted in the boxes around them (`box_around`).
    """
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    order = np.lexsort((intersection, pair_current))  # per region, its largest overlap last
    last = np.ones(len(order), bool)
    last[:-1] = pair_current[order][1:] != pair_current[order][:-1]
    main = order[last]
    main = main[intersection[main] * 2 >= area_current[pair_current[main]]]
    cell, piece = pair_previous[main], pair_current[main]
    shared = np.bincount(cell, minlength=len(area_previous))[cell] >= 2
    new_cell, new_piece = _new_neighbours(regions, overlaps)
    cell = np.concatenate([cell[shared], new_cell])
    piece = np.concatenate([piece[shared], new_piece])
    if not len(piece):
        return regions, overlaps
    mother_of = np.zeros(len(area_current), np.intp)  # 0: no piece
    mother_of[piece] = cell
    grid = regions[::GRID, ::GRID]
    rows, columns = np.nonzero(mother_of[grid])
    mothers, group = np.unique(mother_of[grid[rows, columns]], return_inverse=True)
    low = np.full((len(mothers), 2), np.iinfo(np.intp).max)
    high = np.zeros((len(mothers), 2), np.intp)
    np.minimum.at(low, group, np.column_stack([rows, columns]))
    np.maximum.at(high, group, np.column_stack([rows, columns]))
    low, high = np.maximum(low * GRID - GRID, 0), high * GRID + 2 * GRID
    joined = np.arange(len(area_current))
    changed = []
    for mother, (top, left), (bottom, right) in zip(mothers.tolist(), low.tolist(),
                                                    high.tolist(), strict=True):
        box = box_around(regions, mother_of == mother, top, left, bottom, right)
        for first, second in _long_borders(regions[box], mother_of == mother, area_current,
                                           min_border):
            kept, gone = sorted((joined[first], joined[second]))
            joined[joined == gone] = kept
            changed.append(box)
    if not changed:
        return regions, overlaps
    regions = regions.copy()
    for box in changed:
        regions[box] = joined.astype(np.int32)[regions[box]]
    keys = pair_previous * len(joined) + joined[pair_current]
    keys, inverse = np.unique(keys, return_inverse=True)
    return regions, (keys // len(joined), keys % len(joined),
                     np.bincount(inverse, weights=intersection).astype(np.intp), area_previous,
                     np.bincount(joined, weights=area_current,
                                 minlength=len(joined)).astype(np.intp))


def _new_neighbours(regions: NDArray[np.int32], overlaps: tuple[NDArray[np.intp], ...]
                    ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The new regions (more than half of each outside every cell of the previous frame)
    that lie near another new one, and per region a group number from
    ``len(area_previous)`` on, one per cluster of such regions whose boxes (`grid_boxes`)
    touch: the cells of `rejoined_pieces` for pieces without one."""
    _, pair_current, intersection, area_previous, area_current = overlaps
    inside = np.bincount(pair_current, weights=intersection, minlength=len(area_current))
    new = np.flatnonzero((area_current > 0) & (inside * 2 < area_current))
    new = new[new > 0]
    nothing = np.zeros(0, np.intp)
    if len(new) < 2:
        return nothing, nothing
    low, high = grid_boxes(regions, new, len(area_current))
    met = high[new, 0] >= 0
    new, low, high = new[met], low[new[met]], high[new[met]]
    if len(new) < 2:  # the others too thin to meet the grid
        return nothing, nothing
    # Boxes that touch or overlap (grown by a pixel), each pair once; compared a block of
    # rows at a time, so that a frame of thousands of new regions (after an empty one) does
    # not need a square array of them.
    firsts, seconds = [], []
    for start in range(0, len(new), _BOX_BLOCK):
        block = slice(start, start + _BOX_BLOCK)
        touch = ((low[block, None] <= high[None] + 1)
                 & (low[None] <= high[block, None] + 1)).all(axis=2)
        first, second = np.nonzero(touch)
        first += start
        firsts.append(first[second > first])
        seconds.append(second[second > first])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    if not len(first):
        return nothing, nothing
    near = coo_matrix((np.ones(len(first), np.int8), (first, second)),
                      shape=(len(new), len(new)))
    n_groups, group = connected_components(near, directed=False)
    sizes = np.bincount(group, minlength=n_groups)
    grouped = sizes[group] >= 2
    return len(area_previous) + group[grouped], new[grouped]


def box_around(regions: NDArray[np.int32], is_piece: NDArray[np.bool_], top: int, left: int,
               bottom: int, right: int) -> tuple[slice, slice]:
    """A box from (`top`, `left`) to (`bottom`, `right`), grown by `GRID` on each side that
    still has a pixel of a piece (`is_piece` per label) on its edge, so it holds the connected
    pieces whole."""
    height, width = regions.shape
    bottom, right = min(bottom, height), min(right, width)
    while True:
        grow = [top > 0 and is_piece[regions[top, left:right]].any(),
                left > 0 and is_piece[regions[top:bottom, left]].any(),
                bottom < height and is_piece[regions[bottom - 1, left:right]].any(),
                right < width and is_piece[regions[top:bottom, right - 1]].any()]
        if not any(grow):
            return slice(top, bottom), slice(left, right)
        top, left = max(top - GRID * grow[0], 0), max(left - GRID * grow[1], 0)
        bottom = min(bottom + GRID * grow[2], height)
        right = min(right + GRID * grow[3], width)


def _long_borders(box: NDArray[np.int32], is_piece: NDArray[np.bool_],
                  areas: NDArray[np.intp], min_border: float) -> list[tuple[int, int]]:
    """Pairs of pieces (`is_piece` per label; smaller label first) that share at least
    `min_border` times the smaller one's equivalent diameter of 4-neighbour pixel pairs in
    `box`."""
    keys = []
    for before, after in ((box[:, :-1], box[:, 1:]), (box[:-1], box[1:])):
        touching = (before != after) & is_piece[before] & is_piece[after]
        first, second = before[touching].astype(np.intp), after[touching].astype(np.intp)
        keys.append(np.minimum(first, second) * len(areas) + np.maximum(first, second))
    found, border = np.unique(np.concatenate(keys), return_counts=True)
    smaller, larger = np.divmod(found, len(areas))
    diameter = 2 * np.sqrt(np.minimum(areas[smaller], areas[larger]) / np.pi)
    long = border >= min_border * diameter
    return list(zip(smaller[long].tolist(), larger[long].tolist(), strict=True))


def nearest_seed(markers: NDArray[np.int32], inside: NDArray[np.bool_]) -> NDArray[np.int32]:
    """Inside, the marker value (1..k) of the nearest marked pixel."""
    _, nearest = cv2.distanceTransformWithLabels((markers == 0).view(np.uint8), cv2.DIST_L2,
                                                 cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
    marked = markers > 0
    value_of = np.zeros(int(nearest.max()) + 1, np.int32)
    value_of[nearest[marked]] = markers[marked]
    return np.where(inside, value_of[nearest], 0)


def grid_boxes(regions: NDArray[np.int32], labels: NDArray[np.intp], n_labels: int
               ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Per label 0..`n_labels` - 1, the (row, column) of the top left and bottom right
    corners of a box that holds each of `labels`, found on every `GRID` th row and column:
    O(pixels / 16). A part thinner than the grid reaching out between its rows or columns may
    lie outside it (`box_around` grows it; `_split_joined` grows its window by half). A
    label the grid does not meet, or not asked for, has -1."""
    wanted = np.zeros(n_labels, bool)
    wanted[labels] = True
    grid = regions[::GRID, ::GRID]
    rows, columns = np.nonzero(wanted[grid])
    found = grid[rows, columns]
    low = np.full((n_labels, 2), np.iinfo(np.intp).max)
    high = np.full((n_labels, 2), -1, np.intp)
    np.minimum.at(low, found, np.column_stack([rows, columns]))
    np.maximum.at(high, found, np.column_stack([rows, columns]))
    met = high[:, 0] >= 0
    low[met], high[met] = (low[met] - 1) * GRID + 1, (high[met] + 1) * GRID
    return low, high
