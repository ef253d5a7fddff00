"""A FOV's lineage and stage shifts in the run folder: ``lineage.csv`` and ``shifts.csv``.

``lineage.csv``: ``track, parent, first_frame, last_frame, division_frame`` per track (parent 0:
none; division_frame: the first frame of its daughters, -1 if it did not divide).
``shifts.csv``: ``frame, dy, dx, y, x`` per frame: the stage shift against the previous frame
that tracking undid, and its sum since frame 0, in pixels.

Run folders made before lineage existed have neither file; `run_lineage` then says so with
None, and every track counts as one without parent.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fovflow.errors import TableError
from fovflow.io.layout import LINEAGE_NAME, fov_dir
from fovflow.io.store import write_columns_csv
from fovflow.processing.lineage import Lineage

__all__ = ["read_lineage", "run_lineage", "write_lineage", "write_shifts"]

_LINEAGE_COLUMNS = ("track", "parent", "first_frame", "last_frame", "division_frame")


def write_lineage(path: Path, lineage: Lineage) -> None:
    """Write `lineage` as ``lineage.csv``."""
    write_columns_csv(path, {"track": lineage.track, "parent": lineage.parent,
                             "first_frame": lineage.first_frame,
                             "last_frame": lineage.last_frame,
                             "division_frame": lineage.division_frame})


def write_shifts(path: Path, shifts: NDArray[np.float64]) -> None:
    """Write per-frame stage shifts (T, 2: dy, dx) and their running sums as ``shifts.csv``."""
    total = np.cumsum(shifts, axis=0)
    write_columns_csv(path, {"frame": np.arange(len(shifts)), "dy": shifts[:, 0],
                             "dx": shifts[:, 1], "y": total[:, 0], "x": total[:, 1]})


def read_lineage(path: str | os.PathLike[str]) -> Lineage:
    """The lineage in a ``lineage.csv`` (or a truth ``lineage.csv`` of `fovflow simulate`).

    Raises
    ------
    TableError
        If the file is missing, lacks a column or holds anything but whole numbers.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            header = handle.readline().strip().split(",")
            rows = handle.read()
            values = (np.loadtxt(io.StringIO(rows), delimiter=",", dtype=np.int64, ndmin=2)
                      if rows.strip() else np.zeros((0, len(header)), np.int64))  # no cells
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TableError(f"{path}: not a lineage table of whole numbers ({exc})") from None
    missing = [name for name in _LINEAGE_COLUMNS[:4] if name not in header]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}; a lineage table has "
                         f"{', '.join(_LINEAGE_COLUMNS)}")
    column = {name: values[:, header.index(name)] for name in _LINEAGE_COLUMNS[:4]}
    return Lineage(column["track"], column["parent"], column["first_frame"],
                   column["last_frame"])


def run_lineage(run_dir: str | os.PathLike[str], fov: int) -> Lineage | None:
    """The lineage of FOV `fov` of a run folder, or None for a run made before lineage."""
    path = fov_dir(Path(run_dir), fov) / LINEAGE_NAME
    return read_lineage(path) if path.is_file() else None
