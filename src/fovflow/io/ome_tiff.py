"""OME-TIFF through tifffile: metadata from the OME-XML, frames straight from their TIFF pages.

tifffile already parses the OME-XML into image series; reading the few fields fovflow needs
from it takes ~20 ms, where bioio's OME-TIFF reader first imports ome-types, pint and dask
(2-3 s at every start of a run, an `inspect` or the GUI opening a file). Frames are read from
their pages: 0.76 ms per 2048x2048 plane against 34.5 ms through bioio (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import numpy as np
import tifffile
from numpy.typing import NDArray

from fovflow.errors import CorruptFileError
from fovflow.io.metadata import (
    DatasetMetadata,
    Plane,
    acquisition_times,
    shared_shape,
    unreadable,
)

_MICROMETRES_PER_UNIT = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}


def holds_ome_xml(file: Path) -> bool:
    """Whether a TIFF carries OME-XML (an OME-TIFF, whatever its name ends with); reads the
    first page's description only."""
    try:
        with tifffile.TiffFile(file) as tif:
            return bool(tif.is_ome)
    except (OSError, ValueError, tifffile.TiffFileError):
        return False


def read_ome_tiff_metadata(file: Path) -> DatasetMetadata:
    """What an OME-TIFF holds; one OME Image (tifffile series) per FOV.

    Raises
    ------
    CorruptFileError
        If the file is not a readable TIFF with OME-XML metadata.
    UnsupportedFormatError
        If its FOVs differ in frames, channels or Z planes, or hold RGB samples.
    """
    try:
        with tifffile.TiffFile(file) as tif:
            if not tif.is_ome:
                raise ValueError("no OME-XML metadata")
            images = _as_list(tifffile.xml2dict(tif.ome_metadata)["OME"].get("Image"))
            series = tif.series
            shapes = [dict(zip(s.get_axes(False), s.get_shape(False), strict=True))
                      for s in series]
            dtypes = {np.dtype(s.dtype).name for s in series}
        if not series or not images:
            raise ValueError("no images")
        shape = shared_shape(file, shapes)
        pixels = [image["Pixels"] for image in images]
        channels = _as_list(pixels[0].get("Channel"))
        times, unit = acquisition_times(
            [(_planes(p), p.get("TimeIncrement"), p.get("TimeIncrementUnit")) for p in pixels],
            len(series), shape.n_frames)
        channel_names = tuple(str(c.get("Name") or c.get("ID") or f"Channel:{i}")
                              for i, c in enumerate(channels))
    except (OSError, ValueError, KeyError, IndexError, TypeError, ParseError,
            tifffile.TiffFileError) as exc:
        raise unreadable(file, "ome-tiff", exc) from exc
    if len(channel_names) != shape.n_channels:
        channel_names = tuple(f"Channel:{i}" for i in range(shape.n_channels))
    return DatasetMetadata(
        path=file.resolve(), format="ome-tiff", n_fovs=len(series), n_frames=shape.n_frames,
        n_channels=shape.n_channels, channel_names=channel_names, height=shape.height,
        width=shape.width, dtype=dtypes.pop(), times=times, time_unit=unit,
        pixel_size_um=_pixel_size_um(pixels[0]),
        fov_names=tuple(str(image.get("ID", f"Image:{i}")) for i, image in
                        enumerate(images[: len(series)])),
        n_z=shape.n_z, fov_sizes=shape.fov_sizes,
    )


class OmeTiffPages:
    """Reads OME-TIFF planes directly from their TIFF pages (one seek and read per frame)."""

    def __init__(self, metadata: DatasetMetadata) -> None:
        self._path = metadata.path
        try:
            self._tiff = tifffile.TiffFile(metadata.path)
            series = self._tiff.series
            if len(series) < metadata.n_fovs:
                raise ValueError(f"{len(series)} image series for {metadata.n_fovs} FOVs")
            self._pages = [self._index(s, metadata) for s in series[: metadata.n_fovs]]
        except (OSError, ValueError, IndexError, tifffile.TiffFileError) as exc:
            self.close()
            raise CorruptFileError(f"{metadata.path}: its TIFF pages are incomplete ({exc}); "
                                   "the file may be truncated: re-export or re-copy it") from exc

    def read(self, fov: int, channel: int, t: int, z: int) -> NDArray[Any]:
        return self._pages[fov][t][channel][z].asarray()

    def close(self) -> None:
        if getattr(self, "_tiff", None) is not None:
            self._tiff.close()

    def _index(self, series: Any, metadata: DatasetMetadata) -> list[list[list[Any]]]:
        """Pages of one series as ``pages[t][c][z]``, checked to lie wholly inside the file."""
        axes = series.get_axes(False)
        shape = series.get_shape(False)
        plane_axes = [(axis, size) for axis, size in zip(axes, shape, strict=True)
                      if axis not in "YXS"]
        sizes = tuple(size for _, size in plane_axes)
        pages = series.pages
        file_size = self._path.stat().st_size
        table: list[list[list[Any]]] = []
        for t in range(metadata.n_frames):
            row = []
            for c in range(metadata.n_channels):
                stack = []
                for z in range(metadata.n_z):
                    position = {"T": t, "C": c, "Z": z}
                    index = np.ravel_multi_index(
                        tuple(position.get(axis, 0) for axis, _ in plane_axes), sizes
                    ) if sizes else 0
                    page = pages[int(index)]
                    if page is None:
                        raise ValueError(f"plane T={t} C={c} Z={z} is missing")
                    end = max(o + n for o, n in
                              zip(page.dataoffsets, page.databytecounts, strict=True))
                    if end > file_size:
                        raise ValueError(f"plane T={t} C={c} Z={z} ends past the end of the file")
                    stack.append(page)
                row.append(stack)
            table.append(row)
        return table


def _as_list(value: Any) -> list[Any]:
    """xml2dict gives one repeated element as a dict and several as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _planes(pixels: dict[str, Any]) -> list[Plane]:
    return [(int(p.get("TheC", 0)), int(p.get("TheZ", 0)), int(p.get("TheT", 0)),
             p.get("DeltaT"), p.get("DeltaTUnit")) for p in _as_list(pixels.get("Plane"))]


def _pixel_size_um(pixels: dict[str, Any]) -> float | None:
    size = pixels.get("PhysicalSizeX")
    factor = _MICROMETRES_PER_UNIT.get(pixels.get("PhysicalSizeXUnit", "µm"))
    return float(size) * factor if size and factor else None
