"""The run folder's OME-Zarr images, valid NGFF 0.5 (ome-zarr-models) and read back by
ome-zarr-py; old run folders still read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr_models.v05.image import Image
from ome_zarr_models.v05.image_label import ImageLabel

from fovflow.io.ctc import run_fovs, run_labels
from fovflow.io.frames import create_frames
from fovflow.io.layout import (
    BACKGROUND_NAME,
    IMAGE_NAME,
    LABELS,
    LABELS_NAME,
    PHASE,
    corrected_stack,
    fov_dir,
    image_stacks,
    open_stack,
    parquet_name,
    raw_stack,
    stack_scale,
    traces_name,
)
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow


@pytest.fixture(scope="module")
def run_dir(small_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("ngff") / "out"
    report = run_workflow(WorkflowConfig(input=small_image, output=output, executor="serial",
                                         fovs="0-1", fl_channels=(1, 2),
                                         extraction={"min_length": 3}))
    assert report.ok
    return output


def _nodes(path: Path) -> list:
    return list(Reader(parse_url(str(path)))())


def test_images_and_labels_read_back_by_ome_zarr_with_axes_scale_and_channel_names(
        run_dir: Path, small_image: Path, small_config) -> None:
    image, _, labels = _nodes(fov_dir(run_dir, 1) / IMAGE_NAME)
    axes = [axis["name"] for axis in image.metadata["axes"]]
    assert axes == ["t", "c", "y", "x"]
    assert image.metadata["axes"][0]["unit"] == "second"
    assert image.metadata["channel_names"] == list(small_config.channel_names)
    (scale,) = image.metadata["coordinateTransformations"][0]
    interval = small_config.frame_interval_s
    assert scale["scale"][0] == pytest.approx(interval)
    assert image.data[0].shape == (8, 3, 96, 128)
    with tifffile.TiffFile(small_image) as tif:
        movie = tif.series[1].asarray()  # T, C, Y, X of FOV 1
    np.testing.assert_array_equal(np.asarray(image.data[0]), movie)
    assert [axis["name"] for axis in labels.metadata["axes"]] == ["t", "y", "x"]
    assert labels.data[0].shape == (8, 96, 128)
    np.testing.assert_array_equal(np.asarray(labels.data[0]), np.asarray(run_labels(run_dir, 1)))
    (background,) = _nodes(fov_dir(run_dir, 1) / BACKGROUND_NAME)  # the corrected's model
    assert background.data[0].shape == (8, 2, 1, 1) and background.data[0].dtype == np.float64


def test_a_channel_both_segmented_and_measured_is_stored_once(small_image: Path,
                                                             tmp_path: Path) -> None:
    output = tmp_path / "out"
    report = run_workflow(WorkflowConfig(
        input=small_image, output=output, executor="serial", fovs="0", segment_channel=1,
        fl_channels=(1, 2), segmentation={"method": "fluorescence", "diameter": 20},
        extraction={"min_length": 3}))
    assert report.ok
    (image, _, _) = _nodes(fov_dir(output, 0) / IMAGE_NAME)
    assert image.data[0].shape == (8, 2, 96, 128)  # channels 1 and 2, not 1 twice
    with tifffile.TiffFile(small_image) as tif:
        movie = tif.series[0].asarray()
    np.testing.assert_array_equal(np.asarray(image.data[0]), movie[:, 1:])
    assert sorted(image_stacks(output, 0)) == sorted([PHASE, raw_stack(1), raw_stack(2),
                                                       corrected_stack(1), corrected_stack(2)])
    segmented = open_stack(output, 0, PHASE)
    np.testing.assert_array_equal(np.stack(list(segmented)), movie[:, 1])
    Image.from_zarr(zarr.open_group(fov_dir(output, 0) / IMAGE_NAME, mode="r"))


def test_every_image_and_label_image_is_valid_ngff(run_dir: Path) -> None:
    for fov in (0, 1):
        folder = fov_dir(run_dir, fov)
        image = Image.from_zarr(zarr.open_group(folder / IMAGE_NAME, mode="r"))
        assert image.labels is not None
        label = ImageLabel.from_zarr(zarr.open_group(folder / LABELS_NAME, mode="r"))
        assert label.ome_attributes.image_label.source.image == "../../"
        Image.from_zarr(zarr.open_group(folder / BACKGROUND_NAME, mode="r"))


def test_each_stack_opens_by_its_name_at_the_recorded_scale(run_dir: Path, small_config) -> None:
    assert image_stacks(run_dir, 0) == [PHASE, raw_stack(1), raw_stack(2), corrected_stack(1),
                                        corrected_stack(2)]
    corrected = open_stack(run_dir, 0, corrected_stack(2))
    assert corrected is not None and corrected.shape == (8, 96, 128)
    assert corrected[3].dtype == np.float32 and np.isfinite(corrected[3]).all()
    t, y, x = stack_scale(run_dir, 0)
    assert t == pytest.approx(small_config.frame_interval_s) and y == x > 0


def test_traces_are_also_parquet_with_the_same_columns(run_dir: Path) -> None:
    folder = fov_dir(run_dir, 0)
    csv = pd.read_csv(folder / traces_name(2))
    parquet = pd.read_parquet(folder / parquet_name(traces_name(2)))
    assert list(parquet.columns) == list(csv.columns)
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False)


def test_labels_rewritten_by_tracking_leave_the_copied_image_current(
        run_dir: Path, small_image: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    shutil.copytree(run_dir, output)
    shutil.rmtree(fov_dir(output, 0) / LABELS_NAME)  # only the labels are lost
    events: list = []
    run_workflow(WorkflowConfig(input=small_image, output=output, executor="serial",
                                fovs="0-1", fl_channels=(1, 2), extraction={"min_length": 3}),
                 on_event=events.append)
    redone = sorted({(e.fov, e.step) for e in events if type(e).__name__ == "StepFinished"})
    assert redone == [(0, "extraction"), (0, "tracking")]
    assert open_stack(output, 0, LABELS) is not None


def test_a_run_folder_from_before_ome_zarr_is_still_read(tmp_path: Path) -> None:
    folder = fov_dir(tmp_path, 0)
    labels = np.zeros((2, 16, 16), np.uint16)
    labels[:, 4:8, 4:8] = 3
    create_frames(folder / "labels.zarr", 2, (16, 16), np.uint16)[1] = labels[1]
    create_frames(folder / "pc.zarr", 2, (16, 16), np.uint16)
    create_frames(folder / "fl_ch_1.zarr", 2, (16, 16), np.uint16)
    assert run_fovs(tmp_path) == [0]
    assert image_stacks(tmp_path, 0) == [PHASE, raw_stack(1)]
    np.testing.assert_array_equal(run_labels(tmp_path, 0)[1], labels[1])
    assert stack_scale(tmp_path, 0) == (1.0, 1.0, 1.0)


def test_a_rewritten_traces_table_rewrites_its_parquet_twin(run_dir: Path, tmp_path: Path) -> None:
    from fovflow.io.store import rewrite_traces

    path = tmp_path / traces_name(1)
    shutil.copy(fov_dir(run_dir, 0) / traces_name(1), path)
    shutil.copy(fov_dir(run_dir, 0) / parquet_name(traces_name(1)), tmp_path)
    table = pd.read_csv(path)
    table["good"] = ~table["good"]  # e.g. quality marks set in the GUI
    rewrite_traces(path, table)
    pd.testing.assert_frame_equal(pd.read_csv(path), table)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / parquet_name(traces_name(1))), table)
    assert sorted(p.name for p in tmp_path.iterdir()) == [traces_name(1),
                                                          parquet_name(traces_name(1))]
