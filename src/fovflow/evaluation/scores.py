"""Scores of a labelled, tracked stack against ground truth: segmentation, detection, tracking,
traces.

Both stacks are (T, Y, X) label stacks with 0 as background and one id per cell across frames
(ids of truth and prediction are unrelated). Per frame, one histogram of (true, predicted) label
pairs gives every overlap; the scores follow from those counts:

- **Jaccard**: foreground pixels, |truth ∩ predicted| / |truth ∪ predicted| over all frames.
- **SEG** (Cell Tracking Challenge): per true object, the Jaccard index with the predicted object
  covering more than half of it (0 if none), averaged over true objects.
- **detection**: true and predicted objects matched one to one within each frame (IoU above
  `min_iou`, summed IoU maximal); recall = matched / true, precision = matched / predicted.
- **tracking**: a true track is *complete* when every frame of it is matched, always to the
  same predicted id; an *ID switch* is a matched frame whose predicted id differs from the one
  matched in the track's previous matched frame (as in CLEAR MOT).
- **trace error**: |measured - true| / true of a feature per matched cell-frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from fovflow.processing._stacks import Stack, iter_frames

__all__ = ["CellValues", "Matches", "Overlaps", "Scores", "frame_overlaps", "match_objects",
           "relative_errors", "score_labels"]


@dataclass(frozen=True)
class Overlaps:
    """Pixel counts of every (true, predicted) label pair of one frame.

    ``counts[i, j]`` is the number of pixels of true object ``truth_ids[i - 1]`` (row 0:
    background) that belong to predicted object ``predicted_ids[j - 1]`` (column 0: background).
    """

    truth_ids: NDArray[np.int64]
    predicted_ids: NDArray[np.int64]
    counts: NDArray[np.int64]

    @property
    def iou(self) -> NDArray[np.float64]:
        """(n_true, n_predicted) intersection over union of every pair of objects."""
        intersection = self.counts[1:, 1:]
        truth_area = self.counts[1:].sum(axis=1)
        predicted_area = self.counts[:, 1:].sum(axis=0)
        return intersection / (truth_area[:, None] + predicted_area[None, :] - intersection)


@dataclass(frozen=True)
class Matches:
    """Matched (frame, true id, predicted id) triples, in frame order."""

    frame: NDArray[np.int64]
    truth_id: NDArray[np.int64]
    predicted_id: NDArray[np.int64]


@dataclass(frozen=True)
class CellValues:
    """A feature per cell and frame, e.g. ``intensity_total`` from a traces table."""

    frame: NDArray[np.int64]
    cell: NDArray[np.int64]
    value: NDArray[np.float64]


@dataclass(frozen=True)
class Scores:
    """Counts behind every score; scores of several FOVs are added with ``+``."""

    intersection_px: int = 0
    union_px: int = 0
    seg_sum: float = 0.0
    n_true: int = 0
    n_predicted: int = 0
    n_matched: int = 0
    n_tracks: int = 0
    n_complete_tracks: int = 0
    id_switches: int = 0
    trace_errors: NDArray[np.float64] = field(default_factory=lambda: np.empty(0), repr=False)

    def __add__(self, other: Scores) -> Scores:
        return Scores(
            self.intersection_px + other.intersection_px, self.union_px + other.union_px,
            self.seg_sum + other.seg_sum, self.n_true + other.n_true,
            self.n_predicted + other.n_predicted, self.n_matched + other.n_matched,
            self.n_tracks + other.n_tracks, self.n_complete_tracks + other.n_complete_tracks,
            self.id_switches + other.id_switches,
            np.concatenate([self.trace_errors, other.trace_errors]),
        )

    @property
    def jaccard(self) -> float:
        return _ratio(self.intersection_px, self.union_px)

    @property
    def seg(self) -> float:
        return _ratio(self.seg_sum, self.n_true)

    @property
    def recall(self) -> float:
        return _ratio(self.n_matched, self.n_true)

    @property
    def precision(self) -> float:
        return _ratio(self.n_matched, self.n_predicted)

    @property
    def complete_tracks(self) -> float:
        """Fraction of true tracks followed completely by one predicted id."""
        return _ratio(self.n_complete_tracks, self.n_tracks)

    @property
    def trace_error_median(self) -> float:
        return float(np.median(self.trace_errors)) if self.trace_errors.size else float("nan")

    @property
    def trace_error_p95(self) -> float:
        if not self.trace_errors.size:
            return float("nan")
        return float(np.percentile(self.trace_errors, 95))

    def as_dict(self) -> dict[str, Any]:
        """Scores and counts as plain numbers (NaN where undefined, e.g. nothing to match)."""
        return {
            "jaccard": self.jaccard, "seg": self.seg, "recall": self.recall,
            "precision": self.precision, "complete_tracks": self.complete_tracks,
            "id_switches": self.id_switches, "trace_error_median": self.trace_error_median,
            "trace_error_p95": self.trace_error_p95, "n_true": self.n_true,
            "n_predicted": self.n_predicted, "n_matched": self.n_matched,
            "n_tracks": self.n_tracks, "n_complete_tracks": self.n_complete_tracks,
            "n_trace_values": int(self.trace_errors.size),
        }


def score_labels(
    truth: Stack,
    predicted: Stack,
    *,
    min_iou: float = 0.5,
) -> tuple[Scores, Matches]:
    """Segmentation, detection and tracking scores of `predicted` against `truth`.

    Parameters
    ----------
    truth, predicted : (T, Y, X) stacks of non-negative integer labels, 0 = background
        Read one frame at a time; ids need not be compact. Boolean masks count as one object
        per frame (enough for the Jaccard index of a segmentation).
    min_iou : float
        Two objects are matched only if their IoU is above this, in [0.5, 1) for the usual
        one-to-one meaning (at IoU > 0.5 no object can overlap two others that much).

    Returns
    -------
    scores : Scores
        Without trace errors; add them with ``dataclasses.replace(scores,
        trace_errors=relative_errors(matches, ...))``.
    matches : Matches
        The matched objects, e.g. to compare features.

    Raises
    ------
    ValueError
        If the stacks differ in length or frame shape, are not integer or boolean, or `min_iou` is
        outside [0, 1).

    Notes
    -----
    O(pixels) per frame for the overlaps, plus an assignment over the objects that have a
    candidate partner.
    """
    if not 0.0 <= min_iou < 1.0:
        raise ValueError(f"min_iou must be in [0, 1), got {min_iou}")
    pixels = np.zeros(2, np.int64)  # intersection, union
    seg_sum = 0.0
    present: list[NDArray[np.int64]] = []  # true ids per frame
    found: list[NDArray[np.int64]] = []  # predicted ids per frame
    matched: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]] = []
    for t, (truth_frame, predicted_frame) in iter_frames(("truth", truth, "biu"),
                                                         ("predicted", predicted, "biu")):
        overlaps = frame_overlaps(truth_frame, predicted_frame)
        pixels += overlaps.counts[1:, 1:].sum(), overlaps.counts.sum() - overlaps.counts[0, 0]
        seg_sum += _seg_sum(overlaps)
        truth_ids, predicted_ids = match_objects(overlaps, min_iou=min_iou)
        present.append(overlaps.truth_ids)
        found.append(overlaps.predicted_ids)
        matched.append((np.full(len(truth_ids), t, np.int64), truth_ids, predicted_ids))
    matches = Matches(*(np.concatenate(parts) for parts in zip(*matched, strict=True)))
    n_tracks, n_complete, switches = _tracking(np.concatenate(present), matches)
    scores = Scores(int(pixels[0]), int(pixels[1]), seg_sum, sum(map(len, present)),
                    sum(map(len, found)), len(matches.frame), n_tracks, n_complete, switches)
    return scores, matches


def frame_overlaps(truth: NDArray[np.integer[Any]],
                   predicted: NDArray[np.integer[Any]]) -> Overlaps:
    """The pixel count of every (true, predicted) label pair of one frame.

    Notes
    -----
    O(pixels + largest id): ids are made compact per frame, then one ``np.bincount`` over
    combined pair keys counts all pairs.
    """
    truth_ids, truth_index = _compact(truth)
    predicted_ids, predicted_index = _compact(predicted)
    n_columns = len(predicted_ids) + 1
    keys = truth_index * n_columns + predicted_index
    counts = np.bincount(keys.ravel(), minlength=(len(truth_ids) + 1) * n_columns)
    return Overlaps(truth_ids, predicted_ids, counts.reshape(-1, n_columns))


def match_objects(overlaps: Overlaps, *, min_iou: float = 0.5
                  ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """One-to-one matching of true and predicted objects maximising the summed IoU.

    Only pairs with IoU above `min_iou` can be matched (Hungarian algorithm on those).

    Returns
    -------
    truth_ids, predicted_ids : int arrays
        The matched pairs, by ascending true id.
    """
    iou = overlaps.iou
    rows = np.flatnonzero((iou > min_iou).any(axis=1))
    columns = np.flatnonzero((iou > min_iou).any(axis=0))
    gain = np.where(iou[np.ix_(rows, columns)] > min_iou, iou[np.ix_(rows, columns)], 0.0)
    chosen_rows, chosen_columns = linear_sum_assignment(gain, maximize=True)
    keep = gain[chosen_rows, chosen_columns] > 0
    return (overlaps.truth_ids[rows[chosen_rows[keep]]],
            overlaps.predicted_ids[columns[chosen_columns[keep]]])


def relative_errors(matches: Matches, truth: CellValues, measured: CellValues
                    ) -> NDArray[np.float64]:
    """|measured - true| / |true| of each matched cell-frame that has both values.

    Cell-frames without a value in either table, or with a true value of 0, are left out.
    """
    true_value = _lookup(truth, matches.frame, matches.truth_id)
    measured_value = _lookup(measured, matches.frame, matches.predicted_id)
    usable = np.isfinite(true_value) & np.isfinite(measured_value) & (true_value != 0)
    return np.abs(measured_value[usable] - true_value[usable]) / np.abs(true_value[usable])


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def _compact(labels: NDArray[np.integer[Any]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The ids present (ascending) and every pixel's position in them (1-based, 0 = background)."""
    flat = labels.ravel().view(np.uint8) if labels.dtype == np.bool_ else labels.ravel()
    present = np.bincount(flat)
    ids = np.flatnonzero(present[1:]) + 1
    index = np.zeros(len(present), np.int64)
    index[ids] = np.arange(1, len(ids) + 1)
    return ids.astype(np.int64), index[flat].reshape(labels.shape)


def _seg_sum(overlaps: Overlaps) -> float:
    """Sum over true objects of the IoU with the predicted object covering more than half."""
    intersection = overlaps.counts[1:, 1:]
    covers = intersection > 0.5 * overlaps.counts[1:].sum(axis=1, keepdims=True)
    return float(overlaps.iou[covers].sum())


def _tracking(present: NDArray[np.int64], matches: Matches) -> tuple[int, int, int]:
    """Number of true tracks, complete ones, and ID switches."""
    tracks, frames_present = np.unique(present, return_counts=True)
    order = np.lexsort((matches.frame, matches.truth_id))
    truth_id, predicted_id = matches.truth_id[order], matches.predicted_id[order]
    same_track = truth_id[1:] == truth_id[:-1]
    changed = same_track & (predicted_id[1:] != predicted_id[:-1])
    index = np.searchsorted(tracks, truth_id)
    frames_matched = np.bincount(index, minlength=len(tracks))
    switches = np.bincount(index[1:][changed], minlength=len(tracks))
    complete = (frames_matched == frames_present) & (switches == 0)
    return len(tracks), int(complete.sum()), int(changed.sum())


def _lookup(values: CellValues, frame: NDArray[np.int64], cell: NDArray[np.int64]
            ) -> NDArray[np.float64]:
    """``values.value`` at each (frame, cell), NaN where the table has no row."""
    base = int(max(values.cell.max(initial=0), cell.max(initial=0))) + 1
    keys = values.frame.astype(np.int64) * base + values.cell
    order = np.argsort(keys, kind="stable")
    wanted = frame * base + cell
    position = np.searchsorted(keys, wanted, sorter=order).clip(max=max(len(keys) - 1, 0))
    result = np.full(len(wanted), np.nan)
    if len(keys):
        found = keys[order[position]] == wanted
        result[found] = np.asarray(values.value, float)[order[position[found]]]
    return result
