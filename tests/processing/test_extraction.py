"""Specification of `fovflow.processing.extraction`."""

from __future__ import annotations

import numpy as np
import pytest
from processing_reference import LazyStack
from processing_reference import features as reference_features

from fovflow.processing.extraction import FEATURES, Cells, extract_features, register_feature

ALL = ("intensity_total", "intensity_mean", "area",
       "bbox_y_min", "bbox_x_min", "bbox_y_max", "bbox_x_max")


def _random_labels(seed: int, shape: tuple[int, int, int] = (5, 40, 50)) -> np.ndarray:
    """Random cells: blobs with sparse ids, some split in two parts, some frames empty."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16)
    for cell in rng.choice(np.arange(1, 3000), 15, replace=False):
        for t in range(rng.integers(0, shape[0]), shape[0]):
            y, x = rng.integers(0, shape[1]), rng.integers(0, shape[2])
            labels[t, y : y + rng.integers(1, 9), x : x + rng.integers(1, 9)] = cell
    labels[rng.integers(0, shape[0])] = 0
    return labels


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_extraction_equals_brute_force_per_cell_reference(seed: int, dtype: type) -> None:
    labels = _random_labels(seed)
    intensity = np.random.default_rng(seed).uniform(0, 1000, labels.shape).astype(dtype)
    table = extract_features(labels, intensity, features=ALL, min_length=0)
    expected = reference_features(labels, intensity)
    keys = list(zip(table["cell"].tolist(), table["frame"].tolist(), strict=True))
    assert keys == sorted(expected)
    for name in ("position_x", "position_y", *ALL):
        np.testing.assert_allclose(table[name], [expected[key][name] for key in keys],
                                   rtol=1e-9, err_msg=name)


def test_columns_come_in_the_documented_order() -> None:
    labels = _random_labels(7)
    table = extract_features(labels, labels, features=("area", "intensity_mean"), fov=3,
                             min_length=0)
    assert list(table) == ["fov", "cell", "frame", "time", "good", "position_x", "position_y",
                           "area", "intensity_mean"]
    assert len({len(column) for column in table.values()}) == 1
    assert (table["fov"] == 3).all()


def test_time_comes_from_times_or_the_frame_index() -> None:
    labels = np.zeros((3, 10, 10), np.uint8)
    labels[:, 2:4, 2:4] = 1
    assert extract_features(labels, labels, min_length=0)["time"].tolist() == [0, 1, 2]
    table = extract_features(labels, labels, times=[0.0, 600.0, 1200.0], min_length=0)
    assert table["time"].tolist() == [0.0, 600.0, 1200.0]
    with pytest.raises(ValueError, match="times"):
        extract_features(labels, labels, times=[0.0])


def test_cells_present_in_fewer_than_min_length_frames_are_not_good() -> None:
    labels = np.zeros((4, 10, 10), np.uint8)
    labels[:, 1:3, 1:3] = 1
    labels[:2, 6:8, 6:8] = 2
    table = extract_features(labels, labels, min_length=3)
    good = dict(zip(table["cell"].tolist(), table["good"].tolist(), strict=True))
    assert good == {1: True, 2: False}
    assert table["good"].tolist() == [True] * 4 + [False] * 2


def test_border_exclusion_marks_cells_that_come_near_the_edge() -> None:
    labels = np.zeros((3, 20, 20), np.uint8)
    labels[:, 8:12, 8:12] = 1
    labels[:, 8:12, 2:5] = 2  # 2 px from the left edge
    labels[1, 17:19, 10:12] = 3  # 1 px from the bottom edge, in one frame only
    table = extract_features(labels, labels, min_length=0, border=2)
    good = dict(zip(table["cell"].tolist(), table["good"].tolist(), strict=True))
    assert good == {1: True, 2: True, 3: False}
    table = extract_features(labels, labels, min_length=0, border=3)
    good = dict(zip(table["cell"].tolist(), table["good"].tolist(), strict=True))
    assert good == {1: True, 2: False, 3: False}


def test_empty_label_stack_gives_an_empty_table() -> None:
    table = extract_features(np.zeros((3, 16, 16), np.uint16), np.ones((3, 16, 16)))
    assert all(len(column) == 0 for column in table.values())
    assert "intensity_total" in table


def test_single_cell_filling_the_frame() -> None:
    labels = np.ones((2, 32, 32), np.uint32)
    table = extract_features(labels, np.full((2, 32, 32), 2.0), features=ALL, min_length=2)
    assert table["area"].tolist() == [1024, 1024]
    assert table["intensity_total"].tolist() == [2048.0, 2048.0]
    assert table["position_x"].tolist() == [15.5, 15.5]
    assert table["bbox_x_max"].tolist() == [31, 31] and table["good"].all()


def test_nan_intensity_makes_only_its_cell_nan() -> None:
    labels = np.zeros((1, 10, 10), np.uint8)
    labels[0, :5], labels[0, 5:] = 1, 2
    intensity = np.ones((1, 10, 10))
    intensity[0, 1, 1] = np.nan
    table = extract_features(labels, intensity, min_length=0)
    assert np.isnan(table["intensity_total"][0]) and table["intensity_total"][1] == 50.0
    assert table["area"].tolist() == [50, 50]


def test_a_registered_feature_becomes_a_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fovflow.processing.extraction.FEATURES", dict(FEATURES))

    @register_feature("intensity_squared_total")
    def intensity_squared_total(cells: Cells) -> np.ndarray:
        return cells.sum(cells.intensity.astype(np.float64) ** 2)

    labels = _random_labels(2)
    intensity = np.random.default_rng(2).random(labels.shape)
    table = extract_features(labels, intensity, features=("intensity_squared_total",),
                             min_length=0)
    row = 5
    t, cell = table["frame"][row], table["cell"][row]
    expected = (intensity[t][labels[t] == cell] ** 2).sum()
    assert table["intensity_squared_total"][row] == pytest.approx(expected)
    with pytest.raises(ValueError, match="already"):
        register_feature("area")(intensity_squared_total)


def test_invalid_input_is_rejected_with_a_clear_message() -> None:
    labels = np.zeros((2, 8, 8), np.int32)
    with pytest.raises(ValueError, match="unknown features"):
        extract_features(labels, labels, features=("volume",))
    with pytest.raises(ValueError, match="dtype"):
        extract_features(labels.astype(float), labels)
    labels[1, 0, 0] = -1
    with pytest.raises(ValueError, match="negative"):
        extract_features(labels, labels)


def test_frames_are_read_lazily_one_at_a_time() -> None:
    labels = LazyStack(_random_labels(3))
    intensity = LazyStack(np.ones((5, 40, 50)))
    extract_features(labels, intensity, min_length=0)
    assert labels.read == intensity.read == [0, 1, 2, 3, 4]
