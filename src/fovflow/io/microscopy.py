"""Microscopy files as datasets: metadata plus lazy, per-frame access.

`open_dataset(path)` understands a file once (FOVs, channels, pixel size, per-plane timestamps)
and then reads single frames on demand. One FOV is one scene. OME-TIFF goes through tifffile
(`fovflow.io.ome_tiff`: metadata in ~20 ms, frames straight from their TIFF pages), CZI through
libCZI (`fovflow.io.czi`, extra ``czi``), ND2 through bioio and its reader plugin (extra ``nd2``),
frames through bioio's lazy dask arrays. A Z stack gives one frame per channel and time: the
plane or projection chosen with ``z`` (`DatasetMetadata.with_z`).

A `Dataset` pickles as its path and metadata, never as an open handle, so a worker process
reopens it cheaply (no second metadata parse) on its first frame read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from fovflow.errors import (
    CorruptFileError,
    EmptyFileError,
    IndexOutOfRangeError,
    MissingFileError,
    NotAFileError,
    UnsupportedFormatError,
)
from fovflow.io.czi import CziPlanes, read_czi_metadata
from fovflow.io.metadata import (  # noqa: F401 - public here too
    FRAME_UNIT,
    Z_PROJECTIONS,
    DatasetMetadata,
    Plane,
    acquisition_times,
    describe_sizes,
    shared_shape,
    unreadable,
    z_selection,
)
from fovflow.io.ome_tiff import OmeTiffPages, holds_ome_xml, read_ome_tiff_metadata

log = logging.getLogger(__name__)

_FORMATS = {".ome.tif": "ome-tiff", ".ome.tiff": "ome-tiff", ".nd2": "nd2", ".czi": "czi"}
# Format -> (bioio reader plugin module, pip extra that installs it).
_READERS: dict[str, tuple[str, str | None]] = {"nd2": ("bioio_nd2", "nd2")}


class _PlaneReader(Protocol):
    def read(self, fov: int, channel: int, t: int, z: int) -> NDArray[Any]: ...
    def close(self) -> None: ...


class Dataset:
    """An opened microscopy file: `metadata` plus `frame(fov, channel, t)` and `stack(...)`.

    Thread-safe: reads from several threads share one file handle under a lock.
    """

    def __init__(self, metadata: DatasetMetadata) -> None:
        self.metadata = metadata
        self._reader: _PlaneReader | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.metadata.path

    def __repr__(self) -> str:
        m = self.metadata
        return (f"Dataset({str(m.path)!r}, fovs={m.n_fovs}, frames={m.n_frames}, "
                f"channels={list(m.channel_names)}, frame={m.height}x{m.width} {m.dtype})")

    def timestamps(self, fov: int) -> NDArray[np.float64]:
        """Per-frame times of `fov`, in ``metadata.time_unit``."""
        self._check_index("FOV", fov, self.metadata.n_fovs)
        return np.asarray(self.metadata.times[fov], dtype=np.float64)

    def frame(self, fov: int, channel: int, t: int) -> NDArray[Any]:
        """One 2-D frame (``metadata.frame_shape(fov)``); reads only its planes from disk.

        From a Z stack, the frame is the plane or projection ``metadata.z`` names; a mean
        keeps the file's dtype (rounded for integer types).

        Raises
        ------
        IndexOutOfRangeError
            If `fov`, `channel` or `t` is outside the file.
        UnsupportedFormatError
            If the file holds Z stacks and ``metadata.z`` does not say how to read them.
        CorruptFileError
            If the plane cannot be read (truncated or damaged file).

        Notes
        -----
        A projection reads the FOV's `n_z` planes of that channel and time: O(n_z pixels).
        """
        m = self.metadata
        self._check_index("FOV", fov, m.n_fovs)
        self._check_index("channel", channel, m.n_channels)
        self._check_index("frame", t, m.n_frames)
        if m.n_z > 1 and m.z is None:
            raise UnsupportedFormatError(
                f"{m.path}: has {m.n_z} Z planes: pick one Z plane (0 to {m.n_z - 1}) or a "
                "projection, max or mean, with --z (config key z)")
        planes = range(m.n_z) if m.z in Z_PROJECTIONS else [m.z or 0]
        with self._lock:
            if self._reader is None:
                self._reader = _make_reader(m)
            try:
                plane = _project(self._reader, (fov, channel, t), planes, mean=m.z == "mean")
            except (OSError, ValueError, IndexError, KeyError, RuntimeError) as exc:
                raise CorruptFileError(
                    f"{m.path}: cannot read FOV {fov}, channel {channel}, frame {t} ({exc}); "
                    "the file may be truncated or damaged: re-export or re-copy it"
                ) from exc
        if plane.shape != m.frame_shape(fov):
            raise CorruptFileError(
                f"{m.path}: FOV {fov}, channel {channel}, frame {t} has shape {plane.shape}, "
                f"expected {m.frame_shape(fov)}; the file's metadata does not match its pixels"
            )
        return plane

    def stack(self, fov: int, channel: int) -> FrameStack:
        """A lazy (frames, height, width) view of one FOV and channel; reads frame by frame."""
        self._check_index("FOV", fov, self.metadata.n_fovs)
        self._check_index("channel", channel, self.metadata.n_channels)
        return FrameStack(self, fov, channel)

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"metadata": self.metadata}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["metadata"])  # type: ignore[misc]

    def _check_index(self, what: str, index: int, size: int) -> None:
        if not 0 <= index < size:
            raise IndexOutOfRangeError(
                f"{self.metadata.path}: {what} {index} is out of range; "
                f"the file has {size} {what}{'s' if size != 1 else ''} (0 to {size - 1})"
            )


def _project(reader: _PlaneReader, where: tuple[int, int, int], planes: Sequence[int], *,
             mean: bool) -> NDArray[Any]:
    """The plane, or the max (or mean) over `planes`, accumulated one plane at a time."""
    first = reader.read(*where, planes[0])
    if len(planes) == 1:
        return first
    if not mean:
        out = first.copy()
        for z in planes[1:]:
            np.maximum(out, reader.read(*where, z), out=out)
        return out
    total = first.astype(np.float64)
    for z in planes[1:]:
        total += reader.read(*where, z)
    total /= len(planes)
    if np.issubdtype(first.dtype, np.integer):
        total = np.rint(total)
    return total.astype(first.dtype)


class FrameStack:
    """Frames of one FOV and channel, read on access: ``stack[t]``, ``len(stack)``, iteration.

    ``np.asarray(stack)`` loads every frame: do that only for small data.
    """

    def __init__(self, dataset: Dataset, fov: int, channel: int) -> None:
        self.dataset, self.fov, self.channel = dataset, fov, channel
        m = dataset.metadata
        self.shape = (m.n_frames, *m.frame_shape(fov))
        self.dtype = np.dtype(m.dtype)
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> NDArray[Any]:
        if not isinstance(t, int | np.integer):
            raise TypeError("FrameStack takes one integer frame index; use np.asarray() for more")
        index = int(t) + len(self) if t < 0 else int(t)
        return self.dataset.frame(self.fov, self.channel, index)

    def __iter__(self) -> Iterator[NDArray[Any]]:
        return (self[t] for t in range(len(self)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        out = np.empty(self.shape, dtype=self.dtype)
        for t, plane in enumerate(self):
            out[t] = plane
        return out if dtype is None else out.astype(dtype)


def open_dataset(path: str | Path, *, z: int | str | None = None) -> Dataset:
    """Open a microscopy file (OME-TIFF; ND2 and CZI with their extras) and read its metadata.

    Parameters
    ----------
    path
        The file.
    z
        How to read Z stacks: a plane index, ``"max"`` or ``"mean"`` (a projection per frame).
        A 2-D file ignores it; a Z stack opened without it has its metadata but no frames.

    Raises
    ------
    MissingFileError, NotAFileError, EmptyFileError
        If the path does not exist, is a folder, or is empty.
    UnsupportedFormatError
        If the extension is not a supported format or its reader extra is not installed, or
        the file holds RGB samples or FOVs that differ in frames, channels or Z planes.
    IndexOutOfRangeError
        If `z` is a Z plane the file does not have.
    CorruptFileError
        If the file cannot be parsed or its pixel data ends early.

    Notes
    -----
    Reads metadata only (OME-XML and TIFF page index for OME-TIFF); cost grows with the number
    of planes, not their size.
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise MissingFileError(f"{file}: no such file; check the path")
    if not file.is_file():
        raise NotAFileError(f"{file}: is a folder, not a microscopy file; give the file inside it")
    if file.stat().st_size == 0:
        raise EmptyFileError(f"{file}: the file is empty (0 bytes); copy or export it again")
    metadata = _read_metadata(file, _format_of(file)).with_z(z)
    if not metadata.has_times:
        log.warning("%s: no acquisition times in the file; times are frame indices", file)
    dataset = Dataset(metadata)
    if metadata.format == "ome-tiff":
        # Index the TIFF pages now so a truncated file fails at open, not hours into a run.
        dataset._reader = _make_reader(metadata)
    return dataset


def _format_of(file: Path) -> str:
    name = file.name.lower()
    for suffix, fmt in _FORMATS.items():
        if name.endswith(suffix):
            return fmt
    supported = ", ".join(sorted(_FORMATS))
    if name.endswith((".tif", ".tiff")):
        if holds_ome_xml(file):  # an OME-TIFF named plain .tif
            return "ome-tiff"
        raise UnsupportedFormatError(
            f"{file}: plain TIFF has no FOV, channel or time metadata; "
            f"export it as OME-TIFF (*.ome.tif). Supported: {supported}"
        )
    raise UnsupportedFormatError(f"{file}: unsupported file type; supported: {supported}")


def _read_metadata(file: Path, fmt: str) -> DatasetMetadata:
    if fmt == "ome-tiff":
        return read_ome_tiff_metadata(file)
    if fmt == "czi":
        return read_czi_metadata(file)
    from bioio import BioImage  # deferred: importing bioio takes seconds; OME-TIFF never needs it

    reader_class = _reader_class(file, fmt)
    try:
        image = BioImage(file, reader=reader_class)
        scenes = image.scenes
        shapes, dtypes = [], set()
        for index in range(len(scenes)):
            image.set_scene(index)
            dims = image.dims
            shapes.append({d: int(n) for d, n in zip(dims.order, dims.shape, strict=True)})
            dtypes.add(np.dtype(image.dtype).name)
        image.set_scene(0)
        channel_names = tuple(str(name) for name in image.channel_names)
        pixel_size = image.physical_pixel_sizes.X
        ome = _ome_metadata(image)
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
        raise unreadable(file, fmt, exc) from exc
    except Exception as exc:  # bioio's own errors have no common base beyond Exception
        if type(exc).__module__.startswith(("bioio", "ome_types", "xsdata", "lxml", "xml")):
            raise unreadable(file, fmt, exc) from exc
        raise
    shape = shared_shape(file, shapes)
    times, unit = acquisition_times(_ome_images(ome), len(scenes), shape.n_frames)
    return DatasetMetadata(
        path=file.resolve(), format=fmt, n_fovs=len(scenes), n_frames=shape.n_frames,
        n_channels=shape.n_channels, channel_names=channel_names, height=shape.height,
        width=shape.width, dtype=dtypes.pop(), times=times, time_unit=unit,
        pixel_size_um=float(pixel_size) if pixel_size else None,
        fov_names=tuple(str(scene) for scene in scenes), n_z=shape.n_z,
        fov_sizes=shape.fov_sizes,
    )


def _reader_class(file: Path, fmt: str) -> type:
    module, extra = _READERS[fmt]
    try:
        return __import__(module).Reader
    except ImportError as exc:
        hint = f"pip install 'fovflow[{extra}]'" if extra else "reinstall fovflow"
        raise UnsupportedFormatError(
            f"{file}: reading this format needs the {module.replace('_', '-')} plugin: {hint}"
        ) from exc


def _ome_metadata(image: Any) -> Any:
    try:
        return image.ome_metadata
    except NotImplementedError:
        return None


def _ome_images(ome: Any) -> list[tuple[list[Plane], float | None, Any]]:
    """Planes and time increment per image of ome-types metadata (none without metadata)."""
    if ome is None:
        return []
    return [([(p.the_c, p.the_z, p.the_t, p.delta_t, p.delta_t_unit) for p in image.pixels.planes],
             image.pixels.time_increment, image.pixels.time_increment_unit)
            for image in ome.images]


def _make_reader(metadata: DatasetMetadata) -> _PlaneReader:
    if metadata.format == "ome-tiff":
        return OmeTiffPages(metadata)
    if metadata.format == "czi":
        return CziPlanes(metadata)
    return _BioioPlanes(metadata)


class _BioioPlanes:
    """Any bioio-readable format, one plane at a time through bioio's lazy dask array."""

    def __init__(self, metadata: DatasetMetadata) -> None:
        from bioio import BioImage

        reader = _reader_class(metadata.path, metadata.format)
        self._image = BioImage(metadata.path, reader=reader)
        self._scene = -1

    def read(self, fov: int, channel: int, t: int, z: int) -> NDArray[Any]:
        if fov != self._scene:
            self._image.set_scene(fov)
            self._scene = fov
        return np.asarray(self._image.get_image_dask_data("YX", T=t, C=channel, Z=z).compute())

    def close(self) -> None:
        self._image = None
