"""Real ND2 and CZI recordings (issue 21): metadata, frames and times as the native readers see
them.

The ND2 files are committed (tests/data/nd2, MIT and BSD). The CZI files are GPL-3 and are not:
their tests run when FOVFLOW_REAL_FORMATS names a folder holding sebi06/czitools' ``data/``
files (any layout below it), and skip otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fovflow.errors import UnsupportedFormatError
from fovflow.io.microscopy import open_dataset

ND2_FILES = Path(__file__).parents[1] / "data" / "nd2"
CZI_FOLDER = os.environ.get("FOVFLOW_REAL_FORMATS")


def _czi(name: str) -> Path:
    pytest.importorskip("pylibCZIrw", reason="needs the czi extra (pylibCZIrw)")
    if not CZI_FOLDER:
        pytest.skip("set FOVFLOW_REAL_FORMATS to a folder of the GPL-3 CZI test files")
    found = sorted(Path(CZI_FOLDER).rglob(name))
    if not found:
        pytest.skip(f"{name} is not under {CZI_FOLDER}")
    return found[0]


# --- ND2 (committed fixtures) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def nd2() -> Any:
    """The `nd2` package (Nikon's format, BSD): the native reader fovflow is compared with."""
    pytest.importorskip("bioio_nd2", reason="needs the nd2 extra (bioio-nd2)")
    return pytest.importorskip("nd2")


@pytest.mark.parametrize("name", sorted(p.name for p in ND2_FILES.glob("*.nd2")))
def test_nd2_sizes_channels_and_times_match_the_nd2_package(nd2: Any, name: str) -> None:
    with nd2.ND2File(ND2_FILES / name) as native:
        sizes = native.sizes
        names = tuple(channel.channel.name for channel in native.metadata.channels)
        first_time = native.frame_metadata(0).channels[0].time.relativeTimeMs / 1000
    with open_dataset(ND2_FILES / name) as dataset:
        meta = dataset.metadata
    assert (meta.n_frames, meta.n_channels, meta.n_z) == (
        sizes.get("T", 1), sizes.get("C", 1), sizes.get("Z", 1))
    assert (meta.height, meta.width) == (sizes["Y"], sizes["X"])
    assert meta.channel_names == names
    assert meta.time_unit == "s"
    assert meta.times[0][0] == pytest.approx(first_time, abs=1e-6)


def test_nd2_time_lapse_frames_equal_the_native_ones(nd2: Any) -> None:
    with nd2.ND2File(ND2_FILES / "example-timelapse.nd2") as native:
        frames = native.asarray()  # T, Y, X
    with open_dataset(ND2_FILES / "example-timelapse.nd2") as dataset:
        assert np.array_equal(dataset.frame(0, 0, 52), frames[52])
        assert np.array_equal(dataset.frame(0, 0, 0), frames[0])
        steps = np.diff(dataset.timestamps(0))
    assert 0.4 < np.median(steps) < 0.6  # about 0.5 s between frames


def test_nd2_z_stack_projects_as_numpy_does(nd2: Any) -> None:
    with nd2.ND2File(ND2_FILES / "cluster.nd2") as native:
        planes = native.asarray()  # T, Z, C, Y, X
    with open_dataset(ND2_FILES / "cluster.nd2", z="max") as dataset:
        assert np.array_equal(dataset.frame(0, 1, 2), planes[2, :, 1].max(axis=0))
    with open_dataset(ND2_FILES / "cluster.nd2", z=4) as dataset:
        assert np.array_equal(dataset.frame(0, 0, 1), planes[1, 4, 0])


# --- CZI (GPL-3 files, outside the repository) ------------------------------------------------

@pytest.mark.parametrize("name", ["100x100.czi", "LLS7_small.czi", "newCZI_compressed.czi",
                                  "CellDivision_T3_Z5_CH2_X240_Y170_comp1.czi"])
def test_czis_that_fail_the_ome_conversion_read(name: str) -> None:
    with open_dataset(_czi(name), z=0) as dataset:
        meta = dataset.metadata
        assert dataset.frame(0, meta.n_channels - 1, meta.n_frames - 1).shape == (
            meta.height, meta.width)


def test_czi_without_y_scale_reads_names_and_no_pixel_size() -> None:
    meta = open_dataset(_czi("DAPI_GFP.czi")).metadata
    assert meta.channel_names == ("DAPI", "GFP")
    assert (meta.height, meta.width, meta.pixel_size_um) == (640, 640, None)


def test_czi_times_come_from_the_subblocks_in_seconds() -> None:
    meta = open_dataset(_czi("CellDivision_T3_Z5_CH2_X240_Y170.czi")).metadata
    assert meta.time_unit == "s"
    assert meta.times[0] == pytest.approx((0.0, 60.0, 120.1), abs=0.1)
    assert (meta.n_frames, meta.n_channels, meta.n_z) == (3, 2, 5)


def test_czi_mosaic_scenes_keep_their_sizes_and_times() -> None:
    meta = open_dataset(_czi("S3_1Pos_2Mosaic_T2Z3_CH2_sm.czi")).metadata
    assert meta.fov_sizes == ((122, 295), (64, 64), (237, 352))
    assert all(row == pytest.approx((0.0, 33.4), abs=0.1) for row in meta.times)


def test_czi_of_airyscan_phases_is_refused_naming_the_dimension() -> None:
    with pytest.raises(UnsupportedFormatError, match=r"32 phases .*H dimension"):
        open_dataset(_czi("LSM880_AiryScan.czi"))
