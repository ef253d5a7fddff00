"""Lineage of tracked cells: which track a cell came from when its mother divided.

A `Lineage` has one row per track: its id, its parent (0: none, the track began by itself) and
its first and last frame. A track whose cell divided ends in the frame before its daughters
begin; `find_divisions` decides, from the overlaps of two frames, which cells divided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fovflow.processing.drift import stage_path

__all__ = ["Lineage", "add_lineage_columns", "cut_disc_area", "find_divisions"]

# px: a region along the frame's edge less deep than this on average (its area over its
# length on the edge) is no cut daughter but the glow of a cell outside the frame (simulated
# nuclei: 2.2-3.8 px for those, 3.6-6.3 for cut daughters)
_MIN_CUT_DEPTH = 3.5


@dataclass(frozen=True)
class Lineage:
    """Per track (by ascending id): parent track (0: none), first and last frame."""

    track: NDArray[np.int64]
    parent: NDArray[np.int64]
    first_frame: NDArray[np.int64]
    last_frame: NDArray[np.int64]

    @classmethod
    def without_divisions(cls, track: NDArray[Any], first_frame: NDArray[Any],
                          last_frame: NDArray[Any]) -> Lineage:
        """Tracks that all began by themselves."""
        return cls(np.asarray(track, np.int64), np.zeros(len(track), np.int64),
                   np.asarray(first_frame, np.int64), np.asarray(last_frame, np.int64))

    @property
    def division_frame(self) -> NDArray[np.int64]:
        """Per track, the first frame of its daughters, or -1 if it did not divide."""
        first_of = dict(zip(self.parent.tolist(), self.first_frame.tolist(), strict=True))
        return np.array([first_of.get(track, -1) for track in self.track.tolist()], np.int64)

    def parents(self) -> dict[int, int]:
        """Parent of every track that has one."""
        has = self.parent > 0
        return dict(zip(self.track[has].tolist(), self.parent[has].tolist(), strict=True))

    def roots(self) -> dict[int, int]:
        """Per track, the track its lineage began with (itself when it has no parent)."""
        parent_of = self.parents()
        roots: dict[int, int] = {}
        for track in self.track.tolist():
            chain = [track]
            while chain[-1] in parent_of and chain[-1] not in roots:
                chain.append(parent_of[chain[-1]])
            root = roots.get(chain[-1], chain[-1])
            roots.update(dict.fromkeys(chain, root))
        return roots

    @property
    def n_divisions(self) -> int:
        return len(np.unique(self.parent[self.parent > 0]))


def find_divisions(
    pair_previous: NDArray[np.intp], pair_current: NDArray[np.intp],
    intersection: NDArray[np.intp], area_previous: NDArray[np.intp],
    area_current: NDArray[np.intp], matched_previous: NDArray[np.intp],
    matched_current: NDArray[np.intp], *, min_overlap: float, max_area_change: float,
    min_balance: float, edge_pixels: NDArray[np.intp] | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Regions of the previous frame that became two regions of the current one.

    A daughter is a current region that is unmatched or matched to its mother and has at
    least `min_overlap` of its area inside her. A previous region with two or more daughters
    divided into the two that overlap her most when their areas sum to her area within
    `max_area_change` (relative) and the smaller has at least `min_balance` of the larger's
    area. A daughter of two mothers belongs to neither, and a mother matched to a region other
    than her two daughters goes on in it and did not divide. With `edge_pixels`, the balance
    compares a daughter that the frame's edge cuts by the area of the round cell her cut shows
    (`cut_disc_area`), unless she is a strip under `_MIN_CUT_DEPTH` px deep: a daughter mostly
    outside the frame is not taken for a speck.

    Parameters
    ----------
    pair_previous, pair_current, intersection : overlapping label pairs and their pixels
    area_previous, area_current : pixels per label of each frame (index 0: background)
    matched_previous, matched_current : the one-to-one matching of the frames
    edge_pixels : pixels per label of the current frame on the frame's edge (first and last
        row and column), optional

    Returns
    -------
    mothers : (k,) labels of the previous frame
    daughters : (k, 2) labels of the current frame

    Notes
    -----
    O(pairs log pairs), all vectorised.
    """
    match_of = np.zeros(len(area_current), np.intp)
    match_of[matched_current] = matched_previous
    free = (match_of[pair_current] == 0) | (match_of[pair_current] == pair_previous)
    candidate = free & (intersection >= min_overlap * area_current[pair_current])
    mother, daughter, shared = (pair_previous[candidate], pair_current[candidate],
                                intersection[candidate])
    claimed = np.bincount(daughter, minlength=len(area_current))
    alone = claimed[daughter] == 1
    mother, daughter, shared = mother[alone], daughter[alone], shared[alone]
    order = np.lexsort((-shared, mother))  # per mother, the largest overlaps first
    mother, daughter = mother[order], daughter[order]
    first = np.ones(len(mother), bool)
    first[1:] = mother[1:] != mother[:-1]
    second = np.zeros(len(mother), bool)
    second[1:] = first[:-1] & ~first[1:]
    two = np.flatnonzero(second)  # index of each mother's second daughter
    mothers = mother[two]
    pairs = np.column_stack([daughter[two - 1], daughter[two]])
    areas = area_current[pairs]
    total = areas.sum(axis=1)
    whole = areas
    if edge_pixels is not None:
        chords = np.where(areas >= _MIN_CUT_DEPTH * edge_pixels[pairs], edge_pixels[pairs], 0)
        whole = cut_disc_area(areas, chords)
    # A mother matched to a third region goes on in it, so she did not divide.
    successor = np.zeros(len(area_previous), np.intp)
    successor[matched_previous] = matched_current
    goes_on = successor[mothers]
    keep = ((np.abs(total - area_previous[mothers]) <= max_area_change * area_previous[mothers])
            & (whole.min(axis=1) >= min_balance * whole.max(axis=1))
            & ((goes_on == 0) | (goes_on == pairs[:, 0]) | (goes_on == pairs[:, 1])))
    return mothers[keep], pairs[keep]


def cut_disc_area(area: NDArray[Any], chord: NDArray[Any]) -> NDArray[np.float64]:
    """The area of the disc of which a straight cut of length `chord` leaves a part of `area`
    (pixels); `area` itself where `chord` is 0.

    The part is a segment of the disc, of half angle theta in (0, pi) (below pi / 2, less
    than half of the disc is left): area = r^2 (theta - sin theta cos theta), chord = 2 r sin
    theta, so area / chord^2 grows with theta from 0 to infinity and fixes it (bisection, 40
    steps). A part in a corner, cut by two edges, is taken as cut by one of their summed
    length.

    Notes
    -----
    O(len(area)), vectorised.
    """
    area, chord = np.asarray(area, np.float64), np.asarray(chord, np.float64)
    cut = chord > 0
    ratio = area[cut] / chord[cut] ** 2
    low, high = np.zeros(len(ratio)), np.full(len(ratio), np.pi)
    for _ in range(40):
        theta = (low + high) / 2
        below = (theta - np.sin(theta) * np.cos(theta)) / (4 * np.sin(theta) ** 2) < ratio
        low, high = np.where(below, theta, low), np.where(below, high, theta)
    whole = area.copy()
    whole[cut] = np.pi * (chord[cut] / (2 * np.sin((low + high) / 2))) ** 2
    return np.maximum(whole, area)


def add_lineage_columns(columns: dict[str, NDArray[Any]], lineage: Lineage | None,
                        n_frames: int) -> dict[str, NDArray[Any]]:
    """A traces table (`extract_features` columns) with, after ``position_y``, each cell's
    ``parent`` (0: none, and for every cell when `lineage` is None) and its drift-corrected
    position ``position_x_corrected``, ``position_y_corrected`` (`stage_path`)."""
    parent_of = np.zeros(int(columns["cell"].max(initial=0)) + 1, np.int64)
    if lineage is not None:
        known = lineage.track < len(parent_of)
        parent_of[lineage.track[known]] = lineage.parent[known]
    offset = stage_path(columns["frame"], columns["cell"], columns["position_x"],
                        columns["position_y"], n_frames)[columns["frame"]]
    result: dict[str, NDArray[Any]] = {}
    for name, values in columns.items():
        result[name] = values
        if name == "position_y":
            result["parent"] = parent_of[columns["cell"]]
            result["position_x_corrected"] = columns["position_x"] - offset[:, 0]
            result["position_y_corrected"] = values - offset[:, 1]
    return result
