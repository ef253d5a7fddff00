"""Frame stacks write exactly Zarr's chunk files, and trace tables exactly pandas' CSV text."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from fovflow.io.frames import Frames, create_frames, open_frames
from fovflow.io.store import write_columns_csv

SHAPE = (3, 48, 64)


def _frames(dtype: str, rng: np.random.Generator) -> np.ndarray:
    if dtype == "bool":
        return rng.random(SHAPE) > 0.7
    if dtype == "float32":
        return (rng.normal(0.0, 30.0, SHAPE)).astype(np.float32)
    return rng.integers(0, 4000, SHAPE).astype(dtype)


def _not_through_zarr(*args: object) -> None:
    raise AssertionError("went through Zarr")


def _write_and_read_without_zarr(ours, data: np.ndarray, monkeypatch) -> None:
    """Write `data` frame by frame into `ours` and read it back, with Zarr's chunk I/O
    forbidden: fovflow's own layout never goes through it."""
    with monkeypatch.context() as patch:
        patch.setattr(zarr.Array, "__setitem__", _not_through_zarr)
        patch.setattr(zarr.Array, "__getitem__", _not_through_zarr)
        for t, frame in enumerate(data):
            ours[t] = frame
        np.testing.assert_array_equal(np.stack([ours[t] for t in range(SHAPE[0])]), data)

@pytest.mark.parametrize("dtype", ["uint8", "uint16", "bool", "float32", "uint32"])
def test_chunk_files_are_byte_identical_to_zarrs_and_read_back_by_both(
        tmp_path, dtype, monkeypatch) -> None:
    data = _frames(dtype, np.random.default_rng(3))
    ours = create_frames(tmp_path / "ours.zarr", SHAPE[0], SHAPE[1:], dtype)
    zarrs = create_frames(tmp_path / "zarrs.zarr", SHAPE[0], SHAPE[1:], dtype)
    for t, frame in enumerate(data):
        zarrs.array[t] = frame  # Zarr's own encoding and file writing
    _write_and_read_without_zarr(ours, data, monkeypatch)
    for t in range(SHAPE[0]):
        chunk = f"c/{t}/0/0"
        assert (tmp_path / "ours.zarr" / chunk).read_bytes() == \
            (tmp_path / "zarrs.zarr" / chunk).read_bytes()
    reopened = open_frames(tmp_path / "zarrs.zarr")
    np.testing.assert_array_equal(np.stack([reopened[t] for t in range(SHAPE[0])]), data)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "ours.zarr")[:], data)


def test_camera_counts_take_zstd_and_earlier_runs_lz4_arrays_stay_fovflows_own(
        tmp_path, monkeypatch) -> None:
    counts = create_frames(tmp_path / "counts.zarr", SHAPE[0], SHAPE[1:], np.uint16)
    labels = create_frames(tmp_path / "labels.zarr", SHAPE[0], SHAPE[1:], np.uint32)
    assert [stack.array.metadata.codecs[1].cname.value for stack in (counts, labels)] == \
        ["zstd", "lz4"]
    # A raw copy written before counts took zstd: LZ4 with bit shuffle.
    lz4 = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
    earlier = zarr.create_array(store=tmp_path / "earlier.zarr", shape=SHAPE,
                                chunks=(1, *SHAPE[1:]), dtype=np.uint16, compressors=[lz4])
    data = _frames("uint16", np.random.default_rng(4))
    earlier[:] = data
    np.testing.assert_array_equal(np.stack([open_frames(tmp_path / "earlier.zarr")[t]
                                            for t in range(SHAPE[0])]), data)
    _write_and_read_without_zarr(Frames(zarr.open_array(tmp_path / "earlier.zarr", mode="a")),
                                 data[::-1].copy(), monkeypatch)


def test_a_channel_of_an_ome_zarr_image_writes_zarrs_chunks_without_zarr(tmp_path,
                                                                          monkeypatch) -> None:
    from fovflow.io.ngff import ARRAY, Scale, create_image

    data = _frames("uint16", np.random.default_rng(5))
    scale = Scale(frame_interval_s=600.0, pixel_size_um=0.5)
    options = {"stacks": ["pc", "fl_ch_1"], "channel_names": ["Phase", "GFP"],
               "n_frames": SHAPE[0], "frame_shape": SHAPE[1:], "dtype": np.uint16,
               "scale": scale}
    ours = create_image(tmp_path / "ours.ome.zarr", **options)["fl_ch_1"]
    zarrs = create_image(tmp_path / "zarrs.ome.zarr", **options)["fl_ch_1"]
    assert ours.shape == SHAPE and ours.channel == 1
    for t, frame in enumerate(data):
        zarrs.array[t, 1] = frame
    _write_and_read_without_zarr(ours, data, monkeypatch)
    for t in range(SHAPE[0]):
        chunk = f"{ARRAY}/c/{t}/1/0/0"
        assert (tmp_path / "ours.ome.zarr" / chunk).read_bytes() == \
            (tmp_path / "zarrs.ome.zarr" / chunk).read_bytes()
    whole = zarr.open_array(tmp_path / "ours.ome.zarr" / ARRAY)
    np.testing.assert_array_equal(whole[:, 1], data)
    assert not whole[:, 0].any()  # the other channel is untouched
    np.testing.assert_array_equal(ours.downsampled(2, 4), data[2, ::4, ::4])


def test_a_frame_never_written_reads_as_the_fill_value_and_frames_are_writable(tmp_path) -> None:
    stack = create_frames(tmp_path / "a.zarr", 3, (8, 8), np.uint16)
    stack[0] = np.full((8, 8), 7, np.uint16)
    assert not stack[1].any()
    frame = stack[0]
    frame += 1  # the steps may change what they read
    assert frame[0, 0] == 8 and stack[0][0, 0] == 7


def test_other_layouts_and_indices_go_through_zarr(tmp_path) -> None:
    array = zarr.create_array(store=tmp_path / "zstd.zarr", shape=(2, 8, 8), chunks=(1, 8, 8),
                              dtype=np.uint16, compressors=[ZstdCodec()])
    stack = Frames(array)
    frames = np.arange(128, dtype=np.uint16).reshape(2, 8, 8)
    stack[0], stack[1] = frames
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "zstd.zarr")[:], frames)
    own = create_frames(tmp_path / "own.zarr", 2, (8, 8), np.uint16)
    own[0], own[1] = frames
    np.testing.assert_array_equal(own[-1], frames[1])
    with pytest.raises(ValueError):  # a wrong shape is still refused (by Zarr)
        own[0] = np.zeros((4, 4), np.uint16)
    with pytest.raises(ValueError):  # and so is writing to an array opened read-only
        open_frames(tmp_path / "own.zarr")[0] = frames[1]
    np.testing.assert_array_equal(open_frames(tmp_path / "own.zarr")[0], frames[0])


def test_columns_csv_is_the_text_pandas_writes(tmp_path) -> None:
    rng = np.random.default_rng(5)
    intensity = rng.normal(500.0, 200.0, 40)
    intensity[[3, 17]] = np.nan
    intensity[5] = np.inf
    columns = {
        "fov": np.full(40, 2), "cell": np.repeat(np.arange(1, 5), 10),
        "good": rng.random(40) > 0.5, "intensity_total": intensity * 1e12,
        "mean, per pixel": (intensity / 7).astype(np.float32),  # a plugin's name and dtype
        "area": rng.integers(0, 5000, 40).astype(np.uint32),
    }
    write_columns_csv(tmp_path / "traces.csv", columns)
    assert (tmp_path / "traces.csv").read_text() == pd.DataFrame(columns).to_csv(index=False)
    read = pd.read_csv(tmp_path / "traces.csv")
    np.testing.assert_array_equal(read["intensity_total"], columns["intensity_total"])


def test_worker_task_module_does_not_import_pandas() -> None:
    """Every worker process imports it; pandas would add 0.15 s to the start of each."""
    code = "import sys, fovflow.workflow.steps; print('pandas' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "False"
