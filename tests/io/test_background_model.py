"""The corrected fluorescence stored as its background model (``corrected: model``, the
default): knots in a small NGFF image, corrected when read, exactly; ``corrected: pixels``
stores the pixels as before. Traces, readers, resume and the switch between the two."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr_models.v05.image import Image

from cli_assertions import assert_one_line_error, fovflow
from fovflow.errors import ConfigError
from fovflow.execution import CancelToken
from fovflow.io.background_model import CorrectedFrames
from fovflow.io.layout import (
    BACKGROUND_NAME,
    CORRECTED_MANTISSA_BITS,
    CORRECTED_NAME,
    LABELS,
    MASKS,
    PHASE,
    corrected_stack,
    fov_dir,
    image_stacks,
    open_stack,
    raw_stack,
    traces_name,
)
from fovflow.io.microscopy import open_dataset
from fovflow.processing.background import background_knots, correct_background
from fovflow.processing.extraction import extract_features
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.events import StepFinished
from fovflow.workflow.run import run_workflow

TILE = 32  # 7 x 9 knots on the 96 x 128 frames (the default's 256 would give one)
INTENSITIES = ["intensity_mean", "intensity_total"]


def _config(image: Path, output: Path, **choices: str) -> WorkflowConfig:
    return WorkflowConfig(input=image, output=output, executor="serial", fovs="0-1",
                          fl_channels=(1, 2), background={"tile_size": TILE},
                          extraction={"min_length": 3}, **choices)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _finished(config: WorkflowConfig, **options) -> list[tuple[int, str]]:
    events: list = []
    run_workflow(config, on_event=events.append, **options)
    return sorted((e.fov, e.step) for e in events if isinstance(e, StepFinished))


@pytest.fixture(scope="module")
def runs(small_image: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("model")
    folders = {"model": root / "model", "pixels": root / "pixels"}
    assert WorkflowConfig(input=small_image, output=root).corrected == "model"  # the default
    assert run_workflow(_config(small_image, folders["model"])).ok
    assert run_workflow(_config(small_image, folders["pixels"], corrected="pixels")).ok
    return folders


def _exact(run_dir: Path, image: Path, fov: int, channel: int) -> np.ndarray:
    """`correct_background` of the input's frames under the run's masks, in memory."""
    masks = open_stack(run_dir, fov, MASKS)
    with open_dataset(image) as dataset:
        raw = np.stack([dataset.frame(fov, channel, t) for t in range(len(masks))])
    return correct_background(raw, np.asarray(masks), tile_size=TILE)


def test_the_model_run_stores_knots_not_pixels_and_reads_the_exact_correction(
        runs: dict[str, Path], small_image: Path) -> None:
    model, pixels = runs["model"], runs["pixels"]
    for fov in (0, 1):
        assert (fov_dir(model, fov) / BACKGROUND_NAME).is_dir()
        assert not (fov_dir(model, fov) / CORRECTED_NAME).exists()
        assert (fov_dir(pixels, fov) / CORRECTED_NAME).is_dir()
        assert not (fov_dir(pixels, fov) / BACKGROUND_NAME).exists()
        for channel in (1, 2):
            corrected = open_stack(model, fov, corrected_stack(channel))
            assert isinstance(corrected, CorrectedFrames)
            assert corrected.shape == (8, 96, 128) and corrected.dtype == np.float32
            np.testing.assert_array_equal(np.asarray(corrected),
                                          _exact(model, small_image, fov, channel))
    assert image_stacks(model, 0) == image_stacks(pixels, 0) == [
        PHASE, raw_stack(1), raw_stack(2), corrected_stack(1), corrected_stack(2)]
    stored = _size(fov_dir(pixels, 0) / CORRECTED_NAME)
    assert _size(fov_dir(model, 0) / BACKGROUND_NAME) < stored / 20
    assert _size(model) < _size(pixels) - 1.8 * stored * 0.9


def test_traces_of_the_model_are_exact_and_a_pixels_run_within_its_rounding(
        runs: dict[str, Path], small_image: Path) -> None:
    per_pixel = 2.0 ** -(CORRECTED_MANTISSA_BITS + 1)
    for fov in (0, 1):
        labels = np.asarray(open_stack(runs["model"], fov, LABELS))
        for channel in (1, 2):
            model, pixels = (pd.read_csv(fov_dir(runs[kind], fov) / traces_name(channel))
                             for kind in ("model", "pixels"))
            pd.testing.assert_frame_equal(model.drop(columns=INTENSITIES),
                                          pixels.drop(columns=INTENSITIES))
            exact = _exact(runs["model"], small_image, fov, channel)
            expected = extract_features(list(labels), exact, min_length=3)
            for column in INTENSITIES:
                np.testing.assert_allclose(model[column], expected[column], rtol=1e-12)
            # Each pixel within 2^-11 of its value: each cell within 2^-11 of its magnitudes.
            magnitude = extract_features(list(labels), np.abs(exact), min_length=3)
            for column in INTENSITIES:
                error = np.abs(pixels[column] - model[column])
                assert (error <= per_pixel * magnitude[column] * (1 + 1e-6) + 1e-6).all()
                assert error.max() > 0  # the pixels are rounded, the model is not


def test_the_stored_pixels_are_a_valid_ngff_image(runs: dict[str, Path]) -> None:
    path = fov_dir(runs["pixels"], 0) / CORRECTED_NAME
    Image.from_zarr(zarr.open_group(path, mode="r"))
    (node,) = Reader(parse_url(str(path)))()
    assert node.data[0].shape == (8, 2, 96, 128) and node.data[0].dtype == np.float32


def test_the_knots_are_a_valid_ngff_image_laid_over_the_frames(
        runs: dict[str, Path], small_image: Path, small_config) -> None:
    path = fov_dir(runs["model"], 1) / BACKGROUND_NAME
    Image.from_zarr(zarr.open_group(path, mode="r"))
    (node,) = Reader(parse_url(str(path)))()
    knots = np.asarray(node.data[0])
    assert knots.shape == (8, 2, 7, 9) and knots.dtype == np.float64
    scale, translation = node.metadata["coordinateTransformations"][0]
    pixel = small_config.pixel_size_um
    assert scale["scale"][2:] == pytest.approx([TILE / 2 * pixel] * 2)
    # Knot j of the interior lies at the centre of tile j (pixels j*16 - 16 .. j*16 + 15).
    centre = [(j * TILE / 2 - 0.5) * pixel for j in (1, 2, 3)]
    placed = [translation["translation"][2] + j * scale["scale"][2] for j in (1, 2, 3)]
    assert placed == pytest.approx(centre)
    assert node.metadata["channel_names"] == [f"{name} background" for name in
                                              small_config.channel_names[1:]]
    masks = open_stack(runs["model"], 1, MASKS)
    with open_dataset(small_image) as dataset:
        np.testing.assert_array_equal(
            knots[5, 1], background_knots(dataset.frame(1, 2, 5), masks[5], tile_size=TILE))


def test_changing_the_choice_redoes_background_and_extraction_and_keeps_one_form(
        runs: dict[str, Path], small_image: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    shutil.copytree(runs["model"], output)
    assert _finished(_config(small_image, output)) == []  # current: nothing redone
    redone = [(fov, step) for fov in (0, 1) for step in ("background", "extraction")]
    assert _finished(_config(small_image, output, corrected="pixels")) == redone
    assert not (fov_dir(output, 0) / BACKGROUND_NAME).exists()
    for fov in (0, 1):
        pd.testing.assert_frame_equal(
            pd.read_csv(fov_dir(output, fov) / traces_name(2)),
            pd.read_csv(fov_dir(runs["pixels"], fov) / traces_name(2)))
    assert _finished(_config(small_image, output)) == redone
    assert not (fov_dir(output, 0) / CORRECTED_NAME).exists()
    np.testing.assert_array_equal(np.asarray(open_stack(output, 1, corrected_stack(1))),
                                  np.asarray(open_stack(runs["model"], 1, corrected_stack(1))))


def test_a_model_run_interrupted_after_its_background_resumes_exactly(
        runs: dict[str, Path], small_image: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    token = CancelToken()

    def cancel_after_the_model(event: object) -> None:
        if isinstance(event, StepFinished) and (event.fov, event.step) == (1, "background"):
            token.cancel()

    interrupted = run_workflow(_config(small_image, output), on_event=cancel_after_the_model,
                               cancel=token)
    assert interrupted.cancelled
    assert (fov_dir(output, 1) / BACKGROUND_NAME).is_dir()
    assert not (fov_dir(output, 1) / traces_name(1)).exists()
    assert _finished(_config(small_image, output)) == [(1, "extraction"), (1, "tracking")]
    for fov in (0, 1):
        for channel in (1, 2):
            pd.testing.assert_frame_equal(
                pd.read_csv(fov_dir(output, fov) / traces_name(channel)),
                pd.read_csv(fov_dir(runs["model"], fov) / traces_name(channel)))


def test_an_unknown_corrected_choice_is_refused(small_image: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corrected must be 'model' or 'pixels'"):
        _config(small_image, tmp_path / "out", corrected="float16")
    result = fovflow("run", small_image, "-o", tmp_path / "out", "--corrected", "float16")
    assert_one_line_error(result, "corrected must be 'model' or 'pixels'", "'float16'")
    assert not (tmp_path / "out").exists()
