"""Zeiss CZI through libCZI (the `pylibCZIrw` package, LGPL-3, extra ``czi``).

Everything comes from the CZI itself: sizes from libCZI's subblock statistics, channel names,
scene names and pixel size from the document XML, times from the subblocks' metadata or the
TimeStamps attachment (`fovflow.io.czi_times`). No OME conversion is made, so a CZI whose
XML does not fit the OME schema (an empty ``AcquisitionMode``, a missing Y scale) still reads.
One FOV is one scene; a mosaic scene is read as one frame, its tiles placed by libCZI.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fovflow.errors import CorruptFileError, UnsupportedFormatError
from fovflow.io.czi_times import subblock_times, timestamps_attachment
from fovflow.io.metadata import (
    DatasetMetadata,
    Times,
    frame_indices,
    shared_shape,
    unreadable,
)

_DTYPES = {"Gray8": np.uint8, "Gray16": np.uint16, "Gray32Float": np.float32}
_PIXEL_TYPES = {np.dtype(dtype).name: name for name, dtype in _DTYPES.items()}
_RGB_TYPES = {"Bgr24", "Bgr48", "Bgr96Float"}
# Dimensions beyond T, C, Z that fovflow has no use for; a file with several of one is refused.
_OTHER_DIMENSIONS = {"H": "phases (e.g. Airyscan detector elements)", "I": "illuminations",
                     "R": "rotations", "V": "views", "B": "blocks"}
_IMAGE = "Metadata/Information/Image"


def pylibczirw() -> Any:
    """The `pylibCZIrw.czi` module, or a one-line error naming the extra that installs it."""
    try:
        from pylibCZIrw import czi
    except ImportError as exc:
        raise UnsupportedFormatError(
            "reading CZI files needs the pylibCZIrw package: pip install 'fovflow[czi]'"
        ) from exc
    return czi


def read_czi_metadata(file: Path) -> DatasetMetadata:
    """What a CZI holds; one scene per FOV (the whole image when it has no scenes).

    Raises
    ------
    CorruptFileError
        If libCZI cannot parse the file (its message is kept).
    UnsupportedFormatError
        If the file holds RGB pixels, several phases/views/illuminations, or scenes that
        differ in frames, channels or Z planes.
    """
    czi = pylibczirw()
    try:
        with czi.open_czi(str(file)) as document:
            box = document.total_bounding_box_no_pyramid
            scenes = document.scenes_bounding_rectangle_no_pyramid
            pixel_types = dict(document.pixel_types)
            root = ElementTree.fromstring(document.raw_metadata)
    except (RuntimeError, OSError, ValueError, ElementTree.ParseError) as exc:
        raise unreadable(file, "czi", exc) from exc
    sizes = {axis: end - start for axis, (start, end) in box.items()}
    for axis, what in _OTHER_DIMENSIONS.items():
        if sizes.get(axis, 1) > 1:
            raise UnsupportedFormatError(
                f"{file}: holds {sizes[axis]} {what} per plane ({axis} dimension); fovflow reads "
                "one plane per channel, frame and Z: export the processed image from ZEN")
    if _RGB_TYPES & set(pixel_types.values()):
        raise UnsupportedFormatError(f"{file}: holds RGB pixels; convert to one channel per "
                                     "fluorophore first")
    rectangles = [scenes[index] for index in sorted(scenes)] or [_whole_image(box)]
    planes = {"T": sizes.get("T", 1), "C": sizes.get("C", 1), "Z": sizes.get("Z", 1)}
    shape = shared_shape(file, [{**planes, "Y": r.h, "X": r.w} for r in rectangles])
    times, unit = _times(file, sorted(scenes) or [0], shape.n_frames)
    return DatasetMetadata(
        path=file.resolve(), format="czi", n_fovs=len(rectangles), n_frames=shape.n_frames,
        n_channels=shape.n_channels, channel_names=_channel_names(root, shape.n_channels),
        height=shape.height, width=shape.width,
        dtype=np.result_type(*(_DTYPES[t] for t in pixel_types.values())).name,
        times=times, time_unit=unit, pixel_size_um=_pixel_size_um(root),
        fov_names=_scene_names(root, sorted(scenes)), n_z=shape.n_z, fov_sizes=shape.fov_sizes,
    )


class CziPlanes:
    """Reads CZI planes through libCZI, one FOV (scene), channel, frame and Z plane at a time."""

    def __init__(self, metadata: DatasetMetadata) -> None:
        czi = pylibczirw()
        self._files = contextlib.ExitStack()
        try:
            self._document = self._files.enter_context(czi.open_czi(str(metadata.path)))
            box = self._document.total_bounding_box_no_pyramid
            scenes = self._document.scenes_bounding_rectangle_no_pyramid
        except RuntimeError as exc:
            self.close()
            raise unreadable(metadata.path, "czi", exc) from exc
        self._start = {axis: box.get(axis, (0, 1))[0] for axis in "TCZ"}
        self._scenes = sorted(scenes)
        self._roi = _whole_image(box)
        self._pixel_type = _PIXEL_TYPES[metadata.dtype]

    def read(self, fov: int, channel: int, t: int, z: int) -> NDArray[Any]:
        plane = {"T": self._start["T"] + t, "C": self._start["C"] + channel,
                 "Z": self._start["Z"] + z}
        if self._scenes:
            pixels = self._document.read(plane=plane, scene=self._scenes[fov],
                                         pixel_type=self._pixel_type)
        else:
            pixels = self._document.read(plane=plane, roi=self._roi, pixel_type=self._pixel_type)
        return pixels[..., 0]

    def close(self) -> None:
        self._files.close()


def _whole_image(box: dict[str, tuple[int, int]]) -> Any:
    x0, x1 = box["X"]
    y0, y1 = box["Y"]
    return pylibczirw().Rectangle(x0, y0, x1 - x0, y1 - y0)


def _times(file: Path, scenes: list[int], n_frames: int) -> tuple[Times, str]:
    """Seconds since the file's first acquired plane, per scene and frame: from the subblocks
    when every frame of every scene has a time, else the TimeStamps attachment (the same for
    every scene), else frame indices."""
    try:
        stamps = subblock_times(file)
        if all((scene, t) in stamps for scene in scenes for t in range(n_frames)):
            origin = min(stamps.values())
            return tuple(tuple(stamps[scene, t] - origin for t in range(n_frames))
                         for scene in scenes), "s"
        shared = timestamps_attachment(file)
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{file}: its subblock directory cannot be read ({exc}); "
                               "re-export or re-copy it") from exc
    if len(shared) >= n_frames:
        row = tuple(value - shared[0] for value in shared[:n_frames])
        return tuple(row for _ in scenes), "s"
    return frame_indices(len(scenes), n_frames)


def _channel_names(root: ElementTree.Element, n_channels: int) -> tuple[str, ...]:
    """Each channel's name from the image dimensions, else from the display settings (where
    some writers keep it alone), else ``Channel:<index>``."""
    paths = (f"{_IMAGE}/Dimensions/Channels/Channel", "Metadata/DisplaySetting/Channels/Channel")
    sources = [[c.get("Name") for c in root.findall(path)] for path in paths]
    names = []
    for index in range(n_channels):
        found = [source[index] for source in sources if index < len(source) and source[index]]
        names.append(found[0] if found else f"Channel:{index}")
    return tuple(names)


def _scene_names(root: ElementTree.Element, scenes: list[int]) -> tuple[str, ...]:
    named = {int(s.get("Index", -1)): s.get("Name") for s in
             root.findall(f"{_IMAGE}/Dimensions/S/Scenes/Scene")}
    return tuple(named.get(index) or f"Scene:{index}" for index in scenes) or ("Scene:0",)


def _pixel_size_um(root: ElementTree.Element) -> float | None:
    """X scaling in µm (the XML holds metres); ``None`` when absent or zero."""
    for distance in root.findall("Metadata/Scaling/Items/Distance"):
        if distance.get("Id") == "X":
            try:
                metres = float(distance.findtext("Value") or 0)
            except ValueError:
                return None
            # 12 digits: 1e-07 m is 0.1 µm, not 0.09999999999999999
            return float(f"{metres * 1e6:.12g}") if metres > 0 else None
    return None
