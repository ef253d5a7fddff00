"""Specification of `fovflow.processing.background`."""

from __future__ import annotations

import numpy as np
import pytest
from processing_reference import LazyStack
from processing_reference import background as reference_background

from fovflow.io.synthetic import SimulatedFov
from fovflow.processing.background import (
    background_from_knots,
    background_knots,
    correct_background,
    estimate_background,
    model_background,
    subtract_background,
)
from fovflow.processing.extraction import extract_features


def _plane(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (200.0 + 0.05 * yy - 0.03 * xx).astype(np.float32)


def test_background_correction_recovers_true_cell_totals(
    simulated: SimulatedFov, simulated_masks: np.ndarray
) -> None:
    corrected = correct_background(simulated.fluorescence[0], simulated_masks)
    table = extract_features(simulated.labels, corrected, min_length=0)
    measured = dict(zip(zip(table["cell"], table["frame"], strict=True),
                        table["intensity_total"], strict=True))
    truth = np.array([row["intensity_total_ch_1"] for row in simulated.traces])
    area = np.array([row["area"] for row in simulated.traces])
    estimate = np.array([measured[row["cell"], row["frame"]] for row in simulated.traces])
    per_pixel = np.abs(estimate - truth) / area
    # The background is about 140 counts per pixel; measured: median 2.9, 95th percentile 6.6.
    assert np.median(per_pixel) < 4.0
    assert np.percentile(per_pixel, 95) < 8.0
    # Relative error of cells at least 50 counts per pixel above background (most of them):
    # measured median 0.6 %, 95th percentile 3.0 %.
    bright = truth / area >= 50
    relative = np.abs(estimate - truth)[bright] / truth[bright]
    assert bright.mean() > 0.5
    assert np.median(relative) < 0.01
    assert np.percentile(relative, 95) < 0.05


@pytest.mark.parametrize("seed", range(3))
def test_surface_equals_reference_of_explicit_tiles_and_splines(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = [(300, 200), (520, 700), (129, 257)][seed]
    image = rng.poisson(_plane(shape) + 40 * rng.random()).astype(np.uint16)
    foreground = rng.random(shape) > 0.9995
    expected = reference_background(image, foreground)
    np.testing.assert_allclose(estimate_background(image, foreground), expected, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
def test_integer_histogram_and_float_selection_medians_agree(dtype: type) -> None:
    rng = np.random.default_rng(4)
    image = rng.poisson(100, (400, 333))
    foreground = np.zeros(image.shape, bool)
    foreground[50:150, 60:300] = True
    expected = estimate_background(image.astype(np.float64), foreground)
    np.testing.assert_allclose(estimate_background(image.astype(dtype), foreground), expected,
                               rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("shape", [(129, 300), (300, 129), (512, 512), (1000, 700)])
def test_planar_background_is_removed_to_float32_precision(shape: tuple[int, int]) -> None:
    image = _plane(shape)  # 200 +- 50 counts
    corrected = correct_background(image[None], np.zeros((1, *shape), bool))
    assert corrected.dtype == np.float32
    np.testing.assert_allclose(corrected[0], 0.0, atol=1e-2)


@pytest.mark.parametrize("shape", [(32, 32), (32, 57), (100, 128)])
def test_images_of_half_a_tile_or_less_get_a_constant_background(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(6)
    image = rng.integers(90, 110, shape).astype(np.uint16)
    foreground = np.zeros(shape, bool)
    foreground[:4, :4] = True  # dilated by 21: masks out the corner
    usable = np.ones(shape, bool)
    usable[:14, :14] = False
    corrected = correct_background(image[None], foreground[None])
    np.testing.assert_allclose(corrected[0], image - np.median(image[usable]))


def test_weight_scales_the_subtracted_surface() -> None:
    image = _plane((300, 400))[None] + 10
    nothing = np.zeros(image.shape, bool)
    np.testing.assert_allclose(correct_background(image, nothing, weight=0.0), image)
    np.testing.assert_allclose(correct_background(image, nothing, weight=0.5), image / 2,
                               atol=1e-2)
    with pytest.raises(ValueError, match="weight"):
        correct_background(image, nothing, weight=1.5)


def test_frame_without_background_pixels_falls_back_to_its_median() -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 1000, (1, 48, 48)).astype(np.uint16)
    corrected = correct_background(image, np.ones(image.shape, bool))
    np.testing.assert_allclose(corrected[0], image[0] - np.median(image[0]))


def test_tiles_without_background_take_the_nearest_tile() -> None:
    image = np.full((1, 700, 600), 120, np.uint16)
    image[0, 350:, 300:] = 900  # all foreground: must not leak into the surface
    foreground = np.zeros(image.shape, bool)
    foreground[0, 330:, 280:] = True
    corrected = correct_background(image, foreground)
    np.testing.assert_array_equal(corrected[0, :300, :], 0.0)
    np.testing.assert_array_equal(corrected[0, 350:, 300:], 780.0)


def test_all_background_and_all_cell_frames_in_one_stack() -> None:
    image = np.stack([_plane((300, 400))] * 3)
    foreground = np.zeros(image.shape, bool)
    foreground[1] = True
    corrected = correct_background(image, foreground)
    assert np.isfinite(corrected).all()
    np.testing.assert_allclose(corrected[[0, 2]], 0.0, atol=1e-3)


def test_nan_in_fluorescence_is_a_clear_error() -> None:
    image = np.ones((2, 40, 40))
    image[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        correct_background(image, np.zeros(image.shape, bool))


def test_stacks_of_different_length_or_shape_are_rejected() -> None:
    with pytest.raises(ValueError, match="same number of frames"):
        correct_background(np.ones((2, 40, 40)), np.zeros((3, 40, 40), bool))
    with pytest.raises(ValueError, match="shape"):
        correct_background(np.ones((2, 40, 40)), np.zeros((2, 40, 41), bool))


def test_frames_are_read_lazily_one_at_a_time(simulated: SimulatedFov,
                                              simulated_masks: np.ndarray) -> None:
    fluorescence = LazyStack(simulated.fluorescence[0, :3])
    masks = LazyStack(simulated_masks[:3])
    corrected = correct_background(fluorescence, masks)
    assert fluorescence.read == masks.read == [0, 1, 2]
    np.testing.assert_array_equal(
        corrected[2], correct_background(simulated.fluorescence[0, 2:3], simulated_masks[2:3])[0])


@pytest.mark.parametrize(("shape", "tile_size", "grid"), [((300, 200), 256, (4, 3)),
                                                         ((520, 700), 256, (6, 7)),
                                                         ((100, 128), 256, (1, 1)),
                                                         ((96, 128), 32, (7, 9))])
def test_the_knots_are_the_whole_model_of_the_correction(
        shape: tuple[int, int], tile_size: int, grid: tuple[int, int]) -> None:
    rng = np.random.default_rng(8)
    image = rng.poisson(_plane(shape), (3, *shape)).astype(np.uint16)
    foreground = rng.random((3, *shape)) > 0.999
    knots = model_background(image, foreground, weight=0.7, tile_size=tile_size)
    assert knots.shape == (3, *grid) and knots.dtype == np.float64
    corrected = correct_background(image, foreground, weight=0.7, tile_size=tile_size)
    for t in range(3):
        np.testing.assert_array_equal(
            knots[t], background_knots(image[t], foreground[t], tile_size=tile_size))
        np.testing.assert_array_equal(  # bit for bit: a reader computes what the step did
            subtract_background(image[t], knots[t], weight=0.7, tile_size=tile_size),
            corrected[t])
        np.testing.assert_array_equal(
            background_from_knots(knots[t], shape, tile_size=tile_size),
            estimate_background(image[t], foreground[t], tile_size=tile_size))


def test_knots_of_another_frame_size_or_tile_are_refused() -> None:
    knots = np.zeros((4, 3))
    background_from_knots(knots, (300, 200))
    with pytest.raises(ValueError, match="not the tiles of a"):
        background_from_knots(knots, (300, 300))
    with pytest.raises(ValueError, match="not the tiles of a"):
        subtract_background(np.zeros((300, 200)), knots, tile_size=128)
    with pytest.raises(ValueError, match="weight"):
        model_background(np.zeros((1, 30, 30)), np.zeros((1, 30, 30), bool), weight=-0.1)
