"""Reading microscopy files: metadata, lazy frames, pickling, and clear errors on bad input."""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fovflow.errors import (
    CorruptFileError,
    EmptyFileError,
    IndexOutOfRangeError,
    MissingFileError,
    NotAFileError,
    UnsupportedFormatError,
)
from fovflow.io.microscopy import Dataset, open_dataset
from fovflow.io.synthetic import simulate_fov


def _write_ome(path: Path, series: list[np.ndarray], axes: str = "TCYX", **metadata) -> Path:
    with tifffile.TiffWriter(path, ome=True) as writer:
        for data in series:
            writer.write(data, metadata={"axes": axes, **metadata})
    return path


def test_round_trip_keeps_counts_names_times_and_pixels(small_image, small_config) -> None:
    with open_dataset(small_image) as dataset:
        meta = dataset.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_channels) == (3, 8, 3)
        assert (meta.height, meta.width, meta.dtype) == (96, 128, "uint16")
        assert meta.channel_names == ("Phase", "GFP", "mCherry")
        assert meta.pixel_size_um == pytest.approx(0.65)
        assert meta.time_unit == "s"
        np.testing.assert_allclose(dataset.timestamps(2), small_config.times_s)
        truth = simulate_fov(small_config, 1)
        assert np.array_equal(dataset.frame(1, 0, 5), truth.phase[5])
        assert np.array_equal(dataset.frame(1, 2, 7), truth.fluorescence[1, 7])
        assert np.array_equal(np.asarray(dataset.stack(1, 1)), truth.fluorescence[0])


def test_stack_is_lazy_and_indexable(small_image, small_config) -> None:
    with open_dataset(small_image) as dataset:
        stack = dataset.stack(0, 1)
        assert len(stack) == 8 and stack.shape == (8, 96, 128) and stack.dtype == np.uint16
        assert np.array_equal(stack[-1], dataset.frame(0, 1, 7))
        assert sum(1 for _ in stack) == 8
        with pytest.raises(IndexOutOfRangeError):
            stack[8]


def test_reading_one_frame_reads_only_that_frame(tmp_path: Path) -> None:
    proc_io = Path("/proc/self/io")
    if not proc_io.exists():
        pytest.skip("needs Linux /proc/self/io to count bytes read")
    frames = np.random.default_rng(0).integers(0, 4000, (60, 2, 512, 512), dtype=np.uint16)
    path = _write_ome(tmp_path / "big.ome.tif", [frames, frames])  # 63 MB on disk
    frame_bytes = 512 * 512 * 2

    def bytes_read() -> int:
        fields = dict(line.split(": ") for line in proc_io.read_text().splitlines())
        return int(fields["rchar"])

    with open_dataset(path) as dataset:
        dataset.frame(0, 0, 0)  # first read opens the handle
        before = bytes_read()
        plane = dataset.frame(1, 1, 37)
        read = bytes_read() - before
    assert np.array_equal(plane, frames[37, 1])
    assert frame_bytes <= read < 1.2 * frame_bytes


def test_dataset_pickles_as_path_and_metadata_only(small_image) -> None:
    dataset = open_dataset(small_image)
    dataset.frame(0, 0, 0)
    payload = pickle.dumps(dataset)
    assert len(payload) < 5_000
    clone = pickle.loads(payload)
    assert clone.metadata == dataset.metadata
    assert np.array_equal(clone.frame(2, 1, 3), dataset.frame(2, 1, 3))
    dataset.close()


def _sum_frame(dataset: Dataset) -> int:
    return int(dataset.frame(2, 2, 6).sum())


def test_dataset_reopens_inside_a_spawned_worker_process(small_image) -> None:
    dataset = open_dataset(small_image)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_sum_frame, (dataset,)) == _sum_frame(dataset)


def test_concurrent_reads_from_threads_return_the_right_frames(small_image) -> None:
    dataset = open_dataset(small_image)
    expected = {(f, c, t): dataset.frame(f, c, t) for f in range(3) for c in range(3)
                for t in range(8)}
    errors: list[str] = []

    def read_all(offset: int) -> None:
        keys = list(expected)
        for key in keys[offset:] + keys[:offset]:
            if not np.array_equal(dataset.frame(*key), expected[key]):
                errors.append(str(key))

    threads = [threading.Thread(target=read_all, args=(i * 17,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_file_without_times_uses_frame_indices_and_says_so(tmp_path, caplog) -> None:
    path = _write_ome(tmp_path / "notime.ome.tif", [np.zeros((4, 1, 32, 32), np.uint16)])
    with caplog.at_level(logging.WARNING):
        dataset = open_dataset(path)
    assert dataset.metadata.time_unit == "frame"
    assert dataset.timestamps(0).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert "no acquisition times" in caplog.text


def test_time_increment_alone_gives_uniform_times(tmp_path) -> None:
    path = _write_ome(tmp_path / "inc.ome.tif", [np.zeros((3, 1, 32, 32), np.uint16)],
                      TimeIncrement=5, TimeIncrementUnit="min")
    dataset = open_dataset(path)
    assert dataset.metadata.time_unit == "s"
    assert dataset.timestamps(0).tolist() == [0.0, 300.0, 600.0]


def test_per_plane_delta_t_in_minutes_is_converted_to_seconds(tmp_path) -> None:
    delta_t = [0.0, 0.0, 9.5, 9.5, 20.0, 20.0]  # T x C, irregular
    path = _write_ome(tmp_path / "dt.ome.tif", [np.zeros((3, 2, 32, 32), np.uint16)],
                      Plane={"DeltaT": delta_t, "DeltaTUnit": ["min"] * 6})
    assert open_dataset(path).timestamps(0).tolist() == [0.0, 570.0, 1200.0]


def test_other_dimension_orders_map_to_the_right_planes(tmp_path) -> None:
    data = np.arange(2 * 3 * 32 * 32, dtype=np.uint16).reshape(2, 3, 32, 32)  # C x T
    path = _write_ome(tmp_path / "ct.ome.tif", [data], axes="CTYX")
    dataset = open_dataset(path)
    assert (dataset.metadata.n_channels, dataset.metadata.n_frames) == (2, 3)
    assert np.array_equal(dataset.frame(0, 1, 2), data[1, 2])


def test_single_frame_32px_file_opens(tmp_path) -> None:
    path = _write_ome(tmp_path / "one.ome.tif", [np.ones((1, 1, 32, 32), np.uint16)])
    dataset = open_dataset(path)
    assert dataset.metadata.n_frames == 1
    assert dataset.frame(0, 0, 0).shape == (32, 32)


# --- bad inputs: each a clear fovflow error naming the file ---------------------------------

def test_missing_file(tmp_path) -> None:
    with pytest.raises(MissingFileError, match="no such file"):
        open_dataset(tmp_path / "absent.ome.tif")


def test_folder_instead_of_file(tmp_path) -> None:
    folder = tmp_path / "run.ome.tif"
    folder.mkdir()
    with pytest.raises(NotAFileError, match="folder"):
        open_dataset(folder)


@pytest.mark.parametrize("name", ["cells.png", "movie.avi", "notes.txt", "plain.tif"])
def test_unsupported_extension(tmp_path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"not an image")
    with pytest.raises(UnsupportedFormatError, match=r"OME-TIFF|supported"):
        open_dataset(path)


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.ome.tif"
    path.touch()
    with pytest.raises(EmptyFileError, match="empty"):
        open_dataset(path)


def test_non_image_file_with_image_extension(tmp_path) -> None:
    path = tmp_path / "fake.ome.tif"
    path.write_bytes(b"hello world " * 200)
    with pytest.raises(CorruptFileError, match=str(path)):
        open_dataset(path)


@pytest.mark.parametrize("keep", [0.999, 0.6, 0.05])
def test_truncated_file(small_image, tmp_path, keep: float) -> None:
    data = small_image.read_bytes()
    path = tmp_path / "cut.ome.tif"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CorruptFileError, match="truncated"):
        open_dataset(path)


def test_pixel_data_cut_short_is_caught_at_open(tmp_path) -> None:
    # A file whose IFDs and OME-XML survive but whose last plane's pixels are missing.
    frames = np.ones((4, 1, 64, 64), np.uint16)
    path = tmp_path / "short.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(frames, metadata={"axes": "TCYX"}, contiguous=True)
    with tifffile.TiffFile(path) as tif:
        last = tif.series[0].pages[-1]
        end = last.dataoffsets[0] + last.databytecounts[0]
    with path.open("r+b") as handle:
        handle.truncate(end - 100)
    with pytest.raises(CorruptFileError, match="truncated"):
        open_dataset(path)


@pytest.mark.parametrize(("fov", "channel", "t", "what"),
                         [(3, 0, 0, "FOV 3"), (0, 3, 0, "channel 3"), (0, 0, 8, "frame 8"),
                          (-1, 0, 0, "FOV -1")])
def test_index_out_of_range_names_the_valid_range(small_image, fov, channel, t, what) -> None:
    dataset = open_dataset(small_image)
    with pytest.raises(IndexOutOfRangeError, match=f"{what} is out of range.*0 to"):
        dataset.frame(fov, channel, t)


def _z_stack(tmp_path: Path) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(3).integers(0, 4000, (2, 2, 3, 32, 40), dtype=np.uint16)
    return _write_ome(tmp_path / "z.ome.tif", [data, data[::-1]], axes="TCZYX"), data


def test_a_z_stack_opens_and_says_how_to_choose_a_plane(tmp_path) -> None:
    path, _ = _z_stack(tmp_path)
    dataset = open_dataset(path)
    assert (dataset.metadata.n_z, dataset.metadata.z) == (3, None)
    with pytest.raises(UnsupportedFormatError, match=r"3 Z planes.*--z"):
        dataset.frame(0, 0, 0)


def test_z_plane_index_reads_that_plane(tmp_path) -> None:
    path, data = _z_stack(tmp_path)
    with open_dataset(path, z=2) as dataset:
        assert np.array_equal(dataset.frame(0, 1, 1), data[1, 1, 2])
        assert np.array_equal(dataset.frame(1, 0, 1), data[0, 0, 2])  # FOV 1 is T-reversed


def test_z_projections_are_computed_per_frame(tmp_path) -> None:
    path, data = _z_stack(tmp_path)
    with open_dataset(path, z="max") as dataset:
        assert np.array_equal(dataset.frame(0, 1, 0), data[0, 1].max(axis=0))
    with open_dataset(path, z="mean") as dataset:
        mean = dataset.frame(0, 0, 1)
    assert mean.dtype == np.uint16
    assert np.array_equal(mean, np.rint(data[1, 0].mean(axis=0)).astype(np.uint16))


def test_a_z_plane_the_file_lacks_names_the_range(tmp_path) -> None:
    path, _ = _z_stack(tmp_path)
    with pytest.raises(IndexOutOfRangeError, match=r"Z plane 3 is out of range.*0 to 2"):
        open_dataset(path, z=3)


def test_a_2d_file_takes_any_z_choice_as_its_one_plane(small_image) -> None:
    with open_dataset(small_image, z="max") as dataset:
        assert dataset.metadata.z is None
        assert dataset.frame(0, 0, 0).shape == (96, 128)


def test_fovs_of_different_sizes_are_read_each_at_its_size(tmp_path) -> None:
    small, large = np.ones((2, 1, 32, 32), np.uint16), np.full((2, 1, 48, 40), 7, np.uint16)
    path = _write_ome(tmp_path / "mixed.ome.tif", [small, large, small])
    dataset = open_dataset(path)
    meta = dataset.metadata
    assert meta.fov_sizes == ((32, 32), (48, 40), (32, 32))
    assert (meta.height, meta.width) == (48, 40)
    assert np.array_equal(dataset.frame(1, 0, 1), large[1, 0])
    assert dataset.stack(2, 0).shape == (2, 32, 32)


def test_fovs_with_different_frame_counts_are_refused_naming_them(tmp_path) -> None:
    path = _write_ome(tmp_path / "mixed.ome.tif", [np.zeros((2, 1, 32, 32), np.uint16),
                                                   np.zeros((3, 1, 32, 32), np.uint16),
                                                   np.zeros((2, 1, 32, 32), np.uint16)])
    with pytest.raises(UnsupportedFormatError,
                       match=r"FOVs 0,2: 2 frames, 1 channels, 1 Z planes; FOV 1: 3 frames"):
        open_dataset(path)


@pytest.mark.parametrize(("suffix", "module", "extra"),
                         [(".nd2", "bioio_nd2", "nd2"), (".czi", "pylibCZIrw", "czi")])
def test_a_missing_reader_is_one_line_naming_the_extra(tmp_path, monkeypatch, suffix, module,
                                                       extra) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: import fails
    path = tmp_path / f"movie{suffix}"
    path.write_bytes(b"x" * 100)
    with pytest.raises(UnsupportedFormatError, match=rf"pip install 'fovflow\[{extra}\]'"):
        open_dataset(path)
