"""Tracking of segmented cells from frame to frame by optimal one-to-one overlap matching, with
divisions (a cell that becomes two) and the stage's shift between frames taken into account."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fovflow.processing._stacks import OutputStack, Stack, iter_frames, output_stack
from fovflow.processing.drift import reduce_foreground, reduction, shift_between
from fovflow.processing.lineage import Lineage, find_divisions
from fovflow.processing.overlaps import (
    Offset,
    best_pairs,
    crop,
    frame_regions,
    match_overlaps,
    moved,
    offset_between,
    recounted,
    region_overlaps,
    window_around,
)
from fovflow.processing.region_repairs import (
    box_around,
    grid_boxes,
    nearest_seed,
    rejoined_pieces,
    split_merged_regions,
)
from fovflow.processing.splitting import split_touching
from fovflow.progress import Progress

__all__ = ["Tracking", "track_cells"]

_JOINED_DEPTH = 2  # `_split_joined` looks this many frames back
# `_split_lobed` looks only at regions at least this elongated (the square root of their
# second moments' ratio): simulated sisters joined in one region 1.39-2.15, and 84-91 % of
# single nuclei below it
_MIN_LOBED_ELONGATION = 1.35
# Before the last frame, a region is split into lobes only where it changed at once: its IoU
# with her cell under this (simulated sisters in their first joined frame 0.61-0.78; the 1st
# percentile of regions going on 0.74, the 5th 0.82)
_MAX_LOBED_IOU = 0.8
# Lobes are sisters only with centres this many radii of her cell apart (the lobes' own,
# moved inward by the neck: simulated sisters 1.11-1.45; two notched nuclei of GOWT1 `01`
# 0.90, 0.98; real sisters' centres at birth are 1.25-2.98 radii apart, SIM+ `01`)
_MIN_SISTER_DISTANCE = 1.05


@dataclass(frozen=True)
class Tracking:
    """What `track_cells` found: the labels, the lineage of their tracks, the stage's shifts.

    ``shifts[t]`` is (dy, dx), how far the content of frame t moved against frame t - 1
    (row 0 and every row without drift correction: 0).
    """

    labels: OutputStack
    lineage: Lineage
    shifts: NDArray[np.float64]


@dataclass(frozen=True)
class _Frame:
    """A tracked frame: its regions, their areas, the track of each region, the stage offset."""

    t: int
    regions: NDArray[np.int32]
    areas: NDArray[np.intp]  # pixels per label (index 0: the background)
    tracks: NDArray[np.int64]  # track id per label, 0 for the background
    stage: NDArray[np.float64]  # (dy, dx) since frame 0


def track_cells(
    cells: Stack,
    *,
    min_iou: float = 0.1,
    min_size: int = 0,
    max_size: int | None = None,
    connectivity: int = 4,
    max_gap: int = 1,
    split_merged: bool = False,
    min_merged_share: float = 0.5,
    rejoin_pieces: bool = False,
    min_rejoin_border: float = 0.8,
    divisions: bool = True,
    min_daughter_overlap: float = 0.5,
    max_division_area_change: float = 0.5,
    min_daughter_balance: float = 0.4,
    border_daughters: bool = False,
    min_daughter_frames: int = 3,
    split_joined_daughters: bool = False,
    min_joined_cover: float = 0.7,
    drift: bool = True,
    drift_downsample: int = 8,
    out: OutputStack | None = None,
    progress: Progress | None = None,
) -> Tracking:
    """Label the cells of a stack with one id per track, stable across frames, with lineage.

    Each frame's cells are its instance labels (integer frames, from `segment_cells`) or the
    connected regions of its mask (boolean frames); cells whose area is outside
    [`min_size`, `max_size`] are dropped. With `drift`, the stage's shift against the previous
    frame is estimated first (`fovflow.processing.drift`) and every comparison of two frames
    is made with it undone, so a drifting or jumping stage keeps the tracks. A region
    continues the track of the region of the previous frame it is matched to
    (`match_regions`). With `divisions`, a matched or unmatched pair of regions that together
    replace one cell of the previous frame (`find_divisions`) are its daughters: that track
    ends and each daughter starts a track with it as parent. A region left unmatched is then
    matched the same way to the last regions of tracks missing from the previous `max_gap`
    frames (a cell the segmentation missed once), the shortest gap first; a region still
    unmatched starts a new track, so cells that appear late or enter the field are tracked
    from their first frame. Track ids are 1, 2, ... in order of appearance (row-major within
    a frame); 0 is background.

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
        cells the segmentation joined) between them, each pixel to the nearest
        (`split_merged_regions`); the parts then continue those cells' tracks. Off by
        default: it also carries a cell the segmentation cut in two forward (real nuclei,
        GOWT1: SEG 0.80 -> 0.72, with the fluorescence method's shape split).
    min_merged_share : float
        With `split_merged`, a cell of the previous frame with at least this share of its
        area (but less than half) in a region that holds most of another cell, or this share
        of another (that did not touch her), also seeds a part of it: a daughter the
        segmentation joined with her neighbour (or with a part of him, cut along a wrong
        seam), of whose mother only 0.28-0.50 lies in their region (simulated nuclei),
        becomes a daughter of her own; the neighbour's parts are joined again by
        `rejoin_pieces`. In (0, 1]; 0.5 (the default): only cells with most of their area in
        the region. At 0.2, with ``split: brightness``, `rejoin_pieces` and
        `split_joined_daughters`: simulated division recall 0.71-0.84 -> 0.84-0.96, GOWT1
        `01` CT 0.437 -> 0.447, SIM+ `01` CT 0.689 -> 0.659 (a nucleus cut from the first
        frame on is carried on). For nuclei only: whole cells cut into pieces (MSC `01`) lose
        DET 0.88 -> 0.81 with `split_merged` alone, 0.59 with 0.2.
    rejoin_pieces : bool
        Join regions that each lie at least half in the same cell of the previous frame and
        share a border of at least `min_rejoin_border` times the equivalent diameter of the
        smaller (`rejoined_pieces`), before the matching: one cell the segmentation cut in two
        in this frame only (a textured nucleus that is one basin in one frame and two in the
        next). So are two regions that each lie mostly outside every cell of the previous
        frame: a cell that appears cut in two, who would otherwise be two tracks until she
        divides, and her division lost. Daughters lie apart or touch over a short neck, so
        they stay two. Made for the fluorescence method's ``split: brightness`` (SIM+ `01`:
        18 of 28 divisions found, 1 false, instead of 5 and 22); off by default, since after
        the shape split, which cuts touching daughters along a wide seam, it joins simulated
        daughters again (BC(0) 0.63-0.69 -> 0.59-0.62) and changes nothing on GOWT1 or SIM+.
    min_rejoin_border : float
        See `rejoin_pieces`; > 0.
    divisions : bool
        Detect divisions (off: a cell that becomes two continues as one of them, the other
        starts a track of its own).
    min_daughter_overlap : float
        Share of a daughter's area that must lie inside its mother, in (0, 1].
    max_division_area_change : float
        Most relative difference between the daughters' summed area and the mother's.
    min_daughter_balance : float
        Smallest area of the smaller daughter relative to the larger, in [0, 1].
    border_daughters : bool
        In the balance, count a daughter that the frame's edge cuts by the area of the round
        cell that her cut (her length on the edge and her area inside) shows
        (`fovflow.processing.lineage.cut_disc_area`), so a daughter mostly outside the frame
        is not taken for a speck (a strip under 3.5 px deep on average still is: the glow of
        a cell outside); and a daughter gone from the edge within `min_daughter_frames` left
        the field: her division stands. Off by default: the areas inside the frame, as
        before. With ``split: brightness``, `rejoin_pieces`, `split_joined_daughters`,
        `split_merged` and `min_merged_share` 0.2: simulated division recall 0.88 -> 0.92
        (seed 0), precision unchanged.
    min_daughter_frames : int
        A division whose one daughter is gone within this many frames (counting the first)
        while the other stays (and, with `border_daughters`, was not at the frame's edge when
        last seen: then she left the field) was a cell the segmentation cut for a moment: it
        is undone, the mother's track goes on with the daughter that stayed (its frames
        relabelled) and the piece keeps a track of its own, without parent (on GOWT1 nuclei
        every false division was such a piece, lasting 1-2 frames). 1: no division is
        undone.
    split_joined_daughters : bool
        Move a division found between frames t and t + 1 back to t when the mother's region in
        t was her two daughters as one region (the sisters touched in their first frame): its
        intersection over union with the two daughters of t + 1 together is at least
        `min_joined_cover` (`_split_joined`); and so on back, up to 2 frames. That region is
        split between the daughters (each of its pixels to the nearest pixel of one of them),
        its parts start the daughters' tracks in t with the mother as parent, and the
        daughters of t + 1 continue them. A mother in her last frame covers far less of her
        daughters (simulated nuclei: IoU 0.42-0.62 against 0.80-0.92 for joined sisters), so
        she keeps her frame. Needs the mother seen before t. The probation
        (`min_daughter_frames`) counts from t + 1; a division it undoes is undone in the split
        frames too. Off by default: without it such a division is found a frame late. With
        ``split: brightness`` and `rejoin_pieces`: simulated division recall +0.01-0.04,
        BC(0) +0.03-0.08; GOWT1 `01` SEG 0.855 -> 0.861; SIM+ `01` unchanged.
        In the movie's last frame, which no frame after shows apart, a region in her cell
        that is two lobes (`_split_lobed`: a neck, lobes balanced as daughters, their centres
        1.05 of her radii apart or more) is split when her track was compact in a frame
        still kept; the division is then found (and moved back) as above. With
        `split_merged`, which carries a split on, so it is in any frame where her region
        turned into the lobes at once (IoU with her under 0.8). Simulated nuclei with
        ``split: brightness``, `split_merged`, `min_merged_share` 0.2 and `border_daughters`:
        division recall 0.88-0.90 -> 0.91-0.94 on seeds 2 and 3; the real tune sequences
        unchanged.
    min_joined_cover : float
        See `split_joined_daughters`, in (0, 1].
    drift : bool
        Estimate and undo the stage's shift between frames.
    drift_downsample : int
        Reduction of the frames for the shift estimate (`estimate_shift`).
    out : writable (T, Y, X) stack of unsigned integers, optional
        Where to write the labels; a new uint32 array if None.
    progress : callable, optional
        ``progress(done, total)`` after each frame; may raise `fovflow.errors.Cancelled`, which
        stops the work at once and propagates.

    Returns
    -------
    Tracking
        ``labels``: (T, Y, X) uint32 array, or `out`; ``lineage``: every track's parent and
        frames; ``shifts``: (T, 2) stage shift per frame.

    Raises
    ------
    ValueError
        If a frame is not 2-D or has another shape than the first, a parameter is out of
        range, or there are more tracks than the dtype of `out` holds.

    Notes
    -----
    O(pixels) per frame for the overlaps (one histogram of label pairs) and the shift, plus
    the assignment, which runs only on the regions with more than one candidate partner.
    Divisions cost O(pairs). Bridging a gap looks only at the pixels of the unmatched regions.
    Rejoining pieces reads every 4th row and column, then the boxes around the pieces.
    Splitting lobes costs O(pixels / 4) for the regions' second moments, then a distance
    transform of each elongated region's box.
    A frame's labels are written when it leaves the max(`max_gap` + 1, `min_daughter_frames`)
    frames kept (2 more with `split_joined_daughters`), once no division in it can be undone
    (the last ones at the end). Memory: that many int32 frames + 2.
    """
    _check_parameters(min_iou=min_iou, connectivity=connectivity, min_size=min_size,
                      max_size=max_size, max_gap=max_gap,
                      min_daughter_overlap=min_daughter_overlap,
                      max_division_area_change=max_division_area_change,
                      min_daughter_balance=min_daughter_balance,
                      drift_downsample=drift_downsample, min_daughter_frames=min_daughter_frames,
                      min_rejoin_border=min_rejoin_border, min_joined_cover=min_joined_cover,
                      min_merged_share=min_merged_share)
    division_rule = ({"min_overlap": min_daughter_overlap,
                      "max_area_change": max_division_area_change,
                      "min_balance": min_daughter_balance} if divisions else None)
    result: OutputStack | None = None
    # newest last; with split_joined_daughters, the frames it splits are kept until their
    # division's probation is over, so it can be undone in them
    recent: deque[_Frame] = deque(maxlen=max(max_gap + 1, min_daughter_frames)
                                  + (_JOINED_DEPTH if split_joined_daughters else 0))
    book = _Book(border_daughters)
    shifts = np.zeros((len(cells), 2))
    reduced: NDArray[np.float32] | None = None
    for t, (frame,) in iter_frames(("cells", cells, "biu")):
        # No frame after the last shows her joined daughters apart: their shape must.
        lobe_iou = np.inf if t == len(cells) - 1 else _MAX_LOBED_IOU if split_merged else None
        lobed = (min_daughter_balance if split_joined_daughters and divisions
                 and lobe_iou is not None else None)
        if result is None:
            result = output_stack(out, len(cells), frame.shape, np.uint32)
            max_id = np.iinfo(result.dtype).max
            factor = reduction(frame.shape, drift_downsample)
        regions, n_regions = frame_regions(frame, connectivity, min_size, max_size)
        if drift:
            previous_reduced, reduced = reduced, reduce_foreground(regions, factor)
            if recent:
                shifts[t] = shift_between(previous_reduced, reduced, factor)
        link = _link(regions, n_regions, recent, book, shifts[t], min_iou=min_iou,
                     min_merged_share=min_merged_share if split_merged else None,
                     min_rejoin_border=min_rejoin_border if rejoin_pieces else None,
                     division_rule=division_rule, border_daughters=border_daughters,
                     max_gap=max_gap,
                     min_joined_cover=min_joined_cover if split_joined_daughters else None,
                     min_lobe_balance=lobed, max_lobe_iou=lobe_iou)
        _start_tracks(t, link, book, max_id)
        if border_daughters:
            book.note_edge(link)
        if len(recent) == recent.maxlen:  # written once no division can be undone in it
            _write(result, recent[0])
        recent.append(_Frame(t, link.regions, link.areas, link.tracks, link.stage))
        book.review(t, min_daughter_frames, recent)
        if progress is not None:
            progress(t + 1, len(cells))
    assert result is not None  # iter_frames raises on an empty stack
    for kept in recent:
        _write(result, kept)
    return Tracking(result, book.lineage(), shifts)


def _check_parameters(*, min_iou: float, connectivity: int, min_size: int,
                      max_size: int | None, max_gap: int, min_daughter_overlap: float,
                      max_division_area_change: float, min_daughter_balance: float,
                      drift_downsample: int, min_daughter_frames: int,
                      min_rejoin_border: float, min_joined_cover: float,
                      min_merged_share: float) -> None:
    """Raise ValueError for a `track_cells` parameter out of its range."""
    if not (0.0 < min_joined_cover <= 1.0 and 0.0 < min_merged_share <= 1.0):
        raise ValueError("min_joined_cover and min_merged_share must be in (0, 1], got "
                         f"{min_joined_cover} and {min_merged_share}")
    if not min_rejoin_border > 0.0:
        raise ValueError(f"min_rejoin_border must be positive, got {min_rejoin_border}")
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    if min_size < 0 or (max_size is not None and max_size < min_size):
        raise ValueError(f"need 0 <= min_size <= max_size, got {min_size} and {max_size}")
    if max_gap < 0:
        raise ValueError(f"max_gap must not be negative, got {max_gap}")
    if not (0.0 < min_daughter_overlap <= 1.0 and max_division_area_change >= 0.0
            and 0.0 <= min_daughter_balance <= 1.0):
        raise ValueError("need 0 < min_daughter_overlap <= 1, max_division_area_change >= 0 "
                         f"and 0 <= min_daughter_balance <= 1, got {min_daughter_overlap}, "
                         f"{max_division_area_change} and {min_daughter_balance}")
    if drift_downsample < 1 or min_daughter_frames < 1:
        raise ValueError(f"drift_downsample and min_daughter_frames must be at least 1, got "
                         f"{drift_downsample} and {min_daughter_frames}")


@dataclass(frozen=True)
class _Link:
    """A new frame's regions tied to the tracks: the track of each region (0: none yet, -1: a
    daughter, to start a track), the mothers' tracks and their daughters' regions."""

    regions: NDArray[np.int32]
    areas: NDArray[np.intp]
    tracks: NDArray[np.int64]
    parent_of: NDArray[np.int64]  # the mother's track of each daughter region
    mother_tracks: NDArray[np.int64]
    daughters: NDArray[np.intp]  # (divisions, 2) regions
    stage: NDArray[np.float64]
    edge_pixels: NDArray[np.intp] | None  # per region, on the frame's edge (border_daughters)


def _link(regions: NDArray[np.int32], n_regions: int, recent: deque[_Frame], book: _Book,
          shift: NDArray[np.float64], *, min_iou: float, min_merged_share: float | None,
          min_rejoin_border: float | None, division_rule: dict[str, float] | None,
          border_daughters: bool, max_gap: int, min_joined_cover: float | None,
          min_lobe_balance: float | None = None, max_lobe_iou: float = np.inf) -> _Link:
    """Match a frame's regions to the last frame (with `shift` undone), split merged cells
    (with `min_merged_share`, if any), rejoin pieces (with `min_rejoin_border`, if any), find
    divisions (with `division_rule`, if any, and `border_daughters`), move those whose mother
    was her daughters joined back a frame or two (with `min_joined_cover`, if any: the last
    frames of `recent` change) and bridge gaps to the frames before (see `track_cells`)."""
    tracks = np.zeros(n_regions + 1, np.int64)
    parent_of = np.zeros(n_regions + 1, np.int64)
    mother_tracks, daughters = np.zeros(0, np.int64), np.zeros((0, 2), np.intp)
    if not recent:
        areas = np.bincount(regions.ravel(), minlength=n_regions + 1)
        edges = _edge_pixels(regions, len(areas)) if border_daughters else None
        return _Link(regions, areas, tracks, parent_of, mother_tracks, daughters, np.zeros(2),
                     edges)
    last = recent[-1]
    stage = last.stage + shift
    previous, offset = last.regions, offset_between(stage, last.stage)
    if (min_merged_share is not None or min_lobe_balance is not None) and offset != (0, 0):
        # seeds and parts read in place: moved first
        previous, offset = moved(previous, offset), (0, 0)
    overlaps = region_overlaps(previous, regions, offset)
    if min_merged_share is not None:
        regions, n_regions, overlaps = split_merged_regions(previous, regions, n_regions, overlaps,
                                                            min_merged_share)
        tracks = np.zeros(n_regions + 1, np.int64)
        parent_of = np.zeros(n_regions + 1, np.int64)
    if min_rejoin_border is not None:
        regions, overlaps = rejoined_pieces(regions, overlaps, min_rejoin_border)
    if min_lobe_balance is not None:
        regions, n_regions, overlaps = _split_lobed(recent, previous, regions, n_regions,
                                                    overlaps, min_lobe_balance, max_lobe_iou)
        tracks = np.zeros(n_regions + 1, np.int64)
        parent_of = np.zeros(n_regions + 1, np.int64)
    matched_previous, matched_current, areas = match_overlaps(overlaps, min_iou)
    tracks[matched_current] = last.tracks[matched_previous]
    edges = _edge_pixels(regions, len(areas)) if border_daughters else None
    if division_rule is not None:
        mothers, daughters = find_divisions(*overlaps, matched_previous, matched_current,
                                            edge_pixels=edges, **division_rule)
        if min_joined_cover is not None:
            mothers, daughters = _split_joined(recent, book, regions, stage, overlaps,
                                               mothers, daughters, tracks, min_joined_cover)
        mother_tracks = recent[-1].tracks[mothers]
        tracks[daughters] = -1  # new tracks, below; never bridged to another
        parent_of[daughters] = mother_tracks[:, None]
        book.divided[mother_tracks] = True
    for earlier in list(recent)[-max_gap - 1:-1][::-1]:  # the shortest gap first
        _bridge_gap(earlier, book, regions, areas, tracks, min_iou,
                    offset_between(stage, earlier.stage))
    return _Link(regions, areas, tracks, parent_of, mother_tracks, daughters, stage, edges)


def _edge_pixels(regions: NDArray[np.int32], n_labels: int) -> NDArray[np.intp]:
    """Pixels per label (0..`n_labels` - 1) on the frame's first and last row and column (a
    corner pixel counts twice, once per edge it cuts)."""
    edges = (regions[0], regions[-1], regions[:, 0], regions[:, -1])
    return sum((np.bincount(edge, minlength=n_labels) for edge in edges),
               np.zeros(n_labels, np.intp))


def _split_joined(recent: deque[_Frame], book: _Book, regions: NDArray[np.int32],
                  stage: NDArray[np.float64], overlaps: tuple[NDArray[np.intp], ...],
                  mothers: NDArray[np.intp], daughters: NDArray[np.intp],
                  tracks: NDArray[np.int64], min_cover: float
                  ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Move the divisions whose mother's region was her daughters joined back a frame or more.

    A mother's region in the last frames of `recent` whose intersection over union with her
    two daughters of the new frame (`regions`, at stage offset `stage`) together is at least
    `min_cover` was the sisters joined: from the last frame back (at most `_JOINED_DEPTH`
    frames), while that holds and her track was seen in a kept frame before, each such region
    is split between the daughters (`nearest_seed`; the seeds: the daughters' pixels under
    it, then the parts of the split frame after it). The parts start two tracks in the
    earliest split frame with her track as parent (on probation from the new frame, as any
    division), the daughters get those tracks (in `tracks`), and the split frames of `recent`
    are replaced. Returns the divisions left to the new frame.

    Notes
    -----
    O(divisions) to find the candidates from the `overlaps` of the last frame and the new one,
    O(pixels / 16) for their boxes (`grid_boxes`, when there are some); each then costs
    O(its window) per frame it looks at, plus a copy of each frame it splits.
    """
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    shared = np.zeros((len(mothers), 2), np.intp)
    if len(mothers):
        keys = pair_previous * len(area_current) + pair_current
        order = np.argsort(keys)
        wanted = mothers[:, None] * len(area_current) + daughters
        shared = intersection[order][np.searchsorted(keys[order], wanted)]
    union = area_previous[mothers] + area_current[daughters].sum(axis=1) - shared.sum(axis=1)
    joined = shared.sum(axis=1) >= min_cover * union
    done = np.zeros(len(mothers), bool)
    candidates = np.flatnonzero(joined)
    if not len(candidates):
        return mothers, daughters
    low, high = grid_boxes(regions, daughters[candidates].ravel(), len(area_current))
    for index in candidates.tolist():
        track, pair = int(recent[-1].tracks[mothers[index]]), daughters[index]
        if (high[pair] < 0).any():  # too thin to meet the grid
            continue
        window = window_around(low[pair].min(axis=0), high[pair].max(axis=0))
        sisters_here = crop(regions, window, (0, 0))
        both = np.select([sisters_here == pair[0], sisters_here == pair[1]], [1, 2], 0)
        seeds_here = both
        split: list[tuple[int, int, NDArray[np.int32], Offset]] = []  # position, label, parts
        for position in range(len(recent) - 1, max(len(recent) - 1 - _JOINED_DEPTH, 0), -1):
            kept = recent[position]
            label = np.flatnonzero(kept.tracks == track)
            if not len(label) or not any((earlier.tracks == track).any()
                                         for earlier in list(recent)[:position]):
                break
            offset = offset_between(stage, kept.stage)
            inside = crop(kept.regions, window, offset) == label[0]
            area = np.count_nonzero(inside)
            on = np.count_nonzero(both[inside])
            if area < kept.areas[label[0]] or on < min_cover * (area + area_current[pair].sum()
                                                                  - on):
                break  # (or it reaches out of the window: then it covers them less)
            seeds = np.where(inside, seeds_here, 0).astype(np.int32)
            if not ((seeds == 1).any() and (seeds == 2).any()):
                break
            seeds_here = nearest_seed(seeds, inside)
            split.append((position, int(label[0]), seeds_here, offset))
        if not split:
            continue
        first_position = split[-1][0]
        sisters = book.start(recent[first_position].t, np.array([track, track], np.int64))
        book.last_seen[track] = max(kept.t for kept in list(recent)[:first_position]
                                    if (kept.tracks == track).any())
        book.divided[track] = True
        # on probation from the new frame, the first with the sisters apart
        book.pending.append((recent[-1].t + 1, track, *sisters.tolist()))
        for position, label, part, offset in split:
            kept = recent[position]
            rows, columns = np.nonzero(part == 2)
            frame = kept.regions.copy()  # it may be the caller's frame
            frame[rows + window[0] - offset[0], columns + window[1] - offset[1]] = len(kept.areas)
            areas = np.append(kept.areas, len(rows))
            areas[label] -= len(rows)
            labels = np.append(kept.tracks, sisters[1])
            labels[label] = sisters[0]
            recent[position] = _Frame(kept.t, frame, areas, labels, kept.stage)
        tracks[pair] = sisters
        done[index] = True
    return mothers[~done], daughters[~done]


def _start_tracks(t: int, link: _Link, book: _Book, max_id: int) -> None:
    """Start tracks for the regions of frame `t` without one (daughters with their parent),
    mark every present track seen, and put the new divisions on probation."""
    tracks = link.tracks
    present = link.areas > 0  # instance labels may skip values
    present[0] = False
    new = np.flatnonzero((tracks <= 0) & present)
    tracks[new] = book.start(t, link.parent_of[new])
    book.last_seen[tracks[present]] = t
    if len(book.parent) - 1 > max_id:
        raise ValueError(f"{len(book.parent) - 1} tracks do not fit in the dtype of out; "
                         "use uint32")
    book.pending.extend(zip([t] * len(link.mother_tracks), link.mother_tracks.tolist(),
                            *tracks[link.daughters].T.tolist(), strict=True))


def _write(labels: OutputStack, frame: _Frame) -> None:
    labels[frame.t] = frame.tracks.astype(np.uint32)[frame.regions]


class _Book:
    """Per track id (index 0 unused): first and last frame seen, parent, whether it divided or
    was folded back into its mother, whether it touched the frame's edge when last seen (with
    `border_daughters`, a daughter gone from there left the field); and the divisions still on
    probation."""

    def __init__(self, border_daughters: bool = False) -> None:
        self.border_daughters = border_daughters
        self.at_edge = np.zeros(1, bool)
        self.first_seen = np.full(1, -1, np.int64)
        self.last_seen = np.full(1, -1, np.int64)
        self.parent = np.zeros(1, np.int64)
        self.divided = np.zeros(1, bool)
        self.folded = np.zeros(1, bool)
        self.pending: list[tuple[int, int, int, int]] = []  # frame, mother, two daughters

    def start(self, t: int, parents: NDArray[np.int64]) -> NDArray[np.int64]:
        """Ids of new tracks beginning in frame `t` with these parents (0: none)."""
        ids = np.arange(len(self.parent), len(self.parent) + len(parents))
        self.first_seen = np.concatenate([self.first_seen, np.full(len(ids), t, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(len(ids), t, np.int64)])
        self.parent = np.concatenate([self.parent, parents])
        self.divided = np.concatenate([self.divided, np.zeros(len(ids), bool)])
        self.folded = np.concatenate([self.folded, np.zeros(len(ids), bool)])
        self.at_edge = np.concatenate([self.at_edge, np.zeros(len(ids), bool)])
        return ids

    def review(self, t: int, min_frames: int, recent: deque[_Frame]) -> None:
        """Undo the divisions of which one daughter is gone in frame `t`, within `min_frames`
        of their start, while the other is still there (see `track_cells`)."""
        waiting, folded_into = [], {}
        for start, mother, first, second in self.pending:
            mother = folded_into.get(mother, mother)  # a daughter undone in this review
            alive = self.last_seen[[first, second]] == t
            if alive.all():
                if t - start + 1 < min_frames:
                    waiting.append((start, mother, first, second))
            elif alive.any() and not (self.border_daughters
                                      and self.at_edge[[first, second]][~alive].all()):
                kept, piece = (first, second) if alive[0] else (second, first)
                self._fold(kept, mother, recent)
                self.parent[piece] = 0
                if self.first_seen[piece] < start:  # split by `_split_joined` before `start`
                    for frame in recent:
                        if frame.t < start:
                            frame.tracks[frame.tracks == piece] = mother
                    self.first_seen[piece] = start
                folded_into[kept] = mother
        self.pending = [(start, folded_into.get(mother, mother), first, second)
                        for start, mother, first, second in waiting]

    def note_edge(self, link: _Link) -> None:
        """Mark which tracks of the frame of `link` (made with `border_daughters`) touch the
        frame's edge."""
        assert link.edge_pixels is not None
        present = link.areas > 0
        present[0] = False
        self.at_edge[link.tracks[present]] = (link.edge_pixels > 0)[present]

    def _fold(self, track: int, mother: int, recent: deque[_Frame]) -> None:
        """Give `track`'s cells back to `mother` (in the frames kept, not yet written)."""
        for kept in recent:
            kept.tracks[kept.tracks == track] = mother
        self.last_seen[mother] = self.last_seen[track]
        self.divided[mother] = False
        self.folded[track] = True
        self.parent[self.parent == track] = mother

    def lineage(self) -> Lineage:
        kept = ~self.folded
        kept[0] = False
        return Lineage(np.flatnonzero(kept).astype(np.int64), self.parent[kept],
                       self.first_seen[kept], self.last_seen[kept])


def _bridge_gap(earlier: _Frame, book: _Book, regions: NDArray[np.int32],
                areas: NDArray[np.intp], tracks: NDArray[np.int64], min_iou: float,
                offset: Offset) -> None:
    """Give unmatched regions the tracks last seen in `earlier` that they match (in place);
    `offset` is how far the content moved since `earlier`."""
    # Per label of `earlier` (never the background): its track was lost there, not divided.
    lost = (book.last_seen[earlier.tracks] == earlier.t) & ~book.divided[earlier.tracks]
    unmatched = tracks == 0
    unmatched[0] = False
    if not lost.any() or not unmatched.any():
        return
    inside = unmatched[regions]  # the pixels of the unmatched regions, usually few
    if offset == (0, 0):
        current, under = regions[inside], earlier.regions[inside]
    else:
        rows, columns = np.nonzero(inside)
        current = regions[rows, columns]
        rows, columns = rows - offset[0], columns - offset[1]
        within = ((rows >= 0) & (rows < regions.shape[0]) & (columns >= 0)
                  & (columns < regions.shape[1]))
        current = current[within]
        under = earlier.regions[rows[within], columns[within]]
    on_lost = lost[under]
    pairs, overlap = np.unique(under[on_lost].astype(np.int64) * len(tracks) + current[on_lost],
                               return_counts=True)
    earlier_labels, current_labels = np.divmod(pairs, len(tracks))
    iou = overlap / (earlier.areas[earlier_labels] + areas[current_labels] - overlap)
    matched_earlier, matched_current = best_pairs(earlier_labels, current_labels, iou, min_iou)
    tracks[matched_current] = earlier.tracks[matched_earlier]


def _split_lobed(recent: deque[_Frame], previous: NDArray[np.int32], regions: NDArray[np.int32],
                 n_regions: int, overlaps: tuple[NDArray[np.intp], ...], min_balance: float,
                 max_iou: float = np.inf
                 ) -> tuple[NDArray[np.int32], int, tuple[NDArray[np.intp], ...]]:
    """Split every region that lies mostly in one cell of the previous frame (`previous`,
    the last of `recent` at this frame's stage offset) and is two lobes joined by a neck
    (`split_touching` at its own equivalent diameter), the smaller lobe at least
    `min_balance` of the larger and their centres `_MIN_SISTER_DISTANCE` radii of that cell
    apart, when its intersection over union with the cell is under `max_iou` and the
    cell's track was compact (`_MIN_LOBED_ELONGATION`) in one of the frames kept in
    `recent`: sisters the segmentation joined after their mother. A track elongated all
    along (two cells joined for long, a spread cell) is left whole. Each pixel goes to the
    nearer lobe; the first keeps the label. Returns the regions, their count and their
    overlaps with `previous`.

    Notes
    -----
    O(pixels / 4) to look up the candidates' pixels, O(their pixels) for their second moments
    (`_elongation`); where some are elongated, the same for the kept frames and a distance
    transform of each one's box.
    """
    pair_previous, pair_current, intersection, area_previous, area_current = overlaps
    mostly_in = np.zeros(n_regions + 1, np.intp)  # the previous cell holding half of it
    most = intersection * 2 >= area_current[pair_current]
    iou = intersection / (area_previous[pair_previous] + area_current[pair_current]
                          - intersection)
    most &= iou < max_iou
    mostly_in[pair_current[most]] = pair_previous[most]
    candidates = np.flatnonzero((mostly_in > 0) & (area_current >= 16))
    candidates = candidates[_elongation(regions, n_regions + 1, candidates)
                            >= _MIN_LOBED_ELONGATION]
    if not len(candidates):
        return regions, n_regions, overlaps
    tracks = recent[-1].tracks[mostly_in[candidates]]
    compact = np.zeros(len(candidates), bool)
    for kept in reversed(recent):  # newest first: most sisters' mother is compact there
        label_of = np.zeros(int(max(tracks.max(), kept.tracks.max())) + 1, np.intp)
        label_of[kept.tracks] = np.arange(len(kept.tracks))
        labels = label_of[tracks[~compact]]
        elongation = _elongation(kept.regions, len(kept.tracks), labels)
        compact[~compact] = (labels > 0) & (elongation < _MIN_LOBED_ELONGATION)
        if compact.all():
            break
    candidates = candidates[compact]
    if not len(candidates):
        return regions, n_regions, overlaps
    low, high = grid_boxes(regions, candidates, n_regions + 1)
    parts_before, parts_now, parts_of = [], [], []
    split_regions = regions
    for label in candidates[high[candidates, 0] >= 0].tolist():
        only = np.zeros(n_regions + 1, bool)
        only[label] = True
        box = box_around(regions, only, *np.maximum(low[label], 0).tolist(),
                         *(high[label] + 1).tolist())
        inside = regions[box] == label
        lobes = split_touching(inside, diameter=2 * np.sqrt(area_current[label] / np.pi))
        sizes = np.bincount(lobes.ravel())[1:]
        if len(sizes) < 2:
            continue
        larger, smaller = np.argsort(sizes)[::-1][:2] + 1
        if sizes[smaller - 1] < min_balance * sizes[larger - 1]:
            continue
        centres = [np.argwhere(lobes == lobe).mean(axis=0) for lobe in (larger, smaller)]
        mother_radius = np.sqrt(area_previous[mostly_in[label]] / np.pi)
        if np.hypot(*(centres[0] - centres[1])) < _MIN_SISTER_DISTANCE * mother_radius:
            continue  # a bent or notched cell, not two
        seeds = np.select([lobes == larger, lobes == smaller], [1, 2], 0).astype(np.int32)
        part = nearest_seed(seeds, inside)
        if split_regions is regions:
            split_regions = regions.copy()
        n_regions += 1
        parts_now.append(np.where(part[inside] == 2, n_regions, label).astype(np.int32))
        split_regions[box][inside] = parts_now[-1]
        parts_before.append(previous[box][inside])
        parts_of.append(np.full(len(parts_now[-1]), label))
    if not parts_now:
        return regions, n_regions, overlaps
    return split_regions, n_regions, recounted(overlaps, n_regions, np.concatenate(parts_of),
                                               np.concatenate(parts_before),
                                               np.concatenate(parts_now))


def _elongation(regions: NDArray[np.int32], n_labels: int, labels: NDArray[np.intp]
                ) -> NDArray[np.float64]:
    """For each of `labels` (all below `n_labels`), the square root of the ratio of its larger
    to its smaller second moment (1: round; 0 for 0 or a label without pixels), from every
    2nd row and column: a lookup of those pixels, then O(the labels' pixels)."""
    wanted = np.unique(labels[labels > 0])
    index = np.zeros(n_labels, np.intp)
    index[wanted] = np.arange(1, len(wanted) + 1)
    sample = index[regions[::2, ::2]]
    rows, columns = (axis.astype(np.float64) for axis in np.nonzero(sample))
    ids = sample[sample > 0]
    count = np.maximum(np.bincount(ids, minlength=len(wanted) + 1), 1)

    def mean(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(ids, values, len(wanted) + 1) / count

    mean_y, mean_x = mean(rows), mean(columns)
    yy, xx = mean(rows * rows) - mean_y**2, mean(columns * columns) - mean_x**2
    xy = mean(rows * columns) - mean_y * mean_x
    spread = np.sqrt(((yy - xx) / 2) ** 2 + xy**2)
    major, minor = (yy + xx) / 2 + spread, (yy + xx) / 2 - spread
    return (np.sqrt(major / np.maximum(minor, 1e-6)) * (major > 0))[index[labels]]
