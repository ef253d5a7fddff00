"""CZI files written with libCZI's own writer read back right: scenes, channels, Z, sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fovflow.errors import CorruptFileError
from fovflow.io.microscopy import open_dataset

pyczi = pytest.importorskip("pylibCZIrw.czi", reason="needs the czi extra (pylibCZIrw)")

# scenes x frames x channels x Z planes x height x width
_MOVIE = np.random.default_rng(5).integers(0, 4000, (2, 3, 2, 2, 24, 32), dtype=np.uint16)


def _write_czi(path: Path, scenes: list[np.ndarray], *, pixel_size_m: float = 0.65e-6,
               names: tuple[str, ...] = ("Phase", "GFP")) -> Path:
    """Scenes of (frames, channels, Z, height, width), side by side on the stage."""
    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        x = 0
        for scene, data in enumerate(scenes):
            for t, c, z in np.ndindex(data.shape[:3]):
                writer.write(data[t, c, z], plane={"T": t, "C": c, "Z": z}, scene=scene,
                             location=(x, 0))
            x += data.shape[-1] + 10
        # libCZI's XML holds distances in metres, whatever the writer's docstring says.
        writer.write_metadata("test", channel_names=dict(enumerate(names)),
                              scale_x=pixel_size_m, scale_y=pixel_size_m)
    return path


def test_multi_scene_multi_channel_z_time_lapse_reads_back(tmp_path) -> None:
    path = _write_czi(tmp_path / "movie.czi", list(_MOVIE))
    with open_dataset(path, z=1) as dataset:
        meta = dataset.metadata
        assert (meta.format, meta.n_fovs, meta.n_frames, meta.n_channels, meta.n_z) == (
            "czi", 2, 3, 2, 2)
        assert (meta.height, meta.width, meta.dtype) == (24, 32, "uint16")
        assert meta.channel_names == ("Phase", "GFP")
        assert meta.pixel_size_um == pytest.approx(0.65)
        for fov, t, c in np.ndindex(2, 3, 2):
            assert np.array_equal(dataset.frame(fov, c, t), _MOVIE[fov, t, c, 1])


def test_czi_max_projection_equals_numpy(tmp_path) -> None:
    path = _write_czi(tmp_path / "movie.czi", list(_MOVIE))
    with open_dataset(path, z="max") as dataset:
        assert np.array_equal(dataset.frame(1, 0, 2), _MOVIE[1, 2, 0].max(axis=0))


def test_czi_without_times_reads_frame_indices(tmp_path) -> None:
    path = _write_czi(tmp_path / "movie.czi", list(_MOVIE))  # libCZI's writer records none
    meta = open_dataset(path).metadata
    assert meta.time_unit == "frame"
    assert meta.times == ((0.0, 1.0, 2.0), (0.0, 1.0, 2.0))


def test_scenes_of_different_sizes_are_read_each_at_its_size(tmp_path) -> None:
    small = _MOVIE[0, :, :, :, :16, :20]
    path = _write_czi(tmp_path / "sizes.czi", [_MOVIE[0], small, _MOVIE[1]])
    with open_dataset(path, z=0) as dataset:
        meta = dataset.metadata
        assert meta.fov_sizes == ((24, 32), (16, 20), (24, 32))
        assert np.array_equal(dataset.frame(1, 1, 2), small[2, 1, 0])
        assert np.array_equal(dataset.frame(2, 0, 0), _MOVIE[1, 0, 0, 0])


def test_channels_without_names_are_numbered(tmp_path) -> None:
    path = _write_czi(tmp_path / "movie.czi", [_MOVIE[0]], names=())
    assert open_dataset(path).metadata.channel_names == ("Channel:0", "Channel:1")


@pytest.mark.parametrize("keep", [0.5, 0.01])
def test_a_truncated_czi_is_corrupt_with_libczis_reason(tmp_path, keep: float) -> None:
    data = _write_czi(tmp_path / "movie.czi", list(_MOVIE)).read_bytes()
    path = tmp_path / "cut.czi"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CorruptFileError, match=r"cannot be read as czi \(RuntimeError: Not "
                                               r"enough data.*truncated") as error:
        open_dataset(path)
    assert "\n" not in str(error.value)
