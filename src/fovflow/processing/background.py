"""Background correction of fluorescence images: a smooth surface under the cells, subtracted.

The surface comes from the background pixels (outside the dilated foreground): the image is
cut into blocks of half a tile; each tile is 2 x 2 neighbouring blocks, so tiles overlap by half,
and the tiles along the edges are half (or quarter, in the corners) tiles, so that the surface
has knots near the edges; each tile's median becomes a knot of a tensor-product interpolating
cubic spline (natural end conditions) evaluated at every pixel.

The knots are the whole model: `background_knots` measures them, `background_from_knots`
evaluates the surface, and `subtract_background` gives the corrected frame from the raw frame
and its knots, the same float32 that `correct_background` computes. A run folder may store the
knots (a few per tile) instead of the corrected pixels and correct the frames when read.
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.interpolate import make_interp_spline

from fovflow.processing._stacks import (
    OutputStack,
    Stack,
    check_finite,
    iter_frames,
    map_frames,
)
from fovflow.progress import Progress

__all__ = ["background_from_knots", "background_knots", "correct_background",
           "estimate_background", "model_background", "subtract_background"]

_MAX_HISTOGRAM_BINS = 1 << 22  # 32 MB of counts; integer frames needing more take selection


def correct_background(
    fluorescence: Stack,
    foreground: Stack,
    *,
    weight: float = 1.0,
    tile_size: int = 256,
    dilation: int = 21,
    out: OutputStack | None = None,
    progress: Progress | None = None,
) -> OutputStack:
    """Subtract a smooth background surface from every fluorescence frame.

    Parameters
    ----------
    fluorescence : (T, Y, X) stack of integer or float frames
        Read one frame at a time, so it may be memory-mapped or lazy.
    foreground : (T, Y, X) stack of bool (or integer, nonzero = cell) frames
        The cells, e.g. the labels of `segment_cells`; same shape as `fluorescence`.
    weight : float
        Fraction of the surface to subtract, in [0, 1].
    tile_size, dilation
        See `estimate_background`.
    out : writable (T, Y, X) stack, optional
        Where to write the result; a new float32 array if None.
    progress : callable, optional
        ``progress(done, total)`` after each frame; may raise `fovflow.errors.Cancelled`, which
        stops the work at once and propagates.

    Returns
    -------
    (T, Y, X) float32 array, or `out`
        ``fluorescence - weight * background``; may be negative where the image is noisy.

    Raises
    ------
    ValueError
        If the stacks differ in length or frame shape, a frame is not 2-D, has an unsupported
        dtype or holds NaN or infinity, or a parameter is out of range.

    Notes
    -----
    O(pixels) per frame for 8- and 16-bit integer images (per-block histograms); other images
    take a median per tile, O(pixels) with a larger constant. Memory: a few float32 frames.
    """
    _check_weight(weight)

    def corrected(image: NDArray[Any], cells: NDArray[Any]) -> NDArray[np.float32]:
        knots = background_knots(image, cells, tile_size=tile_size, dilation=dilation)
        return subtract_background(image, knots, weight=weight, tile_size=tile_size)

    return map_frames(corrected, ("fluorescence", fluorescence, "uif"),
                      ("foreground", foreground, "biu"), out=out, dtype=np.float32,
                      progress=progress)


def model_background(
    fluorescence: Stack,
    foreground: Stack,
    *,
    weight: float = 1.0,
    tile_size: int = 256,
    dilation: int = 21,
    progress: Progress | None = None,
) -> NDArray[np.float64]:
    """The background surface of every fluorescence frame as its knots, the tile medians.

    What `correct_background` subtracts, kept small: ``subtract_background(fluorescence[t],
    knots[t], weight=weight, tile_size=tile_size)`` is ``correct_background(...)[t]``, bit for
    bit. Parameters, Raises and cost as for `correct_background` (`weight` is only checked,
    so that both refuse the same parameters).

    Returns
    -------
    (T, rows, columns) float64 array
        ``background_knots`` of each frame: one value per tile (``rows = ceil(Y / (tile_size /
        2)) + 1`` for a frame longer than half a tile, else 1; columns alike).
    """
    _check_weight(weight)
    knots: list[NDArray[np.float64]] = []
    n_frames = len(fluorescence)
    for t, (image, cells) in iter_frames(("fluorescence", fluorescence, "uif"),
                                         ("foreground", foreground, "biu")):
        knots.append(background_knots(image, cells, tile_size=tile_size, dilation=dilation))
        if progress is not None:
            progress(t + 1, n_frames)
    return np.stack(knots)


def subtract_background(image: NDArray[Any], knots: NDArray[np.float64], *,
                        weight: float = 1.0, tile_size: int = 256) -> NDArray[np.float32]:
    """``image - weight * background_from_knots(knots, image.shape, tile_size=tile_size)``
    in float32: one frame of `correct_background` from its knots.

    Raises
    ------
    ValueError
        If `knots` do not fit the frame (see `background_from_knots`) or `weight` is out of
        range.

    Notes
    -----
    O(pixels x rows of knots): two small matrix products and one pass over the frame.
    """
    _check_weight(weight)
    surface = background_from_knots(knots, image.shape, tile_size=tile_size)
    return cv2.scaleAdd(surface, -weight, np.ascontiguousarray(image, np.float32))


def estimate_background(
    image: NDArray[Any],
    foreground: NDArray[Any],
    *,
    tile_size: int = 256,
    dilation: int = 21,
) -> NDArray[np.float32]:
    """The smooth background surface of one fluorescence frame.

    Parameters
    ----------
    image : (Y, X) array of integers or finite floats
    foreground : (Y, X) array, nonzero where cells are
    tile_size : int
        Side of a tile (even, >= 2); tiles overlap by half and the edge tiles are half tiles.
        Along an axis no longer than half a tile there is a single tile. The spline is cubic
        along an axis with at least 4 tiles, of degree ``n_tiles - 1`` otherwise (a constant
        for one tile).
    dilation : int
        Side of the square by which the foreground is dilated before it is masked out.

    Returns
    -------
    (Y, X) float32 array
        Interpolates the background medians at the tile centres, extrapolated to the edges
        (``background_from_knots(background_knots(...))``).

    Raises
    ------
    ValueError
        If the shapes differ, `image` holds NaN or infinity, or a parameter is out of range.

    Notes
    -----
    O(pixels + tiles x value range) for 8- and 16-bit integer images, O(pixels) median
    selection per tile otherwise; the surface is two small matrix products.
    """
    knots = background_knots(image, foreground, tile_size=tile_size, dilation=dilation)
    return background_from_knots(knots, image.shape, tile_size=tile_size)


def background_knots(
    image: NDArray[Any],
    foreground: NDArray[Any],
    *,
    tile_size: int = 256,
    dilation: int = 21,
) -> NDArray[np.float64]:
    """The knots of one frame's background surface: the median of each tile's background.

    Parameters and Raises as for `estimate_background`.

    Returns
    -------
    (rows, columns) float64 array
        One median per tile, tiles in frame order (see `estimate_background`). A tile without
        background pixels takes the median of the nearest tile that has some; a frame without
        any background pixels gives its median to every tile.

    Notes
    -----
    The cost of `estimate_background` but for the surface.
    """
    if image.ndim != 2 or image.shape != foreground.shape:
        raise ValueError(f"image {image.shape} and foreground {foreground.shape} must be "
                         "2-D arrays of the same shape")
    if tile_size < 2 or tile_size % 2:
        raise ValueError(f"tile_size must be even and >= 2, got {tile_size}")
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1, got {dilation}")
    check_finite(image, "image")
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (dilation, dilation))
    background = cv2.dilate(np.asarray(foreground != 0, np.uint8), kernel) == 0
    block = tile_size // 2
    if not background.any():
        return np.full(_knot_grid(image.shape, block), float(np.median(image)))
    medians = _tile_medians(image, background, block)
    missing = np.isnan(medians)
    if missing.any():
        nearest = ndimage.distance_transform_edt(missing, return_distances=False,
                                                 return_indices=True)
        medians = medians[tuple(nearest)]
    return medians


def background_from_knots(knots: NDArray[np.float64], shape: tuple[int, ...], *,
                          tile_size: int = 256) -> NDArray[np.float32]:
    """The background surface of a frame of `shape` through its `knots` (`background_knots`
    of a frame of that shape and `tile_size`).

    Raises
    ------
    ValueError
        If `tile_size` is not even and >= 2, or `knots` is not the tile grid of `shape`.

    Notes
    -----
    O(pixels x rows of knots): two small matrix products.
    """
    if tile_size < 2 or tile_size % 2:
        raise ValueError(f"tile_size must be even and >= 2, got {tile_size}")
    block = tile_size // 2
    if len(shape) != 2 or np.shape(knots) != _knot_grid(shape, block):
        raise ValueError(f"knots of shape {np.shape(knots)} are not the tiles of a {shape} "
                         f"frame with tile_size {tile_size}; expected {_knot_grid(shape, block)}")
    rows = _interpolation_weights(shape[0], block)
    columns = _interpolation_weights(shape[1], block)
    # Rows of the weights sum to 1: centring the medians keeps float32 precision.
    level = float(np.mean(knots))
    return cv2.add((rows @ (knots - level).astype(np.float32)) @ columns.T, level)


def _check_weight(weight: float) -> None:
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be between 0 and 1, got {weight}")


def _knot_grid(shape: tuple[int, ...], block: int) -> tuple[int, int]:
    """(rows, columns) of tiles of a frame of `shape` (see `_tiles`)."""
    return (len(_tiles(shape[0], block)), len(_tiles(shape[1], block)))


def _tile_medians(image: NDArray[Any], background: NDArray[np.bool_], block: int
                  ) -> NDArray[np.float64]:
    """Median of the background pixels of each tile (2 x 2 blocks); NaN where there are none."""
    if image.dtype.kind in "iu" and image.dtype.itemsize <= 2:
        low, high, _, _ = cv2.minMaxLoc(image, background.view(np.uint8))
        n_blocks = np.prod([-(-size // block) for size in image.shape])
        if (high - low + 1) * n_blocks <= _MAX_HISTOGRAM_BINS:
            return _tile_medians_from_histograms(image, background, block, int(low), int(high))
    return _tile_medians_by_selection(image, background, block)


def _tile_medians_from_histograms(
    image: NDArray[Any], background: NDArray[np.bool_], block: int, low: int, high: int
) -> NDArray[np.float64]:
    """Exact medians of integer images: histograms per block, summed over each tile's blocks."""
    n_values = high - low + 1
    n_block_rows, n_block_columns = (-(-size // block) for size in image.shape)
    column_offsets = (np.arange(image.shape[1]) // block * n_values).astype(np.int64)
    discard = n_block_columns * n_values
    histograms = np.empty((n_block_rows, n_block_columns, n_values), np.int64)
    for row in range(n_block_rows):
        rows = slice(row * block, (row + 1) * block)
        keys = image[rows].astype(np.int64) - low + column_offsets
        keys[~background[rows]] = discard
        histograms[row] = np.bincount(keys.ravel(), minlength=discard + 1)[:discard].reshape(
            n_block_columns, n_values)
    tiles = _sum_pairs(_sum_pairs(histograms, axis=0), axis=1)
    cumulative = np.cumsum(tiles, axis=-1)
    counts = cumulative[..., -1]
    lower = (cumulative <= ((counts - 1) // 2)[..., None]).sum(axis=-1)
    upper = (cumulative <= (counts // 2)[..., None]).sum(axis=-1)
    return np.where(counts > 0, low + (lower + upper) / 2.0, np.nan)


def _tile_medians_by_selection(image: NDArray[Any], background: NDArray[np.bool_], block: int
                               ) -> NDArray[np.float64]:
    row_tiles, column_tiles = (_tiles(size, block) for size in image.shape)
    medians = np.full((len(row_tiles), len(column_tiles)), np.nan)
    for i, rows in enumerate(row_tiles):
        for j, columns in enumerate(column_tiles):
            values = image[rows, columns][background[rows, columns]]
            if values.size:
                medians[i, j] = np.median(values)
    return medians


def _sum_pairs(blocks: NDArray[np.int64], *, axis: int) -> NDArray[np.int64]:
    """Per tile along `axis`, the sum of its blocks (see `_tiles`)."""
    if blocks.shape[axis] == 1:
        return blocks
    pad = [(0, 0)] * blocks.ndim
    pad[axis] = (1, 1)
    padded = np.pad(blocks, pad)
    n = padded.shape[axis]
    return np.take(padded, range(n - 1), axis=axis) + np.take(padded, range(1, n), axis=axis)


def _tiles(size: int, block: int) -> list[slice]:
    """The tiles along an axis: blocks ``i - 1`` and ``i`` for ``i`` in 0..n_blocks, clipped."""
    if size <= block:
        return [slice(0, size)]
    return [slice(max(start, 0), min(start + 2 * block, size))
            for start in range(-block, size, block)]


@functools.lru_cache(maxsize=8)
def _interpolation_weights(size: int, block: int) -> NDArray[np.float32]:
    """(size, n_tiles) matrix mapping tile values to the interpolating spline at each pixel.

    Cached (read-only): the frames of a movie share it, and building it is half the cost of
    a surface from knots."""
    centres = np.array([(tile.start + tile.stop - 1) / 2.0 for tile in _tiles(size, block)])
    if len(centres) == 1:
        weights = np.ones((size, 1), np.float32)
    else:
        degree = min(3, len(centres) - 1)
        spline = make_interp_spline(centres, np.eye(len(centres)), k=degree,
                                    bc_type="natural" if degree == 3 else None)
        weights = spline(np.arange(size, dtype=np.float64)).astype(np.float32)
    weights.flags.writeable = False
    return weights
