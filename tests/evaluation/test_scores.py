"""Specification of `fovflow.evaluation.scores`."""

from __future__ import annotations

import numpy as np
import pytest

from fovflow.evaluation.scores import (
    CellValues,
    Overlaps,
    Scores,
    frame_overlaps,
    match_objects,
    relative_errors,
    score_labels,
)
from fovflow.io.synthetic import SimulationConfig, simulate_fov
from fovflow.processing.segmentation import segment_cells
from fovflow.processing.tracking import track_cells


def _boxes(n_frames: int, *boxes: tuple[int, int, int, int, int, range]) -> np.ndarray:
    """A (T, 40, 60) label stack of boxes ``(id, y0, y1, x0, x1, frames)``."""
    labels = np.zeros((n_frames, 40, 60), np.uint32)
    for label, y0, y1, x0, x1, frames in boxes:
        for t in frames:
            labels[t, y0:y1, x0:x1] = label
    return labels


def test_a_stack_scored_against_itself_is_perfect() -> None:
    truth = simulate_fov(SimulationConfig(n_frames=6, height=128, width=128, seed=3), 0).labels
    scores, matches = score_labels(truth, truth)
    assert scores.n_true == scores.n_matched == len(matches.frame) > 0
    assert (scores.jaccard, scores.seg, scores.recall, scores.precision) == (1, 1, 1, 1)
    assert scores.complete_tracks == 1 and scores.id_switches == 0
    np.testing.assert_array_equal(matches.truth_id, matches.predicted_id)


def test_ids_of_prediction_and_truth_need_not_agree() -> None:
    truth = _boxes(3, (1, 0, 10, 0, 10, range(3)), (2, 20, 30, 20, 30, range(3)))
    predicted = np.where(truth == 1, 70_000, np.where(truth == 2, 5, 0)).astype(np.uint32)
    scores, matches = score_labels(truth, predicted)
    assert scores.complete_tracks == 1 and scores.n_matched == 6
    assert dict(zip(matches.truth_id.tolist(), matches.predicted_id.tolist(),
                    strict=False)) == {1: 70_000, 2: 5}


def test_segmentation_and_detection_scores_of_a_known_case() -> None:
    truth = _boxes(1, (1, 0, 10, 0, 10, [0]), (2, 20, 30, 20, 30, [0]), (3, 0, 10, 40, 50, [0]))
    predicted = _boxes(1, (7, 0, 10, 0, 8, [0]),  # 80 of 100 px: IoU 0.8
                       (8, 20, 30, 20, 26, [0]),  # 60 px inside a 100 px cell: IoU 0.6
                       (9, 30, 40, 0, 10, [0]))  # nothing there
    scores, _ = score_labels(truth, predicted)
    assert scores.jaccard == pytest.approx(140 / (300 + 100))
    assert scores.seg == pytest.approx((0.8 + 0.6 + 0) / 3)  # cell 3 is missed
    assert scores.recall == pytest.approx(2 / 3) and scores.precision == pytest.approx(2 / 3)


def test_seg_counts_a_cell_covered_by_more_than_half_of_it_even_at_low_iou() -> None:
    truth = _boxes(1, (1, 0, 10, 0, 10, [0]))
    predicted = _boxes(1, (4, 0, 30, 0, 10, [0]))  # covers all of it, IoU 1/3
    scores, _ = score_labels(truth, predicted)
    assert scores.seg == pytest.approx(1 / 3)
    assert scores.n_matched == 0  # but no detection at IoU 0.5


def test_a_track_taken_over_by_another_id_is_incomplete_with_one_switch() -> None:
    truth = _boxes(5, (1, 0, 10, 0, 10, range(5)), (2, 20, 30, 20, 30, range(5)))
    predicted = _boxes(5, (1, 0, 10, 0, 10, range(3)), (3, 0, 10, 0, 10, range(3, 5)),
                       (2, 20, 30, 20, 30, range(5)))
    scores, _ = score_labels(truth, predicted)
    assert (scores.n_tracks, scores.n_complete_tracks, scores.id_switches) == (2, 1, 1)


def test_a_missed_frame_makes_a_track_incomplete_without_a_switch() -> None:
    truth = _boxes(4, (1, 0, 10, 0, 10, range(4)))
    predicted = _boxes(4, (1, 0, 10, 0, 10, [0, 1, 3]))
    scores, _ = score_labels(truth, predicted)
    assert (scores.n_complete_tracks, scores.id_switches, scores.recall) == (0, 0, 0.75)


def test_switching_back_and_forth_counts_every_switch() -> None:
    truth = _boxes(4, (1, 0, 10, 0, 10, range(4)))
    predicted = np.zeros_like(truth)
    for t, label in enumerate([1, 2, 1, 2]):
        predicted[t][truth[t] == 1] = label
    assert score_labels(truth, predicted)[0].id_switches == 3


def test_overlaps_equal_counting_every_pair_by_hand() -> None:
    rng = np.random.default_rng(0)
    truth = rng.choice([0, 3, 9, 1000], size=(30, 40))
    predicted = rng.choice([0, 1, 2, 77], size=(30, 40))
    overlaps = frame_overlaps(truth, predicted)
    assert overlaps.truth_ids.tolist() == [3, 9, 1000]
    assert overlaps.predicted_ids.tolist() == [1, 2, 77]
    for i, a in enumerate([0, 3, 9, 1000]):
        for j, b in enumerate([0, 1, 2, 77]):
            assert overlaps.counts[i, j] == ((truth == a) & (predicted == b)).sum()


def test_matching_maximises_the_summed_iou_not_greedily() -> None:
    # IoU: true 1 with predicted 1 6/14, with predicted 2 4/10; true 2 with predicted 1 4/10.
    counts = np.array([[0, 0, 0], [0, 6, 4], [0, 4, 0]])
    overlaps = Overlaps(np.array([1, 2]), np.array([1, 2]), counts)
    truth_ids, predicted_ids = match_objects(overlaps, min_iou=0.1)
    assert truth_ids.tolist() == [1, 2] and predicted_ids.tolist() == [2, 1]  # greedy: 1-1 only
    assert match_objects(overlaps, min_iou=0.41)[1].tolist() == [1]


def test_relative_errors_of_matched_cells_skip_missing_values() -> None:
    truth = _boxes(2, (1, 0, 10, 0, 10, range(2)), (2, 20, 30, 20, 30, range(2)))
    predicted = np.where(truth > 0, truth + 10, 0).astype(np.uint32)
    _, matches = score_labels(truth, predicted)
    true = CellValues(np.array([0, 1, 0, 1]), np.array([1, 1, 2, 2]),
                      np.array([100.0, 200.0, 50.0, 0.0]))
    measured = CellValues(np.array([0, 1, 1]), np.array([11, 11, 12]), np.array([110.0, 190.0,
                                                                                  7.0]))
    # cell 2 has no measured value in frame 0 and a true value of 0 in frame 1
    np.testing.assert_allclose(relative_errors(matches, true, measured), [0.1, 0.05])


def test_scores_of_several_fovs_add_up_as_one_data_set() -> None:
    one = Scores(intersection_px=8, union_px=10, seg_sum=1.5, n_true=2, n_predicted=2,
                 n_matched=2, n_tracks=1, n_complete_tracks=1, trace_errors=np.array([0.1]))
    two = Scores(intersection_px=2, union_px=10, seg_sum=0.0, n_true=2, n_predicted=4,
                 n_matched=0, n_tracks=2, id_switches=3, trace_errors=np.array([0.3, 0.5]))
    total = one + two
    assert total.jaccard == 0.5 and total.seg == 0.375 and total.recall == 0.5
    assert total.precision == pytest.approx(1 / 3) and total.complete_tracks == pytest.approx(1 / 3)
    assert total.id_switches == 3 and total.trace_error_median == 0.3
    assert Scores().as_dict()["jaccard"] != Scores().as_dict()["jaccard"]  # NaN: nothing to score


def test_boolean_masks_give_the_jaccard_index_of_a_segmentation() -> None:
    truth = _boxes(2, (1, 0, 10, 0, 10, range(2))) > 0
    predicted = _boxes(2, (1, 0, 10, 5, 15, range(2))) > 0
    assert score_labels(truth, predicted)[0].jaccard == pytest.approx(50 / 150)


def test_mismatched_stacks_are_refused() -> None:
    with pytest.raises(ValueError, match="same number of frames"):
        score_labels(np.zeros((2, 5, 5), int), np.zeros((3, 5, 5), int))
    with pytest.raises(ValueError, match="dtype"):
        score_labels(np.zeros((2, 5, 5), float), np.zeros((2, 5, 5), int))


def test_the_pipeline_scores_on_a_simulated_fov() -> None:
    sim = simulate_fov(SimulationConfig(n_frames=20, height=512, width=512, seed=0), 0)
    tracked = track_cells(segment_cells(sim.phase, method="phase")).labels
    scores, _ = score_labels(sim.labels, tracked)
    # Measured: Jaccard 0.924, SEG 0.815, recall 0.899, precision 0.995, 17 of 21 tracks
    # complete, no switches. The misses are slivers of cells at the frame border (below about
    # 400 px), which the 19x19 opening of the segmentation removes.
    assert scores.jaccard > 0.9 and scores.seg > 0.79
    assert scores.recall > 0.87 and scores.precision > 0.98
    assert scores.complete_tracks >= 0.75 and scores.id_switches == 0
