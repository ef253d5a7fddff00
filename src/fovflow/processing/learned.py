"""Segmentation by a small convolutional network trained on real cells: the ``learned`` method.

For spread cells in phase contrast the outline of a whole cell is a faint, broken line that
texture, intensity and shape do not hold (``benchmarks/RESULTS.md``, "Spread mammalian cells").
A network that sees whole cells does. fovflow ships small U-Nets (`NETWORKS`) in ONNX, which
OpenCV's DNN module runs on the CPU, so no deep-learning framework is needed to use them.

A network sees the frame scaled so that cells measure `WORKING_DIAMETER` px, in the units of
`normalised`, and gives two maps: the probability that a pixel belongs to a cell, and its
distance to the cell's edge as a fraction of the cell's largest (the *centre* map), averaged
over the frame and the frame turned by half a turn. Cells are the watershed of the centre map
inside the cell map, seeded at its peaks: touching cells are apart where their centres are.
``benchmarks/train_network.py`` trains the networks.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage import morphology
from skimage.segmentation import watershed

from fovflow.processing._stacks import check_finite, log_frame
from fovflow.processing.phase import working_size
from fovflow.processing.splitting import fill_holes, label_instances, regions_with_stats

__all__ = ["NETWORKS", "NETWORK_DEPTH", "WORKING_DIAMETER", "cell_maps", "labels_from_maps",
           "normalised", "segment_learned"]

NETWORKS = {"phase_mammalian": "phase_mammalian.onnx"}
"""The networks fovflow ships, by name: files in ``fovflow/processing/networks``."""
WORKING_DIAMETER = 24.0  # px: the cell size every network is trained and run at
_TILE = 768  # px of the scaled frame a network sees at once, to bound its memory...
_MARGIN = 48  # ...each tile seen with this much more on every side (the networks' reach)
NETWORK_DEPTH = 4  # levels of the U-Nets: their input's sides are multiples of 2**(depth - 1)
# px: smaller cells would be scaled up over 2x, which the network never saw (it learned from
# cells of 40-70 px scaled down), and its memory grows with the square of the scale.
_SMALLEST_DIAMETER = WORKING_DIAMETER / 2
_CENTRE_SMOOTHING = 1.0  # px of the scaled frame: the centre map's pixel-to-pixel wobble
_NOISE_FLOOR = 1e-3  # of the log frame's spread: below any real image's, above zero


def segment_learned(
    frame: NDArray[Any],
    *,
    diameter: float,
    network: str = "phase_mammalian",
    cell_probability: float = 0.5,
    seed_level: float = 0.5,
    seed_depth: float = 0.3,
    min_area: int | None = None,
) -> NDArray[np.int32]:
    """Segment one frame into cell instances with a network of `NETWORKS`.

    Parameters
    ----------
    frame : (Y, X) array of integers or finite floats
    diameter : float
        Typical cell diameter in pixels, at least 12: the frame is scaled so that cells
        measure `WORKING_DIAMETER` px before the network sees it.
    network : str
        A name in `NETWORKS`. ``"phase_mammalian"``: spread and round mammalian cells in
        phase contrast (trained on Usiigaci's manual masks of NIH/3T3 fibroblasts).
    cell_probability : float
        A pixel belongs to a cell where the network's cell map exceeds this.
    seed_level : float
        Cells grow from peaks of the centre map (0-1) above this...
    seed_depth : float
        ...that rise this much or more above the lowest pass to a higher peak: lower cuts
        touching cells more readily, and long or large cells too.
    min_area : int, optional
        Smallest cell in pixels; default a disc of 2/5 of the diameter.

    Returns
    -------
    (Y, X) int32 labels, 0 = background.

    Notes
    -----
    O(pixels of the scaled frame): about 1.2 s per 1024x1024 frame of 44 px cells on one
    core (the network runs twice, `cell_maps`), and some 40 bytes of memory per pixel of the
    scaled frame at its peak.
    """
    if not diameter >= _SMALLEST_DIAMETER:
        raise ValueError(f"the learned method needs cells of {_SMALLEST_DIAMETER:g} px or more, "
                         f"got a diameter of {diameter:g} px; for smaller cells use phase")
    if not 0.0 < cell_probability < 1.0:
        raise ValueError(f"cell_probability must be between 0 and 1, got {cell_probability}")
    for name, value in (("seed_level", seed_level), ("seed_depth", seed_depth)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}")
    check_finite(frame, "frame")
    cells, centres = cell_maps(frame, diameter=diameter, network=network)
    labels = labels_from_maps(cells, centres, cell_probability=cell_probability,
                              seed_level=seed_level, seed_depth=seed_depth)
    if min_area is None:
        min_area = round(np.pi * (diameter / 5) ** 2)
    height, width = frame.shape
    labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    return label_instances(labels, min_area=min_area)


def cell_maps(frame: NDArray[Any], *, diameter: float, network: str
              ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The network's cell and centre maps (0-1) of `frame`, on the frame scaled to cells of
    `WORKING_DIAMETER` px: the mean of the maps of the scaled frame and of the scaled frame
    turned by half a turn (turned back). A network is not quite the same in every orientation;
    the mean of the two cuts fewer cells in pieces (``benchmarks/RESULTS.md``, "Where the
    learned method's precision goes"), for twice the network's time."""
    run = _network(network)
    size, _ = working_size(frame.shape, WORKING_DIAMETER / diameter)
    scaled = cv2.resize(normalised(frame), size, interpolation=cv2.INTER_AREA)
    turned = _tiled_maps(run, np.ascontiguousarray(scaled[::-1, ::-1]))[:, ::-1, ::-1]
    maps = (_tiled_maps(run, scaled) + turned) / 2
    return maps[0], maps[1]


def _tiled_maps(run: cv2.dnn.Net, scaled: NDArray[np.float32]) -> NDArray[np.float32]:
    """The (2, Y, X) maps of `scaled`, computed in tiles of `_TILE` px that each see `_MARGIN`
    px more around them (mirrored at the frame's edges)."""
    height, width = scaled.shape
    padded = np.pad(scaled, _MARGIN, mode="symmetric")
    maps = np.empty((2, height, width), np.float32)
    for top in range(0, height, _TILE):
        for left in range(0, width, _TILE):
            rows, columns = min(_TILE, height - top), min(_TILE, width - left)
            view = padded[top:top + rows + 2 * _MARGIN, left:left + columns + 2 * _MARGIN]
            logits = _logits(run, view)
            maps[:, top:top + rows, left:left + columns] = logits[
                :, _MARGIN:_MARGIN + rows, _MARGIN:_MARGIN + columns]
    return maps


def normalised(frame: NDArray[Any]) -> NDArray[np.float32]:
    """The log frame (`log_frame`) less its median, in units of 5 robust spreads (1.4826 x the
    median absolute deviation), clipped to +-4: what the networks see, for any gain."""
    log = log_frame(frame)
    middle = float(np.median(log))
    spread = 1.4826 * float(np.median(np.abs(log - middle)))
    spread = max(spread, _NOISE_FLOOR * max(float(np.ptp(log)), 1.0))
    return np.clip((log - middle) / (5.0 * spread), -4.0, 4.0).astype(np.float32)


def labels_from_maps(cells: NDArray[np.float32], centres: NDArray[np.float32], *,
                     cell_probability: float, seed_level: float, seed_depth: float
                     ) -> NDArray[np.int32]:
    """Cells as the watershed of the centre map inside ``cells > cell_probability``, one per
    seed: a peak of the centre map (smoothed by `_CENTRE_SMOOTHING` px) above `seed_level`
    that stands `seed_depth` or more above the saddle to any higher one. Dips shallower than
    that (along a long thin cell, across a large flat one) do not cut a cell. Holes in the
    cell map smaller than a cell are filled; its parts without a seed are left out."""
    inside = _with_small_holes_filled(cells > cell_probability)
    smooth = cv2.GaussianBlur(centres, (0, 0), _CENTRE_SMOOTHING)
    peaks = morphology.h_maxima(smooth, seed_depth).astype(bool)
    seeds, _ = ndimage.label(peaks & inside & (smooth > seed_level))
    return watershed(-smooth, seeds, mask=inside).astype(np.int32)


def _with_small_holes_filled(inside: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """`inside` with its holes smaller than a cell filled: a cell's flat middle can read as
    background; a larger hole is the background between cells around it."""
    binary = np.ascontiguousarray(inside, np.uint8)
    holes, stats = regions_with_stats(fill_holes(binary) - binary)
    small = stats[:, cv2.CC_STAT_AREA] < np.pi * (WORKING_DIAMETER / 2) ** 2
    small[0] = False
    return inside | small[holes]


def _logits(run: cv2.dnn.Net, view: NDArray[np.float32]) -> NDArray[np.float32]:
    """The network's maps of `view` (0-1), padded to the sides it takes and cut back."""
    multiple = 2 ** (NETWORK_DEPTH - 1)
    height, width = view.shape
    padded = np.pad(view, ((0, -height % multiple), (0, -width % multiple)), mode="symmetric")
    run.setInput(np.ascontiguousarray(padded[None, None]))
    logits = run.forward()[0, :, :height, :width]
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _network(name: str) -> cv2.dnn.Net:
    """A net of its own of the network `name`: a net holds its input and buffers between
    `setInput` and `forward`, so threads running frames at once must not share one (building
    one from the file's bytes takes about 6 ms, 1% of a 1024x1024 frame)."""
    return cv2.dnn.readNetFromONNX(_network_bytes(name))


@lru_cache(maxsize=len(NETWORKS))
def _network_bytes(name: str) -> NDArray[np.uint8]:
    """The file of the network `name` read from the package, once per process (it is part of
    the code); read-only, so threads may share it."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose {', '.join(NETWORKS)}")
    model = resources.files("fovflow.processing").joinpath("networks", NETWORKS[name])
    return np.frombuffer(model.read_bytes(), np.uint8)
