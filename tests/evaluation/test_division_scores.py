"""Specification of `fovflow.evaluation.divisions` and of parents in the CTC export."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fovflow.evaluation.divisions import DivisionScores, score_divisions, visible_lineage
from fovflow.evaluation.scores import Matches
from fovflow.io.ctc import ctc_tracks, write_ctc_result
from fovflow.io.lineage import read_lineage, write_lineage
from fovflow.processing.lineage import Lineage

TRUTH = Lineage(np.array([1, 2, 3, 4]), np.array([0, 1, 1, 0]), np.array([0, 5, 5, 0]),
                np.array([4, 9, 9, 9]))


def _matches(pairs: list[tuple[int, int, int]]) -> Matches:
    frame, truth, predicted = (np.array(column, np.int64) for column in zip(*pairs, strict=True))
    return Matches(frame, truth, predicted)


def test_a_division_found_one_frame_late_counts_and_a_false_one_does_not() -> None:
    predicted = Lineage(np.array([7, 8, 9, 10, 11, 12]), np.array([0, 7, 7, 0, 10, 10]),
                        np.array([0, 6, 6, 0, 3, 3]), np.array([5, 9, 9, 2, 9, 9]))
    matches = _matches([(4, 1, 7), (6, 2, 8), (6, 3, 9), (0, 4, 10), (4, 4, 11)])
    scores = score_divisions(TRUTH, predicted, matches)
    assert scores == DivisionScores(n_true=1, n_predicted=2, n_found=1)
    assert scores.recall == 1.0 and scores.precision == 0.5
    assert score_divisions(TRUTH, predicted, matches, tolerance=0).n_found == 0


def test_daughters_matched_to_the_same_predicted_cell_are_no_division() -> None:
    predicted = Lineage(np.array([7, 8, 9]), np.array([0, 7, 7]), np.array([0, 5, 5]),
                        np.array([4, 9, 9]))
    matches = _matches([(4, 1, 7), (5, 2, 8), (5, 3, 8)])
    assert score_divisions(TRUTH, predicted, matches).n_found == 0



def test_a_division_whose_daughter_is_never_in_view_is_no_true_division() -> None:
    labels = np.zeros((10, 8, 8), np.uint16)
    labels[:5, :4, :4] = 1  # the mother
    labels[5:, :4, :2] = 2  # one daughter in view; her sister, 3, was born outside
    labels[2:, 6:, 6:] = 4  # a cell that came in at frame 2
    seen = visible_lineage(TRUTH, labels)
    np.testing.assert_array_equal(seen.track, [1, 2, 4])
    np.testing.assert_array_equal(seen.parent, [0, 1, 0])
    np.testing.assert_array_equal(seen.first_frame, [0, 5, 2])
    predicted = Lineage(np.array([7, 8]), np.array([0, 7]), np.array([0, 5]), np.array([4, 9]))
    matches = _matches([(4, 1, 7), (6, 2, 8)])
    assert score_divisions(TRUTH, predicted, matches).n_true == 1
    assert score_divisions(seen, predicted, matches) == DivisionScores(0, 0, 0)

def test_ctc_parents_link_daughters_to_their_mother_and_gaps_to_the_part_before() -> None:
    labels = np.zeros((6, 10, 10), np.uint32)
    labels[0:2, :3, :3] = 1
    labels[2:6, :3, :2] = 2
    labels[2:6, :3, 2:4] = 3
    labels[[0, 1, 3, 4], 6:, 6:] = 4  # missing in frame 2
    lineage = Lineage(np.array([1, 2, 3, 4]), np.array([0, 1, 1, 0]), np.array([0, 2, 2, 0]),
                      np.array([1, 5, 5, 4]))
    tracks = ctc_tracks(labels, lineage)
    assert tracks.lines() == "1 0 1 0\n2 2 5 1\n3 2 5 1\n4 0 1 0\n5 3 4 4\n"
    assert ctc_tracks(labels).lines() == "1 0 1 0\n2 2 5 0\n3 2 5 0\n4 0 1 0\n5 3 4 4\n"


def test_lineage_csv_round_trips(tmp_path: Path) -> None:
    write_lineage(tmp_path / "lineage.csv", TRUTH)
    text = (tmp_path / "lineage.csv").read_text()
    assert text.splitlines()[:2] == ["track,parent,first_frame,last_frame,division_frame",
                                     "1,0,0,4,5"]
    again = read_lineage(tmp_path / "lineage.csv")
    for name in ("track", "parent", "first_frame", "last_frame"):
        np.testing.assert_array_equal(getattr(again, name), getattr(TRUTH, name))
    write_ctc_result(np.zeros((2, 4, 4), np.uint8), tmp_path / "RES", lineage=again)
