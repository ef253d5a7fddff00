"""Acquisition times of a CZI file, read from its segments (the ZISRAW layout Zeiss documents).

libCZI's Python binding (pylibCZIrw) gives pixels and the document XML but neither the
subblocks' own metadata nor the attachments, which is where a CZI keeps its times:

- every subblock's XML may carry ``<AcquisitionTime>`` (an ISO 8601 instant): per scene, per
  frame, so each FOV gets its own times;
- the ``TimeStamps`` attachment holds one time per T index (seconds), shared by all scenes.

Only the directory, the subblock headers and their metadata are read, never pixel data.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

_SEGMENT_HEADER = 32  # Id char[16], AllocatedSize int64, UsedSize int64
_DIRECTORY_ENTRY_FIXED = 32  # "DV", pixel type .. dimension count
_DIMENSION_ENTRY = 20  # name char[4], start, size, start coordinate, stored size
_ATTACHMENT_ENTRY = 128
_ACQUISITION_TIME = re.compile(rb"<AcquisitionTime>\s*([^<\s]+)\s*</AcquisitionTime>")


@dataclass(frozen=True)
class Subblock:
    """Where one subblock sits in the file and its start index per dimension (T, C, Z, S, M...)."""

    position: int
    start: dict[str, int]


def subblock_times(file: Path) -> dict[tuple[int, int], float]:
    """Seconds since the Unix epoch per ``(scene, t)``: the earliest subblock acquisition time
    of that scene and frame (over channels, Z planes and mosaic tiles). Empty when no
    subblock records one.

    Notes
    -----
    One small read per subblock (its header and metadata); O(subblocks).
    """
    times: dict[tuple[int, int], float] = {}
    with file.open("rb") as handle:
        for block in _subblocks(handle):  # a list: reading times moves the file position
            stamp = _acquisition_time(handle, block.position)
            if stamp is None:
                continue
            key = (block.start.get("S", 0), block.start.get("T", 0))
            times[key] = min(stamp, times.get(key, stamp))
    return times


def timestamps_attachment(file: Path) -> list[float]:
    """The ``TimeStamps`` attachment's times, in seconds (one per T index); empty without one."""
    with file.open("rb") as handle:
        header = _read(handle, 0, _SEGMENT_HEADER + 80)
        (directory,) = struct.unpack_from("<q", header, _SEGMENT_HEADER + 72)
        if directory <= 0:
            return []
        (count,) = struct.unpack_from("<i", _read(handle, directory, _SEGMENT_HEADER + 4),
                                      _SEGMENT_HEADER)
        entries = _read(handle, directory + _SEGMENT_HEADER + 256, count * _ATTACHMENT_ENTRY)
        for index in range(count):
            entry = entries[index * _ATTACHMENT_ENTRY:(index + 1) * _ATTACHMENT_ENTRY]
            (position,) = struct.unpack_from("<q", entry, 12)
            content_type = entry[40:48].rstrip(b"\0")
            if content_type == b"CZTIMS":
                data = _read(handle, position + _SEGMENT_HEADER + 256, 8)
                _, n_times = struct.unpack("<ii", data)
                values = _read(handle, position + _SEGMENT_HEADER + 256 + 8, 8 * n_times)
                return list(struct.unpack(f"<{n_times}d", values))
    return []


def _subblocks(handle: BinaryIO) -> list[Subblock]:
    """The subblock directory's entries (file position and dimension starts)."""
    header = _read(handle, 0, _SEGMENT_HEADER + 60)
    if header[:10] != b"ZISRAWFILE":
        raise ValueError("not a CZI file (no ZISRAWFILE header)")
    (directory,) = struct.unpack_from("<q", header, _SEGMENT_HEADER + 52)
    (count,) = struct.unpack_from("<i", _read(handle, directory, _SEGMENT_HEADER + 4),
                                  _SEGMENT_HEADER)
    handle.seek(directory + _SEGMENT_HEADER + 128)  # past the count and its reserved bytes
    blocks = []
    for _ in range(count):
        fixed = handle.read(_DIRECTORY_ENTRY_FIXED)
        if len(fixed) < _DIRECTORY_ENTRY_FIXED or fixed[:2] != b"DV":
            raise ValueError("the subblock directory ends early or is damaged")
        (position,) = struct.unpack_from("<q", fixed, 6)
        (n_dimensions,) = struct.unpack_from("<i", fixed, 28)
        dimensions = handle.read(n_dimensions * _DIMENSION_ENTRY)
        start = {}
        for offset in range(0, len(dimensions), _DIMENSION_ENTRY):
            name = dimensions[offset:offset + 4].rstrip(b"\0").decode("ascii", "replace")
            (start[name],) = struct.unpack_from("<i", dimensions, offset + 4)
        blocks.append(Subblock(position, start))
    return blocks


def _acquisition_time(handle: BinaryIO, position: int) -> float | None:
    """The subblock's ``AcquisitionTime`` in seconds since the Unix epoch, if it has one."""
    fixed = _read(handle, position, _SEGMENT_HEADER + 16 + _DIRECTORY_ENTRY_FIXED)
    metadata_size, _, _ = struct.unpack_from("<iiq", fixed, _SEGMENT_HEADER)
    (n_dimensions,) = struct.unpack_from("<i", fixed, _SEGMENT_HEADER + 16 + 28)
    # The metadata follows the header part, which is padded to at least 256 bytes.
    header_part = max(256, 16 + _DIRECTORY_ENTRY_FIXED + n_dimensions * _DIMENSION_ENTRY)
    if metadata_size <= 0:
        return None
    match = _ACQUISITION_TIME.search(_read(handle, position + _SEGMENT_HEADER + header_part,
                                           metadata_size))
    return _seconds(match.group(1).decode("ascii", "replace")) if match else None


def _seconds(instant: str) -> float | None:
    """ISO 8601 with up to 7 decimals (Zeiss writes 100 ns ticks) and a ``Z`` or offset."""
    text = instant.replace("Z", "+00:00")
    date, _, rest = text.partition(".")
    if rest:
        digits = re.match(r"\d*", rest).group()
        fraction = float(f"0.{digits}") if digits else 0.0
        text = date + rest[len(digits):]
    else:
        fraction = 0.0
    try:
        return datetime.fromisoformat(text).timestamp() + fraction
    except ValueError:
        return None


def _read(handle: BinaryIO, position: int, size: int) -> bytes:
    handle.seek(position)
    data = handle.read(size)
    if len(data) < size:
        raise ValueError(f"the file ends inside a segment at byte {position}")
    return data
