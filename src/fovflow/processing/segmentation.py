"""Segmentation of a stack into cell instances, by a method chosen per run.

A *method* is a function ``method(frame, *, diameter, **parameters) -> labels`` that turns one
2-D frame into instance labels (0 = background, one id per cell of the frame). The built-in
methods are ``phase`` (phase contrast, `fovflow.processing.phase`), ``bacteria`` (rod-shaped
bacteria in phase contrast, `fovflow.processing.bacteria`), ``fluorescence`` (nuclear or
whole-cell markers, `fovflow.processing.fluorescence`) and ``learned`` (a network trained on
real cells, `fovflow.processing.learned`); plugins add more (`register_method`).
Every size inside a method derives from one cell `diameter` in pixels (for ``bacteria``: the
rods' width), which `estimate_diameter` can find from the frames themselves.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fovflow.processing._stacks import OutputStack, Stack, map_frames
from fovflow.processing.bacteria import segment_bacteria
from fovflow.processing.fluorescence import fluorescence_foreground, segment_fluorescence
from fovflow.processing.learned import segment_learned
from fovflow.processing.phase import phase_foreground, segment_phase
from fovflow.processing.splitting import darker_than_surroundings, regions_with_stats
from fovflow.progress import Progress

__all__ = ["METHODS", "SUITED_TRACKING", "estimate_diameter", "method_defaults",
           "register_method", "resolve_diameter", "segment_cells", "suited_tracking"]

log = logging.getLogger(__name__)

Method = Callable[..., NDArray[Any]]
METHODS: dict[str, Method] = {"phase": segment_phase, "bacteria": segment_bacteria,
                              "fluorescence": segment_fluorescence, "learned": segment_learned}
"""Segmentation methods by name; `register_method` adds to it."""

# The brightness split's labels are tracked better with pieces of one nucleus rejoined,
# daughters' overlap with their mother read at 0.4 (its outlines are tight), and sisters joined
# for a frame split back: on the real tune nuclei GOWT1 TRA 0.966 -> 0.992, SEG 0.803 -> 0.861,
# SIM+ BC(0) 0.784 -> 0.824. After the shape split rejoining joins sisters cut along a wide
# seam (simulated BC(0) -0.05), so these follow the split (benchmarks/RESULTS.md).
_BRIGHTNESS_TRACKING = {"rejoin_pieces": True, "min_daughter_overlap": 0.4,
                        "split_joined_daughters": True}


def _fluorescence_tracking(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return _BRIGHTNESS_TRACKING if parameters.get("split") == "brightness" else {}


SUITED_TRACKING: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "fluorescence": _fluorescence_tracking}
"""By method: the tracking defaults (other than `track_cells`' own) that suit its labels, as a
function of the method's parameters. A plugin's method may add its own."""

# Plugins estimate their own. The learned network's cells (phase contrast) are measured as
# the phase method's.
_ESTIMATED_METHODS = ("phase", "bacteria", "fluorescence", "learned")
_ESTIMATED_AS = {"learned": "phase"}
_PHASE_CONTRAST = ("phase", "bacteria")
_ESTIMATE_FRAMES = 3  # frames (spread over the movie) the diameter is estimated from
# px, for frames in which no cell can be measured: the size the phase method's fixed sizes
# were made for, large enough that specks of noise are not taken for cells.
_EMPTY_FIELD_DIAMETER = 60.0
_SMALLEST_CELL_PX = 16  # pieces below this area are noise to the diameter estimate
_GRANULOMETRY_SIZES = 24
_SMALLEST_DIAMETER_PX = 6.0  # narrower, a 3x3 texture window cannot resolve a cell
# Phase contrast: a foreground this many times wider than the cells' dark bodies is clumps of
# cells (a microcolony, a confluent layer; on real single cells the ratio measured 1.7-6.4,
# on a real E. coli colony 25), whose diameter is about twice the bodies' (a rod's equivalent
# diameter is about twice its width).
_CLUMPED_RATIO = 8.0
# Rods: a lone rod's foreground (with its halo) measured 1.5-1.8 times its dark body on real
# frames (Caulobacter, a few E. coli), a colony 25 times: wider than 3 bodies, rods lie side
# by side, and their width is the bodies'.
_CLUMPED_RODS_RATIO = 3.0
_BODY_FACTOR = 2.0
# Fluorescence: where the radius of the opening that leaves 1/4 of the foreground is this many
# times that of the one that leaves 3/4, the foreground is thick bodies with thin protrusions
# (whole spread cells: real MSC 2.8 on three frames, 1.9-3.5 frame by frame; simulated ones
# 2.4-2.7), not nuclei, whose widths are alike (real GOWT1 1.3 and SIM+ 1.3 on three frames,
# 1.1-1.4 frame by frame; simulated nuclei, touching and of brightness spread over a decade, up
# to 1.5, one frame 1.7); their diameter is then that of the foreground's pieces.
_SPREAD_RATIO = 1.8
_CROSS = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


class NoCellsError(ValueError):
    """The frames hold nothing a diameter can be estimated from."""


def register_method(name: str) -> Callable[[Method], Method]:
    """Register ``function(frame, *, diameter, **parameters) -> labels`` as method `name`.

    The function receives one 2-D frame and the diameter in pixels (None when the user asked
    for ``auto``: a plugin estimates it itself, or requires a number) and returns integer
    labels of the frame's shape, 0 = background. Its keyword parameters with defaults are the
    method's parameters a run may set.

    Raises
    ------
    ValueError
        If `name` is already registered.
    """
    def register(function: Method) -> Method:
        if name in METHODS:
            raise ValueError(f"segmentation method {name!r} is already defined")
        METHODS[name] = function
        return function
    return register


def method_defaults(method: str) -> dict[str, Any]:
    """The parameters of `method` a run may set, with their defaults (diameter excluded)."""
    return {name: p.default for name, p in inspect.signature(_method(method)).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "diameter"
            and p.default is not inspect.Parameter.empty}


def suited_tracking(method: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The tracking defaults that differ from `track_cells`' own for labels of `method` with
    its `parameters` (the others at their defaults; `SUITED_TRACKING`); explicit tracking
    parameters win."""
    suited = SUITED_TRACKING.get(method)
    return dict(suited({**method_defaults(method), **parameters})) if suited else {}


def segment_cells(
    stack: Stack,
    *,
    method: str = "phase",
    diameter: float | str = "auto",
    out: OutputStack | None = None,
    progress: Progress | None = None,
    **parameters: Any,
) -> OutputStack:
    """Segment every frame of a stack into cell instances.

    Parameters
    ----------
    stack : (T, Y, X) stack of integer or float frames
        Read one frame at a time, so it may be memory-mapped or lazy.
    method : str
        A name in `METHODS`: ``"phase"``, ``"fluorescence"`` or a plugin's.
    diameter : float or "auto"
        Typical cell diameter in pixels; ``"auto"`` estimates it (`estimate_diameter`).
    out : writable (T, Y, X) stack of unsigned integers, optional
        Where to write the labels; a new uint32 array if None.
    progress : callable, optional
        ``progress(done, total)`` after each frame; may raise `fovflow.errors.Cancelled`.
    **parameters
        The method's own parameters (`method_defaults`).

    Returns
    -------
    (T, Y, X) uint32 labels, or `out`: per frame 0 = background and 1..n the cells.

    Raises
    ------
    ValueError
        For an unknown method, a diameter that is not positive or exceeds the frame, frames
        that are not 2-D or not numeric, or a method that returns labels of the wrong shape
        or type.
    """
    function = _method(method)
    size = resolve_diameter(stack, method=method, diameter=diameter)

    def labels(frame: NDArray[Any]) -> NDArray[Any]:
        # Every frame has the first one's shape (iter_frames): only the first can fail this.
        if size is not None and size > max(frame.shape):
            raise ValueError(f"diameter {size:g} px is larger than the frames "
                             f"({frame.shape[1]}x{frame.shape[0]})")
        return _checked_labels(function(frame, diameter=size, **parameters), frame.shape, method)

    return map_frames(labels, ("stack", stack, "uif"), out=out, dtype=np.uint32,
                      progress=progress)


def resolve_diameter(stack: Stack, *, method: str, diameter: float | str) -> float | None:
    """The diameter in pixels a method is given: `diameter` (a positive number), or for
    ``"auto"`` the estimate (`estimate_diameter`) for the built-in methods and None for
    plugins, which estimate it themselves or require a number."""
    if diameter != "auto":
        return _check_diameter(diameter)
    if method not in _ESTIMATED_METHODS:
        return None
    try:
        estimate = estimate_diameter(stack, method=method)
    except NoCellsError:  # an empty field: whatever the size, no cell will be found
        size = min(_EMPTY_FIELD_DIAMETER, *np.shape(stack[0]))
        log.warning("no cells to estimate the diameter from; segmenting at %g px", size)
        return size
    if estimate > max(np.shape(stack[0])):
        raise ValueError(f"the automatic diameter ({estimate:.0f} px) is larger than the frames "
                         f"({np.shape(stack[0])[1]}x{np.shape(stack[0])[0]}): the foreground is "
                         "one region (a confluent layer or a frame smaller than a cell); give "
                         "the diameter in pixels (--diameter)")
    return estimate


def estimate_diameter(stack: Stack, *, method: str = "phase") -> float:
    """The typical cell diameter in pixels, from a few frames spread over the stack.

    A granulometry of the method's foreground, found with sizes that suit any cell (phase:
    no opening; fluorescence: light smoothing), pieces under 16 px left out: the diameter is
    twice the radius of the smallest square whose opening removes half of the foreground.
    Touching cells do not enlarge it, as they would the pieces' areas: an opening removes a
    merged clump at about the width of its cells. On real recordings it came within -25 % to
    +35 % of the median equivalent diameter of the annotated cells (``benchmarks/RESULTS.md``).

    A microcolony or a confluent layer is one solid piece of phase-contrast foreground, which
    this measures as one cell. So for ``phase`` the cells' dark bodies (pixels darker than
    their surroundings, `fovflow.processing.splitting.darker_than_surroundings`) are measured
    the same way, and where the foreground measures more than 8 times the bodies, the diameter
    is twice the bodies' (a rod's equivalent diameter is about twice its width): a real
    *E. coli* colony 186 -> 14.8 px (its cells 15.7 px).

    For ``bacteria`` the diameter is the rods' width: the same measure, but where they are
    clumps, the bodies' own (7.4 px on a real colony of rods about 8 px wide); spread rods'
    foreground is removed by an opening at about their width (*Caulobacter* 6.7 px).

    Whole spread cells in ``fluorescence`` (a thick body with long thin protrusions) would
    measure as their protrusions' width. Nuclei, touching or not, have alike widths: on three
    frames the radius of the opening that leaves a quarter of their foreground is at most 1.5
    times that of the one that leaves three quarters (real GOWT1 and SIM+ 1.3, simulated
    nuclei up to 1.5, clumps of three touching nuclei 1.1); spread cells' protrusions go first
    and their bodies last (real MSC 2.8). Where the ratio exceeds 1.8, the diameter is the
    equivalent diameter of the foreground's pieces, the median over their pixels (so that
    specks do not count): real MSC 24.4 -> 76.9 px (its cells 76.6 px). Touching spread cells
    are one piece, measured as one cell. The fluorescence diameter so found is then refined
    by the cells themselves: the equivalent diameter, median over their pixels, of the cells
    `split_by_brightness` finds at it (`_nuclei_diameter`), where that is larger, for a
    threshold over the whole frame cuts dim cells small where the light is uneven and this
    split does not.

    ``learned`` measures its phase-contrast cells as ``phase`` does.

    Raises
    ------
    ValueError
        For a method other than ``phase``, ``bacteria``, ``fluorescence`` and ``learned``.
    NoCellsError
        When no frame holds a piece of foreground big enough to measure, or the estimate is
        under 6 px (specks of noise).

    Notes
    -----
    About 30 ms per 1024x1024 frame: a distance transform, then one comparison and one
    dilation per size of 24 sizes between 1 px and the largest inscribed radius (spread cells
    add a labelling of the pieces); ``phase`` adds the bodies and one opening of them (a
    second granulometry where they are clumps); ``fluorescence`` adds a brightness split of each
    frame (about 100 ms per 1024x1024 frame).
    """
    if method not in _ESTIMATED_METHODS:
        raise ValueError(f"the diameter of method {method!r} cannot be estimated; give it "
                         "in pixels")
    method = _ESTIMATED_AS.get(method, method)
    count = len(stack)
    picks = sorted({round(i * (count - 1) / max(1, _ESTIMATE_FRAMES - 1))
                    for i in range(min(count, _ESTIMATE_FRAMES))})
    frames = [np.asarray(stack[t]) for t in picks]
    masks = [_without_specks(_scale_free_foreground(frame, method)) for frame in frames]
    if not any(cv2.countNonZero(mask) for mask in masks):
        raise NoCellsError("no cells found to estimate the diameter from; give it in pixels")
    diameter = _measured(masks, method)
    if method == "fluorescence" and diameter >= _SMALLEST_DIAMETER_PX:
        # Only up: the threshold cuts dim cells small; where the split's cells measure smaller
        # they are dim nuclei cut into their brightest parts (CTC SIM+ `02`: 42.0 -> 37.3 px,
        # its cells 55, DET 0.659 -> 0.547).
        diameter = max(diameter, _nuclei_diameter(frames, diameter))
    ratio = _CLUMPED_RODS_RATIO if method == "bacteria" else _CLUMPED_RATIO
    clumps = (_clumps_diameter(frames, masks, diameter, ratio) if method in _PHASE_CONTRAST
              else None)
    if diameter < _SMALLEST_DIAMETER_PX and clumps is None:  # specks: texture, not cells
        raise NoCellsError(f"nothing larger than specks ({diameter:.1f} px) to estimate the "
                           "diameter from; give it in pixels")
    if clumps is None:
        return diameter
    # bacteria's diameter is the rods' width: that of the clumped bodies (at least
    # _SMALLEST_DIAMETER_PX, see `_clumps_diameter`), or of spread rods' foreground (which
    # an opening removes at their width).
    estimate = clumps / _BODY_FACTOR if method == "bacteria" else clumps
    log.info("the foreground measures %.1f px, %g times its cells' dark bodies or more: "
             "clumps of cells, diameter %.1f px", diameter, ratio, estimate)
    return estimate


def _measured(masks: list[NDArray[np.uint8]], method: str) -> float:
    """The granulometry's diameter of `masks`; for ``fluorescence`` foreground whose widths
    spread (whole spread cells, see `estimate_diameter`), that of its pieces."""
    radii, kept = _granulometry(masks)
    diameter = 2.0 * _radius_at(radii, kept, 0.5)
    spread = _radius_at(radii, kept, 0.25) / _radius_at(radii, kept, 0.75)
    if method == "fluorescence" and spread > _SPREAD_RATIO:
        widths, diameter = diameter, _pieces_diameter(masks)
        log.info("the foreground's widths spread %.1f-fold: spread cells with thin "
                 "protrusions, diameter %.1f px (that of its pieces; their widths' median "
                 "%.1f px)", spread, diameter, widths)
    return diameter


def _clumps_diameter(frames: list[NDArray[Any]], masks: list[NDArray[np.uint8]],
                     diameter: float, ratio: float) -> float | None:
    """Twice the diameter of the cells' dark bodies where they measure under 1/`ratio` of
    the foreground's `diameter` (clumps of cells), else None."""
    bodies = [cv2.morphologyEx(darker_than_surroundings(frame, mask, diameter, 1.0)[1],
                               cv2.MORPH_OPEN, _CROSS)
              for frame, mask in zip(frames, masks, strict=True)]
    total = sum(cv2.countNonZero(body) for body in bodies)
    radius = diameter / (2 * ratio)
    # One opening tells most frames apart: bodies it leaves half of are not that small.
    if not total or sum(_opened_area(body, cv2.distanceTransform(body, cv2.DIST_L2,
                                                                 cv2.DIST_MASK_5), radius)
                        for body in bodies) >= total / 2:
        return None
    body_diameter = _granulometry_diameter(bodies)
    # Narrower bodies are the grain of noise, not cells.
    return _BODY_FACTOR * body_diameter if body_diameter >= _SMALLEST_DIAMETER_PX else None


def _granulometry_diameter(masks: list[NDArray[np.uint8]]) -> float:
    """Twice the radius of the square whose opening removes half of the masks' pixels."""
    return 2.0 * _radius_at(*_granulometry(masks), 0.5)


def _granulometry(masks: list[NDArray[np.uint8]]
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Radii of squares and the share of the masks' pixels an opening by each leaves."""
    distances = [cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_5) for mask in masks]
    total = sum(cv2.countNonZero(mask) for mask in masks)
    # A foreground without background (a sheet filling the frame) has no finite distance:
    # no cell is wider than the frame.
    largest = min(max(float(distance.max()) for distance in distances), max(masks[0].shape))
    radii = np.geomspace(1.0, max(2.0, largest), _GRANULOMETRY_SIZES)
    kept = np.array([sum(_opened_area(mask, distance, r)
                         for mask, distance in zip(masks, distances, strict=True))
                     for r in radii]) / total
    return radii, kept


def _nuclei_diameter(frames: list[NDArray[Any]], diameter: float) -> float:
    """The equivalent diameter of the cells `split_by_brightness` finds at `diameter`, median
    over their pixels, or `diameter` where it finds none.

    The granulometry's single threshold cuts dim cells small where the light is uneven
    (real SIM+ `01` under a gradient 0.3-1.7x across the frame: 43.9 px, its cells 49.1); the
    split keeps each cell's pixels above half its own median (47.6 px). Its cells grow less than the
    diameter it is given (started at 0.7x and 1.4x the estimate: 0.93x and 1.04x the cells'),
    so one pass is enough.
    """
    areas = np.concatenate([np.bincount(segment_fluorescence(frame, diameter=diameter,
                                                             split="brightness").ravel())[1:]
                            for frame in frames])
    areas = areas[areas > 0]
    return _area_weighted_diameter(areas) if len(areas) else diameter


def _pieces_diameter(masks: list[NDArray[np.uint8]]) -> float:
    """The equivalent diameter of the masks' 8-connected pieces, median over their pixels."""
    return _area_weighted_diameter(np.concatenate(
        [regions_with_stats(mask)[1][1:, cv2.CC_STAT_AREA] for mask in masks]))


def _area_weighted_diameter(areas: NDArray[np.integer[Any]]) -> float:
    """The equivalent diameter of the median of `areas` weighted by area: half the pixels lie
    in pieces at least this large, so that what they are made of counts, not the specks."""
    ordered = np.sort(areas.astype(np.float64))
    median = ordered[np.searchsorted(np.cumsum(ordered), ordered.sum() / 2)]
    return float(2.0 * np.sqrt(median / np.pi))


def _scale_free_foreground(frame: NDArray[Any], method: str) -> NDArray[np.bool_]:
    if method in _PHASE_CONTRAST:
        return phase_foreground(frame, threshold="otsu", opening_size=3, opening_iterations=1,
                                closing_size=3, closing_iterations=1, min_border_area=0)
    return fluorescence_foreground(frame, diameter=1.0, local=False)


def _without_specks(mask: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """The mask as uint8 without its 8-connected pieces under 16 px."""
    binary = mask.view(np.uint8)
    pieces, stats = regions_with_stats(binary)
    speck = stats[:, cv2.CC_STAT_AREA] < _SMALLEST_CELL_PX
    speck[0] = False
    return np.where(speck[pieces], 0, binary).astype(np.uint8) if speck.any() else binary


def _opened_area(mask: NDArray[np.uint8], distance: NDArray[np.float32], radius: float) -> int:
    """Pixels of `mask` left by an opening with a square of half side `radius`: those within
    `radius` of a pixel at least `radius` from the background."""
    side = 2 * round(radius) + 1
    centres = cv2.compare(distance, radius, cv2.CMP_GE)
    opened = cv2.dilate(centres, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    return cv2.countNonZero(cv2.bitwise_and(opened, mask))


def _radius_at(radii: NDArray[np.float64], kept: NDArray[np.float64], share: float) -> float:
    """Where the kept share (falling with the radius) crosses `share`, interpolated in log r."""
    i = int(np.clip(np.searchsorted(-kept, -share), 1, len(radii) - 1))
    step = kept[i - 1] - kept[i]
    fraction = (kept[i - 1] - share) / step if step > 0 else 0.0
    return float(radii[i - 1] * (radii[i] / radii[i - 1]) ** np.clip(fraction, 0.0, 1.0))


def _method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown segmentation method {name!r}; choose "
                         f"{', '.join(sorted(METHODS))}")
    return METHODS[name]


def _check_diameter(diameter: Any) -> float:
    if isinstance(diameter, bool) or not isinstance(diameter, int | float) or diameter <= 0:
        raise ValueError(f"diameter must be a positive number of pixels or 'auto', not "
                         f"{diameter!r}")
    return float(diameter)


def _checked_labels(labels: Any, shape: tuple[int, ...], method: str) -> NDArray[Any]:
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ValueError(f"segmentation method {method!r} returned labels of shape "
                         f"{labels.shape}, expected the frame's {shape}")
    if labels.dtype.kind not in "biu" or (labels.dtype.kind == "i" and labels.min() < 0):
        raise ValueError(f"segmentation method {method!r} returned {labels.dtype} values; "
                         "expected non-negative integer labels")
    return labels
