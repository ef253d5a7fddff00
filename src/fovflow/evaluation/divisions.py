"""Division scores of a tracked lineage against the true one.

A division is a track with two or more daughter tracks (each listing it as parent); it happens
in the first frame of its daughters. A predicted division finds a true one when it happens
within `tolerance` frames of it, its mother was matched to the true mother and its daughters
to the true daughters, one each (matches from `fovflow.evaluation.scores.score_labels`, in any
frame). Each true division is found at most once: recall = found / true divisions, precision =
found / predicted divisions, as the division part of the Cell Tracking Challenge's BC(i).

The simulator's lineage knows divisions nobody can see: a daughter born outside the field, a
mother that left it. `visible_lineage` keeps the tracks a label stack shows, as the challenge's
ground truth does, so only divisions with the mother and two daughters in view count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fovflow.evaluation.scores import Matches
from fovflow.processing._stacks import Stack, iter_frames
from fovflow.processing.lineage import Lineage

__all__ = ["DivisionScores", "score_divisions", "visible_lineage"]


@dataclass(frozen=True)
class DivisionScores:
    """Counts behind the division scores; scores of several FOVs are added with ``+``."""

    n_true: int = 0
    n_predicted: int = 0
    n_found: int = 0

    def __add__(self, other: DivisionScores) -> DivisionScores:
        return DivisionScores(self.n_true + other.n_true, self.n_predicted + other.n_predicted,
                              self.n_found + other.n_found)

    @property
    def recall(self) -> float:
        return self.n_found / self.n_true if self.n_true else float("nan")

    @property
    def precision(self) -> float:
        return self.n_found / self.n_predicted if self.n_predicted else float("nan")


def score_divisions(truth: Lineage, predicted: Lineage, matches: Matches, *,
                    tolerance: int = 1) -> DivisionScores:
    """Division recall and precision of `predicted` against `truth` (see the module notes).

    Notes
    -----
    O(matches) to collect the matched pairs, then O(divisions x candidates).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must not be negative, got {tolerance}")
    pairs = set(zip(matches.truth_id.tolist(), matches.predicted_id.tolist(), strict=True))
    true_divisions, found_divisions = list(_divisions(truth)), list(_divisions(predicted))
    taken: set[int] = set()
    found = 0
    for mother, daughters, frame in true_divisions:
        for index, (p_mother, p_daughters, p_frame) in enumerate(found_divisions):
            if (index not in taken and abs(p_frame - frame) <= tolerance
                    and (mother, p_mother) in pairs
                    and _one_each(daughters, p_daughters, pairs)):
                taken.add(index)
                found += 1
                break
    return DivisionScores(len(true_divisions), len(found_divisions), found)


def visible_lineage(lineage: Lineage, labels: Stack) -> Lineage:
    """The tracks of `lineage` that have pixels in `labels`, with their first and last frame
    there; a parent that never shows is no parent (0).

    Notes
    -----
    One pass over the frames, O(pixels).
    """
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t, (frame,) in iter_frames(("labels", labels, "iu")):
        for track in (np.flatnonzero(np.bincount(frame.ravel())[1:]) + 1).tolist():
            first.setdefault(track, t)
            last[track] = t
    seen = np.isin(lineage.track, list(first))
    tracks, parents = lineage.track[seen], lineage.parent[seen]
    parents = np.where(np.isin(parents, tracks), parents, 0)
    return Lineage(tracks, parents, np.array([first[t] for t in tracks.tolist()], np.int64),
                   np.array([last[t] for t in tracks.tolist()], np.int64))


def _divisions(lineage: Lineage) -> Iterator[tuple[int, list[int], int]]:
    """(mother, daughters, frame) of every track with two or more daughters in the lineage."""
    known = set(lineage.track.tolist())
    for mother in np.unique(lineage.parent[lineage.parent > 0]).tolist():
        children = lineage.parent == mother
        if mother in known and children.sum() >= 2:
            yield mother, lineage.track[children].tolist(), int(lineage.first_frame[children].min())


def _one_each(daughters: list[int], predicted: list[int], pairs: set[tuple[int, int]]) -> bool:
    """Whether two of the true daughters are matched to two different predicted ones."""
    matched = [{p for p in predicted if (d, p) in pairs} for d in daughters]
    return any(a != b for i, first in enumerate(matched) for second in matched[i + 1:]
               for a in first for b in second)
