"""Lighter run folders: the corrected fluorescence stored compactly (as pixels, ``corrected:
pixels``; its model is tests/io/test_background_model.py's), and runs that read their input
instead of copying it (``copy: read``), with the same traces and resume."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from fovflow.errors import ConfigError
from fovflow.io.ctc import run_labels
from fovflow.io.layout import (
    CORRECTED_MANTISSA_BITS,
    IMAGE_NAME,
    LABELS,
    LABELS_NAME,
    MASKS,
    PHASE,
    corrected_stack,
    fov_dir,
    image_stacks,
    open_stack,
    raw_stack,
    stack_scale,
    traces_name,
)
from fovflow.io.microscopy import open_dataset
from fovflow.io.ngff import Scale, create_image
from fovflow.processing import correct_background, extract_features
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow

PER_PIXEL = 2.0 ** -(CORRECTED_MANTISSA_BITS + 1)  # round to nearest: half a unit of the last bit


def _config(image: Path, output: Path, copy: str, corrected: str = "model") -> WorkflowConfig:
    return WorkflowConfig(input=image, output=output, executor="serial", fovs="0-1",
                          fl_channels=(1,), copy=copy, corrected=corrected,
                          extraction={"min_length": 3})


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _finished(config: WorkflowConfig) -> list[tuple[int, str]]:
    events: list = []
    assert run_workflow(config, on_event=events.append).ok
    return sorted((e.fov, e.step) for e in events if type(e).__name__ == "StepFinished")


@pytest.fixture(scope="module")
def runs(small_image: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lighter")
    image = root / small_image.name  # a copy of its own: one test moves it
    shutil.copy(small_image, image)
    folders = {copy: root / f"out_{copy}" for copy in ("copy", "read")}
    for copy, output in folders.items():
        assert run_workflow(_config(image, output, copy)).ok
    folders["pixels"] = root / "out_pixels"  # the input read, the corrected pixels stored
    assert run_workflow(_config(image, folders["pixels"], "read", "pixels")).ok
    return folders


def test_reading_the_input_gives_the_same_traces_labels_and_stacks_without_the_copy(
        runs: dict[str, Path], small_image: Path) -> None:
    copied, read = runs["copy"], runs["read"]
    for fov in (0, 1):
        pd.testing.assert_frame_equal(pd.read_csv(fov_dir(read, fov) / traces_name(1)),
                                      pd.read_csv(fov_dir(copied, fov) / traces_name(1)))
        np.testing.assert_array_equal(run_labels(read, fov), run_labels(copied, fov))
    assert image_stacks(read, 1) == image_stacks(copied, 1) == [PHASE, raw_stack(1),
                                                                corrected_stack(1)]
    assert stack_scale(read, 1) == stack_scale(copied, 1)
    with open_dataset(small_image) as dataset:
        for stack, channel in ((PHASE, 0), (raw_stack(1), 1)):
            frames = open_stack(read, 1, stack)
            assert frames is not None and frames.shape == open_stack(copied, 1, stack).shape
            np.testing.assert_array_equal(frames[5], dataset.frame(1, channel, 5))
    assert not (fov_dir(read, 0) / IMAGE_NAME / "0").exists()  # no pixels of the input
    copied_raw = _size(fov_dir(copied, 0) / IMAGE_NAME) - _size(fov_dir(copied, 0) / LABELS_NAME)
    assert _size(read) < _size(copied) - 1.8 * copied_raw  # both FOVs' copies saved


def test_a_run_that_reads_its_input_resumes_and_changes_mode_by_rerunning(
        runs: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out"
    shutil.copytree(runs["read"], output)
    image = Path(_config_input(output))
    outputs = [path for path in output.glob("fov_*/**/*") if path.is_file()]
    stamps = {path: path.stat().st_mtime_ns for path in outputs}
    assert _finished(_config(image, output, "read")) == []
    assert {path: path.stat().st_mtime_ns for path in outputs} == stamps  # nothing rewritten
    shutil.rmtree(fov_dir(output, 0) / LABELS_NAME)  # only the labels are lost
    assert _finished(_config(image, output, "read")) == [(0, "extraction"), (0, "tracking")]
    assert open_stack(output, 0, LABELS) is not None
    steps = {"copy", "segmentation", "background", "tracking", "extraction"}
    assert _finished(_config(image, output, "copy")) == sorted(
        (fov, step) for fov in (0, 1) for step in steps)  # a copy is another layout: all anew
    assert (fov_dir(output, 0) / IMAGE_NAME / "0").is_dir()


def _config_input(output: Path) -> str:
    import yaml

    return yaml.safe_load((output / "run_config.yaml").read_text())["input"]


def test_without_its_input_a_run_still_shows_its_own_outputs(runs: dict[str, Path]) -> None:
    read, pixels = runs["read"], runs["pixels"]
    image = Path(_config_input(read))
    moved = image.with_name("moved.ome.tif")
    os.replace(image, moved)
    try:
        assert image_stacks(pixels, 0) == [corrected_stack(1)]
        # Stored as its model, the corrected fluorescence needs the raw channel too.
        assert image_stacks(read, 0) == []
        assert open_stack(read, 0, corrected_stack(1)) is None
        assert open_stack(read, 0, PHASE) is None
        assert open_stack(read, 0, LABELS) is not None and open_stack(read, 0, MASKS) is not None
    finally:
        os.replace(moved, image)
    assert open_stack(read, 0, PHASE) is not None
    assert open_stack(read, 0, corrected_stack(1)) is not None


def test_an_input_moved_and_run_again_is_read_where_it_is_now(runs: dict[str, Path],
                                                               tmp_path: Path) -> None:
    output = tmp_path / "out"
    shutil.copytree(runs["read"], output)
    moved = tmp_path / "elsewhere.ome.tif"
    shutil.copy(_config_input(output), moved)
    os.replace(_config_input(output), tmp_path / "away.ome.tif")  # not at its old path
    try:
        assert open_stack(output, 0, PHASE) is None
        assert _finished(_config(moved, output, "read")) == []  # resumed: nothing redone
        frames = open_stack(output, 0, PHASE)  # found through the manifest's new path
        assert frames is not None and frames[2].shape == open_stack(output, 0, LABELS)[2].shape
        assert image_stacks(output, 0) == [PHASE, raw_stack(1), corrected_stack(1)]
    finally:
        os.replace(tmp_path / "away.ome.tif", _config_input(runs["read"]))


def test_the_corrected_pixels_are_rounded_within_their_bound_and_traces_follow(
        runs: dict[str, Path], small_image: Path) -> None:
    read = runs["pixels"]
    stored = open_stack(read, 0, corrected_stack(1))
    masks, labels = open_stack(read, 0, MASKS), open_stack(read, 0, LABELS)
    with open_dataset(small_image) as dataset:
        fluorescence = np.stack([dataset.frame(0, 1, t) for t in range(len(masks))])
    exact = correct_background(fluorescence, [masks[t] for t in range(len(masks))])
    rounded = np.stack([stored[t] for t in range(len(stored))])
    assert rounded.dtype == np.float32
    dropped = 23 - CORRECTED_MANTISSA_BITS
    assert not (rounded.view(np.uint32) & np.uint32((1 << dropped) - 1)).any()
    assert (np.abs(rounded - exact) <= PER_PIXEL * np.abs(exact)).all()
    # |sum(rounded - exact)| <= PER_PIXEL * sum(|exact|) over a cell's pixels, in every frame
    label_frames = [labels[t] for t in range(len(labels))]
    columns = ("intensity_mean", "intensity_total")
    tables = [extract_features(label_frames, values, min_length=3)
              for values in (exact, rounded, np.abs(exact))]
    for column in columns:
        error = np.abs(tables[1][column] - tables[0][column])
        assert (error <= PER_PIXEL * tables[2][column] * (1 + 1e-6) + 1e-6).all()
    traces = pd.read_csv(fov_dir(read, 0) / traces_name(1))
    np.testing.assert_allclose(traces["intensity_mean"], tables[1]["intensity_mean"],
                               rtol=1e-6)


def test_compact_frames_round_trip_and_take_fewer_bytes(tmp_path: Path) -> None:
    frame = np.random.default_rng(1).normal(300.0, 40.0, (2, 64, 96)).astype(np.float32)
    sizes = {}
    for bits in (None, CORRECTED_MANTISSA_BITS):
        path = tmp_path / f"bits_{bits}.ome.zarr"
        stack = create_image(path, stacks=["a"], channel_names=["a"], n_frames=2,
                             frame_shape=(64, 96), dtype=np.float32,
                             scale=Scale(None, None), mantissa_bits=bits)["a"]
        for t in range(2):
            stack[t] = frame[t]
        back = zarr.open_array(path / "0", mode="r")[:, 0]  # read by Zarr, no fovflow code
        assert back.dtype == np.float32
        tolerance = 0.0 if bits is None else PER_PIXEL
        assert (np.abs(back - frame) <= tolerance * np.abs(frame)).all()
        sizes[bits] = _size(path / "0")
    assert sizes[CORRECTED_MANTISSA_BITS] < 0.8 * sizes[None]


def test_an_unknown_copy_choice_is_refused(small_image: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="copy must be 'copy' or 'read'"):
        _config(small_image, tmp_path / "out", "link")
