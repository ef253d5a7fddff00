"""What a microscopy file holds, whatever its format: `DatasetMetadata` and the rules every
reader applies (FOVs share frames, channels and Z planes; acquisition times in seconds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fovflow.errors import (
    ConfigError,
    CorruptFileError,
    IndexOutOfRangeError,
    UnsupportedFormatError,
)
from fovflow.ranges import format_ranges

FRAME_UNIT = "frame"
Z_PROJECTIONS = ("max", "mean")
_SECONDS_PER_UNIT = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

Times = tuple[tuple[float, ...], ...]
# One OME plane: TheC, TheZ, TheT, DeltaT and its unit (None when the file records none).
Plane = tuple[int, int, int, float | None, Any]


@dataclass(frozen=True)
class DatasetMetadata:
    """What a microscopy file holds. All FOVs share frame count, channels and Z planes.

    `times` has one row per FOV and one column per frame, in `time_unit`: seconds when the file
    records acquisition times, else the frame index with unit ``"frame"``.

    `height` and `width` are every FOV's frame size; when FOVs differ (mosaic scenes of a CZI),
    `fov_sizes` holds each FOV's ``(height, width)`` and `height`/`width` are the largest.
    `z` is how a frame is made from a Z stack: a plane index, ``"max"`` or ``"mean"``
    (a projection of the `n_z` planes); ``None`` for 2-D files and for a Z stack not yet told.
    """

    path: Path
    format: str
    n_fovs: int
    n_frames: int
    n_channels: int
    channel_names: tuple[str, ...]
    height: int
    width: int
    dtype: str
    times: Times
    time_unit: str
    pixel_size_um: float | None
    fov_names: tuple[str, ...]
    n_z: int = 1
    z: int | str | None = None
    fov_sizes: tuple[tuple[int, int], ...] = ()

    @property
    def has_times(self) -> bool:
        return self.time_unit != FRAME_UNIT

    def frame_shape(self, fov: int) -> tuple[int, int]:
        """``(height, width)`` of the frames of `fov`."""
        return self.fov_sizes[fov] if self.fov_sizes else (self.height, self.width)

    def with_z(self, z: Any) -> DatasetMetadata:
        """This metadata reading Z stacks as `z`: a plane index, ``"max"`` or ``"mean"``.

        A 2-D file takes any of them (its one plane is its projection) and keeps ``None``.

        Raises
        ------
        IndexOutOfRangeError
            If `z` is a plane the file does not have.
        ConfigError
            If `z` is neither a plane index, ``"max"`` nor ``"mean"``.
        """
        z = z_selection(z)
        if isinstance(z, int) and not 0 <= z < self.n_z:
            raise IndexOutOfRangeError(
                f"{self.path}: Z plane {z} is out of range; the file has {self.n_z} Z "
                f"plane{'s' if self.n_z != 1 else ''} (0 to {self.n_z - 1})")
        return replace(self, z=z if self.n_z > 1 else None)

    def as_dict(self) -> dict[str, Any]:
        """Plain types only (for JSON and YAML)."""
        return {
            "path": str(self.path), "format": self.format, "n_fovs": self.n_fovs,
            "n_frames": self.n_frames, "n_channels": self.n_channels,
            "channel_names": list(self.channel_names), "height": self.height, "width": self.width,
            "dtype": self.dtype, "time_unit": self.time_unit,
            "times": [list(t) for t in self.times],
            "pixel_size_um": self.pixel_size_um, "fov_names": list(self.fov_names),
            "n_z": self.n_z, "z": self.z, "fov_sizes": [list(size) for size in self.fov_sizes],
        }


def z_selection(value: Any) -> int | str | None:
    """`value` as a Z selection: ``None``, a plane index (``2`` or ``"2"``), ``"max"`` or
    ``"mean"``.

    Raises
    ------
    ConfigError
        For anything else.
    """
    if value is None or value in Z_PROJECTIONS:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"z must be a Z plane index (0, 1, ...), max or mean, not {value!r}")


@dataclass(frozen=True)
class FileShape:
    """The sizes every FOV of a file shares, and each FOV's frame size when they differ."""

    n_frames: int
    n_channels: int
    n_z: int
    height: int
    width: int
    fov_sizes: tuple[tuple[int, int], ...]


def shared_shape(file: Path, shapes: Sequence[Mapping[str, int]]) -> FileShape:
    """What the FOVs of `file` share, from each FOV's axis sizes (``{"T": .., "Y": .., ...}``).

    FOVs may differ in frame size (`FileShape.fov_sizes` then lists each), not in frames,
    channels or Z planes.

    Raises
    ------
    UnsupportedFormatError
        If FOVs differ in frames, channels or Z planes (naming which), or hold RGB samples.
    """
    planes = [(int(s.get("T", 1)), int(s.get("C", 1)), int(s.get("Z", 1))) for s in shapes]
    if len(set(planes)) > 1:
        groups = _group_fovs(planes)
        described = "; ".join(f"{_fovs(fovs)}: {t} frames, {c} channels, {z} Z planes"
                              for (t, c, z), fovs in groups.items())
        raise UnsupportedFormatError(
            f"{file}: its FOVs differ in frames, channels or Z planes ({described}); "
            "fovflow needs them alike: export each group as its own file")
    if any(int(s.get("S", 1)) != 1 for s in shapes):
        raise UnsupportedFormatError(f"{file}: holds RGB samples; convert to one channel per "
                                     "fluorophore first")
    sizes = tuple((int(s["Y"]), int(s["X"])) for s in shapes)
    n_frames, n_channels, n_z = planes[0]
    return FileShape(n_frames=n_frames, n_channels=n_channels, n_z=n_z,
                     height=max(h for h, _ in sizes), width=max(w for _, w in sizes),
                     fov_sizes=sizes if len(set(sizes)) > 1 else ())


def describe_sizes(fov_sizes: Sequence[tuple[int, int]]) -> str:
    """``"FOVs 0,2: 64 x 64 px; FOV 1: 122 x 295 px"``: which FOVs share which frame size."""
    return "; ".join(f"{_fovs(fovs)}: {h} x {w} px"
                     for (h, w), fovs in _group_fovs(fov_sizes).items())


def _fovs(fovs: Sequence[int]) -> str:
    return f"FOV{'s' if len(fovs) > 1 else ''} {format_ranges(fovs)}"


def _group_fovs(values: Sequence[Any]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for fov, value in enumerate(values):
        groups.setdefault(value, []).append(fov)
    return groups


def acquisition_times(
    images: Sequence[tuple[Sequence[Plane], float | None, Any]], n_fovs: int, n_frames: int,
) -> tuple[Times, str]:
    """Per-FOV, per-frame times in seconds, from each image's planes and time increment.

    `images` holds, per FOV, its planes and its ``TimeIncrement`` with unit. A FOV's times
    come from the ``DeltaT`` of its first channel's planes when every frame has one, else
    from ``TimeIncrement``; when some FOV has neither, every FOV gets frame indices instead.
    """
    if len(images) < n_fovs:
        return frame_indices(n_fovs, n_frames)
    rows = []
    for planes, increment, increment_unit in images[:n_fovs]:
        times = {t: delta * _seconds_per(unit) for c, z, t, delta, unit in planes
                 if c == 0 and z == 0 and delta is not None}
        if len(times) == n_frames:
            rows.append(tuple(times[t] for t in range(n_frames)))
        elif increment:
            step = increment * _seconds_per(increment_unit)
            rows.append(tuple(step * t for t in range(n_frames)))
        else:
            return frame_indices(n_fovs, n_frames)
    return tuple(rows), "s"


def unreadable(file: Path, fmt: str, cause: BaseException) -> CorruptFileError:
    """The error for a file its reader cannot parse, with the reader's own reason in one line."""
    reason = " ".join(str(cause).split()) or type(cause).__name__
    return CorruptFileError(f"{file}: cannot be read as {fmt} ({type(cause).__name__}: {reason});"
                            " it is truncated, damaged or of another format: re-export or re-copy"
                            " it")


def frame_indices(n_fovs: int, n_frames: int) -> tuple[Times, str]:
    return tuple(tuple(float(t) for t in range(n_frames)) for _ in range(n_fovs)), FRAME_UNIT


def _seconds_per(unit: Any) -> float:
    symbol = getattr(unit, "value", unit) or "s"  # ome-types enums or plain OME-XML strings
    if symbol not in _SECONDS_PER_UNIT:
        raise ValueError(f"unknown time unit {symbol!r}")
    return _SECONDS_PER_UNIT[symbol]
