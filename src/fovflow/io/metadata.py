"""What a microscopy file holds, whatever its format: `DatasetMetadata` and the rules every
reader applies (FOVs alike, 2-D planes, acquisition times in seconds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fovflow.errors import UnsupportedFormatError

FRAME_UNIT = "frame"
_SECONDS_PER_UNIT = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

Times = tuple[tuple[float, ...], ...]
# One OME plane: TheC, TheZ, TheT, DeltaT and its unit (None when the file records none).
Plane = tuple[int, int, int, float | None, Any]


@dataclass(frozen=True)
class DatasetMetadata:
    """What a microscopy file holds. All FOVs share frame count, channels and frame size.

    `times` has one row per FOV and one column per frame, in `time_unit`: seconds when the file
    records acquisition times, else the frame index with unit ``"frame"``.
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

    @property
    def has_times(self) -> bool:
        return self.time_unit != FRAME_UNIT

    def as_dict(self) -> dict[str, Any]:
        """Plain types only (for JSON and YAML)."""
        return {
            "path": str(self.path), "format": self.format, "n_fovs": self.n_fovs,
            "n_frames": self.n_frames, "n_channels": self.n_channels,
            "channel_names": list(self.channel_names), "height": self.height, "width": self.width,
            "dtype": self.dtype, "time_unit": self.time_unit,
            "times": [list(t) for t in self.times],
            "pixel_size_um": self.pixel_size_um, "fov_names": list(self.fov_names),
        }


def common_shape(file: Path, shapes: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """The sizes (``{"T": ..., "C": ..., "Y": ..., "X": ...}``) every FOV of `file` shares.

    Raises
    ------
    UnsupportedFormatError
        If FOVs differ, or a FOV holds Z stacks or RGB samples.
    """
    first = {axis: int(size) for axis, size in shapes[0].items()}
    if any(dict(shape) != first for shape in shapes):
        raise UnsupportedFormatError(
            f"{file}: its FOVs differ in size or frame count; fovflow needs every FOV alike"
        )
    if first.get("Z", 1) != 1:
        raise UnsupportedFormatError(f"{file}: has {first['Z']} Z planes; fovflow reads 2-D "
                                     "time-lapses: project or pick one Z plane first")
    if first.get("S", 1) != 1:
        raise UnsupportedFormatError(f"{file}: holds RGB samples; convert to one channel per "
                                     "fluorophore first")
    return {"T": 1, "C": 1, **first}


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


def frame_indices(n_fovs: int, n_frames: int) -> tuple[Times, str]:
    return tuple(tuple(float(t) for t in range(n_frames)) for _ in range(n_fovs)), FRAME_UNIT


def _seconds_per(unit: Any) -> float:
    symbol = getattr(unit, "value", unit) or "s"  # ome-types enums or plain OME-XML strings
    if symbol not in _SECONDS_PER_UNIT:
        raise ValueError(f"unknown time unit {symbol!r}")
    return _SECONDS_PER_UNIT[symbol]
