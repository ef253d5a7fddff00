"""Specification of `fovflow.processing.tracking`."""

from __future__ import annotations

import numpy as np
import pytest
from processing_reference import LazyStack
from processing_reference import track as reference_track

from fovflow.io.synthetic import SimulatedFov
from fovflow.processing.overlaps import match_regions
from fovflow.processing.tracking import track_cells


def _majority_pairs(tracks: np.ndarray, truth: np.ndarray) -> tuple[dict, dict]:
    """Per (frame, track) its main true cell, and per (frame, true cell) its main track."""
    cell_of_track, track_of_cell = {}, {}
    for t in range(len(truth)):
        both = (tracks[t] > 0) & (truth[t] > 0)
        pairs, counts = np.unique(np.stack([tracks[t][both], truth[t][both]]), axis=1,
                                  return_counts=True)
        for track, cell in pairs.T[np.argsort(counts, kind="stable")].tolist():
            cell_of_track[t, track] = cell  # ascending overlap: the largest one wins
            track_of_cell[t, cell] = track
    return cell_of_track, track_of_cell


def _tracks_per_cell(tracks: np.ndarray, truth: np.ndarray) -> list[int]:
    _, track_of_cell = _majority_pairs(tracks, truth)
    found: dict[int, set[int]] = {}
    for (_, cell), track in track_of_cell.items():
        found.setdefault(cell, set()).add(track)
    return [len(ids) for ids in found.values()]


def _score(tracks: np.ndarray, simulated: SimulatedFov, min_area: int = 0) -> float:
    """Fraction of true cell-frames (of at least `min_area` px) in a single-cell track."""
    cell_of_track, track_of_cell = _majority_pairs(tracks, simulated.labels)
    cells_per_track: dict[int, set[int]] = {}
    for (_, track), cell in cell_of_track.items():
        cells_per_track.setdefault(track, set()).add(cell)
    rows = [row for row in simulated.traces if row["area"] >= min_area]
    good = [
        (row["frame"], row["cell"]) in track_of_cell
        and len(cells_per_track[track_of_cell[row["frame"], row["cell"]]]) == 1
        for row in rows
    ]
    return float(np.mean(good))


def test_tracking_follows_simulated_cells_without_switches(simulated: SimulatedFov) -> None:
    tracks = track_cells(simulated.labels > 0).labels
    assert tracks.dtype == np.uint32
    assert _score(tracks, simulated) >= 0.99
    # No fragmentation either: one track per true cell, one true cell per track.
    counts = _tracks_per_cell(tracks, simulated.labels)
    assert counts == [1] * len(counts)
    assert int(tracks.max()) == len(counts)


def test_tracking_keeps_cells_that_appear_late(simulated: SimulatedFov) -> None:
    late = {row["cell"]: row["appear_frame"] for row in simulated.cells if row["appear_frame"]}
    assert late, "the simulation should contain late cells"
    tracks = track_cells(simulated.labels > 0).labels
    _, track_of_cell = _majority_pairs(tracks, simulated.labels)
    first_frames = {row["cell"]: row["frame"] for row in reversed(simulated.traces)}
    for cell in late:
        track = track_of_cell[first_frames[cell], cell]
        frames = [row["frame"] for row in simulated.traces if row["cell"] == cell]
        assert all(track_of_cell[t, cell] == track for t in frames)
        assert not (tracks[: first_frames[cell]] == track).any()


def test_segmented_cells_of_500_px_or_more_are_tracked_without_switches(
    simulated: SimulatedFov, simulated_masks: np.ndarray
) -> None:
    # Border slivers below ~360 px are removed by the 19x19 opening of the segmentation.
    assert _score(track_cells(simulated_masks).labels, simulated, min_area=500) >= 0.99


@pytest.mark.parametrize("max_gap", [0, 1, 2])
@pytest.mark.parametrize("seed", range(5))
def test_tracking_equals_brute_force_reference(seed: int, max_gap: int) -> None:
    rng = np.random.default_rng(seed)
    masks = np.zeros((8, 60, 70), bool)
    for _ in range(12):
        y, x, h, w = rng.integers(0, 50), rng.integers(0, 60), *rng.integers(3, 14, 2)
        dy, dx = rng.integers(-2, 3, 2)
        start, stop = sorted(rng.integers(0, 9, 2))
        for t in range(start, stop):
            if rng.random() < 0.25:
                continue  # missed by the segmentation in this frame
            yy, xx = y + dy * t, x + dx * t
            masks[t, max(yy, 0) : max(yy + h, 0), max(xx, 0) : max(xx + w, 0)] = True
    np.testing.assert_array_equal(track_cells(masks, max_gap=max_gap, divisions=False,
                                              drift=False).labels,
                                  reference_track(masks, max_gap=max_gap))


def test_cells_missed_in_single_frames_keep_their_tracks(simulated: SimulatedFov) -> None:
    truth = simulated.labels.copy()
    rng = np.random.default_rng(4)
    dropped = 0
    for cell in np.unique(truth)[1:]:
        frames = np.flatnonzero((truth == cell).any(axis=(1, 2)))
        for t in frames[1:-1:6][rng.random(len(frames[1:-1:6])) < 0.5]:  # isolated misses
            truth[t][truth[t] == cell] = 0
            dropped += 1
    assert dropped >= 20
    bridged = _tracks_per_cell(track_cells(truth > 0).labels, truth)
    assert bridged == [1] * len(bridged)
    # Without bridging, nearly every miss splits a track.
    split = _tracks_per_cell(track_cells(truth > 0, max_gap=0).labels, truth)
    assert sum(split) - len(split) >= 0.9 * dropped


def test_ids_are_stable_and_new_regions_get_new_ids() -> None:
    masks = np.zeros((4, 40, 40), bool)
    for t in range(4):
        masks[t, 5:15, 2 + 2 * t : 12 + 2 * t] = True  # moves right
    masks[2:, 25:35, 25:35] = True  # appears in frame 2
    masks[:2, 30:38, 2:8] = True  # disappears after frame 1
    tracks = track_cells(masks).labels
    assert tracks[0, 10, 5] == tracks[3, 10, 12] == 1
    assert tracks[0, 32, 4] == tracks[1, 32, 4] == 2
    assert tracks[2, 30, 30] == tracks[3, 30, 30] == 3
    assert set(np.unique(tracks)) == {0, 1, 2, 3}


def test_a_gap_longer_than_max_gap_starts_a_new_track() -> None:
    masks = np.zeros((5, 30, 30), bool)
    masks[[0, 2, 4], 5:15, 5:15] = True  # missing from frames 1 and 3
    masks[0, 20:25, 20:25] = True  # ends after frame 0
    masks[3, 21:26, 21:26] = True  # a cell where it was, 3 frames later
    tracks = track_cells(masks).labels
    assert not tracks[1].any()
    assert tracks[:, 10, 10].tolist() == [1, 0, 1, 0, 1]
    assert tracks[0, 22, 22] == 2 and tracks[3, 22, 22] == 3
    assert track_cells(masks, max_gap=2).labels[3, 22, 22] == 2
    assert track_cells(masks, max_gap=0).labels[:, 10, 10].tolist() == [1, 0, 3, 0, 5]


def test_below_min_iou_a_moved_cell_starts_a_new_track() -> None:
    masks = np.zeros((2, 30, 60), bool)
    masks[0, 5:15, 5:15] = True
    masks[1, 5:15, 14:24] = True  # IoU 10 / 190
    # (With drift correction on, the only cell moving is the whole content moving: matched.)
    assert track_cells(masks, drift=False).labels[1, 10, 20] == 2
    assert track_cells(masks, drift=False, min_iou=0.05).labels[1, 10, 20] == 1
    assert track_cells(masks).labels[1, 10, 20] == 1


def test_of_two_merging_cells_one_track_continues_without_splitting() -> None:
    masks = np.zeros((2, 30, 60), bool)
    masks[0, 5:15, 5:15] = masks[0, 5:15, 17:30] = True
    masks[1, 5:15, 5:30] = True
    tracks = track_cells(masks, split_merged=False).labels
    assert np.unique(tracks[1]).tolist() == [0, 2]  # the larger overlap (IoU 130/250) wins


def test_a_region_covering_two_tracked_cells_is_split_between_them() -> None:
    masks = np.zeros((3, 30, 60), bool)
    masks[0, 5:15, 5:15] = masks[0, 5:15, 17:30] = True
    masks[1:, 5:15, 5:31] = True  # the two touch and move 1 px right
    masks[1:, 20:25, 40:45] = True  # a new cell beside them
    tracks = track_cells(masks, split_merged=True).labels
    assert tracks[1, 10, 7] == tracks[2, 10, 7] == 1
    assert tracks[1, 10, 25] == tracks[2, 10, 25] == 2
    assert tracks[1, 22, 42] == tracks[2, 22, 42] == 3
    # Each pixel goes to the nearer seed: the boundary stays where the gap was.
    assert (tracks[1, 5:15, 5:16] == 1).all() and (tracks[1, 5:15, 17:31] == 2).all()


def test_a_cell_growing_over_a_small_neighbour_is_not_split() -> None:
    masks = np.zeros((2, 40, 40), bool)
    masks[0, 5:30, 5:30] = True
    masks[0, 10:12, 32:34] = True  # a 4-px speck beside it, half of it inside the next region
    masks[1, 5:30, 5:33] = True
    tracks = track_cells(masks, split_merged=True).labels
    assert np.unique(tracks[1]).tolist() == [0, 1]


def test_size_filters_drop_small_and_large_regions() -> None:
    masks = np.zeros((2, 60, 60), bool)
    masks[:, 1:3, 1:3] = True  # 4 px
    masks[:, 10:20, 10:20] = True  # 100 px
    masks[:, 25:55, 25:55] = True  # 900 px
    tracks = track_cells(masks, min_size=5, max_size=500).labels
    assert np.unique(tracks).tolist() == [0, 1]
    assert tracks[:, 15, 15].tolist() == [1, 1]


def test_thousands_of_cells_per_frame_are_tracked() -> None:
    masks = np.zeros((3, 512, 512), bool)
    for t in range(3):  # 64 x 64 = 4096 squares of 4x4 px, moving 1 px per frame
        view = masks[t, t : t + 504].reshape(63, 8, 512)[:, 2:6, :]
        view.reshape(63, 4, 64, 8)[:, :, :, 2:6] = True
    tracks = track_cells(masks).labels
    assert tracks.max() == 63 * 64
    np.testing.assert_array_equal(tracks[2, 2 + 2 : 2 + 6], tracks[0, 2:6])


def test_match_regions_maximises_total_overlap() -> None:
    previous = np.zeros((10, 30), np.int32)
    current = np.zeros((10, 30), np.int32)
    previous[:, 0:10], previous[:, 10:20] = 1, 2
    current[:, 4:14], current[:, 14:30] = 1, 2
    matched_previous, matched_current = match_regions(previous, current)
    assert matched_previous.tolist() == [1, 2] and matched_current.tolist() == [1, 2]


def test_track_labels_are_written_to_out_from_a_lazy_stack() -> None:
    masks = np.zeros((3, 20, 20), np.uint8)
    masks[:, 5:10, 5:10] = 1
    lazy = LazyStack(masks)
    out = np.zeros((3, 20, 20), np.uint16)
    assert track_cells(lazy, out=out).labels is out
    assert lazy.read == [0, 1, 2] and out[:, 7, 7].tolist() == [1, 1, 1]


def test_invalid_parameters_are_rejected() -> None:
    masks = np.zeros((1, 8, 8), bool)
    for kwargs in ({"min_iou": 0}, {"connectivity": 6}, {"min_size": 5, "max_size": 4},
                   {"max_gap": -1}, {"min_joined_cover": 0}, {"min_joined_cover": 1.5}):
        with pytest.raises(ValueError):
            track_cells(masks, **kwargs)
