"""Straightforward scipy/numpy versions of the processing algorithms, for comparison in tests,
and a lazy stack that records which frames a step reads.

Written for clarity, not speed: float64 throughout, one region or one tile at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage
from scipy.interpolate import make_interp_spline
from scipy.optimize import linear_sum_assignment


def segment(frame: np.ndarray, *, window: int = 3, bins: int = 200, n_sigma: float = 3.0,
            size: int = 7, iterations: int = 3, min_border_area: int = 30) -> np.ndarray:
    log = np.log1p(np.maximum(frame.astype(np.float64), 0.0))
    mean = ndimage.uniform_filter(log, window, mode="reflect")
    mean_square = ndimage.uniform_filter(log**2, window, mode="reflect")
    deviation = np.sqrt(np.maximum(mean_square - mean**2, 0.0))
    counts, edges = np.histogram(deviation, bins)
    fullest = np.argmax(counts)
    mode = (edges[fullest] + edges[fullest + 1]) / 2
    below = deviation[deviation <= mode]
    sigma = np.sqrt(np.mean((below - mode) ** 2))
    mask = ndimage.binary_fill_holes(deviation > mode + n_sigma * sigma)
    square = np.ones((size, size), bool)
    # border_value=1 for erosion and 0 for dilation: pixels outside the image never count.
    opened = ndimage.binary_erosion(mask, square, iterations, border_value=1)
    opened = ndimage.binary_dilation(opened, square, iterations, border_value=0)
    lost, _ = ndimage.label(mask & ~opened, np.ones((3, 3), bool))
    edge = np.unique(np.concatenate([lost[0], lost[-1], lost[:, 0], lost[:, -1]]))
    for piece in edge[edge > 0]:  # pieces cut by the border are put back when large enough
        if np.sum(lost == piece) >= min_border_area:
            opened |= lost == piece
    mask = ndimage.binary_dilation(opened, square, iterations, border_value=0)
    return ndimage.binary_erosion(mask, square, iterations, border_value=1)


def background(image: np.ndarray, foreground: np.ndarray, *, tile_size: int = 256,
               dilation: int = 21) -> np.ndarray:
    """The background surface, from explicit tiles and two 1-D spline passes."""
    square = np.ones((dilation, dilation), bool)
    usable = ~ndimage.binary_dilation(foreground, square)
    block = tile_size // 2
    tiles = [_tiles(size, block) for size in image.shape]
    medians = np.full([len(axis) for axis in tiles], np.nan)
    for i, (y0, y1) in enumerate(tiles[0]):
        for j, (x0, x1) in enumerate(tiles[1]):
            values = image[y0:y1, x0:x1][usable[y0:y1, x0:x1]]
            if values.size:
                medians[i, j] = np.median(values)
    surface = medians
    for axis, size in enumerate(image.shape):
        centres = np.array([(start + stop - 1) / 2 for start, stop in tiles[axis]])
        if len(centres) == 1:
            surface = np.repeat(surface, size, axis=axis)
            continue
        degree = min(3, len(centres) - 1)
        spline = make_interp_spline(centres, surface, k=degree, axis=axis,
                                    bc_type="natural" if degree == 3 else None)
        surface = spline(np.arange(size, dtype=np.float64))
    return surface


def _tiles(size: int, block: int) -> list[tuple[int, int]]:
    if size <= block:
        return [(0, size)]
    starts = range(-block, size, block)
    return [(max(start, 0), min(start + 2 * block, size)) for start in starts]


def track(masks: np.ndarray, *, min_iou: float = 0.1, max_gap: int = 1) -> np.ndarray:
    """Regions by ndimage.label; IoU of every pair from two masks; Hungarian on the full matrix,
    first against the previous frame, then against the tracks last seen 2, 3, ... frames ago."""
    result = np.zeros(masks.shape, np.uint32)
    frames: list[tuple[np.ndarray, dict[int, int]]] = []  # regions and track per region
    last_seen: dict[int, int] = {}
    n_tracks = 0
    for t, mask in enumerate(masks):
        regions, n = ndimage.label(mask)
        tracks: dict[int, int] = {}
        for gap in range(1, min(max_gap + 1, t) + 1):
            previous, previous_tracks = frames[t - gap]
            candidates = [i for i, track in previous_tracks.items()
                          if gap == 1 or last_seen[track] == t - gap]
            free = [j for j in range(1, n + 1) if j not in tracks]
            iou = np.zeros((len(candidates), len(free)))
            for row, i in enumerate(candidates):
                for column, j in enumerate(free):
                    a, b = previous == i, regions == j
                    iou[row, column] = (a & b).sum() / (a | b).sum()
            iou[iou < min_iou] = 0
            rows, columns = linear_sum_assignment(iou, maximize=True)
            for row, column in zip(rows, columns, strict=True):
                if iou[row, column] > 0:
                    tracks[free[column]] = previous_tracks[candidates[row]]
        for j in range(1, n + 1):
            if j not in tracks:
                n_tracks += 1
                tracks[j] = n_tracks
            result[t][regions == j] = tracks[j]
            last_seen[tracks[j]] = t
        frames.append((regions, tracks))
    return result


def features(labels: np.ndarray, intensity: np.ndarray) -> dict[tuple[int, int], dict]:
    """Per (cell, frame): a full-frame mask per cell, measured with plain numpy."""
    rows = {}
    for t in range(len(labels)):
        for cell in np.unique(labels[t]):
            if cell == 0:
                continue
            mask = labels[t] == cell
            ys, xs = np.nonzero(mask)
            values = intensity[t][mask].astype(np.float64)
            rows[int(cell), t] = {
                "area": mask.sum(), "intensity_total": values.sum(),
                "intensity_mean": values.mean(), "position_x": xs.mean(),
                "position_y": ys.mean(), "bbox_y_min": ys.min(), "bbox_x_min": xs.min(),
                "bbox_y_max": ys.max(), "bbox_x_max": xs.max(),
            }
    return rows


class LazyStack:
    """A stack that hands out frames one by one and records which were read."""

    def __init__(self, frames: np.ndarray) -> None:
        self._frames = frames
        self.read: list[int] = []

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, t: int) -> np.ndarray:
        self.read.append(t)
        return self._frames[t].copy()

    def __iter__(self) -> Iterator[np.ndarray]:
        raise AssertionError("steps must index frames one at a time, not iterate")
