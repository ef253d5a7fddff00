"""Traces, sample and fitted tables: read, write and validate, with errors naming file and column.

- traces (``fov_XXX/traces_ch_C.csv``, long): ``fov, cell, frame, time, good, position_x,
  position_y, parent, position_x_corrected, position_y_corrected, <features...>``, one row per
  cell and frame (the three lineage columns since tracking has lineage; ``parent`` is 0 in
  older tables).
- sample tables, wide: a first line ``# Time units: <unit>``, then ``time`` and one column per
  ``fov_XXX_cell_N`` (tables of the older PyAMA tool, in min, h or s, load too); long: the same
  header line, then ``time, fov, cell, value``.
- fitted tables: ``fov, cell, model, success, r_squared, rmse, <params>, ...`` after a
  ``# Fit: {json}`` line recording the settings that produced them.

With pyarrow installed (the ``parquet`` extra) every sample and fitted table also gets a
Parquet twin, ``<name>.parquet``, with the same columns; its header line (time unit, fit
settings) is in the Parquet file's key-value metadata under ``fovflow``.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fovflow.errors import ConfigError, TableError
from fovflow.io.store import write_parquet_twin, write_text_atomically

TRACE_COLUMNS = ("fov", "cell", "frame", "time", "good", "position_x", "position_y")
# Written since tracking has lineage, after position_y; older tables lack them (parent: 0).
LINEAGE_COLUMNS = ("parent", "position_x_corrected", "position_y_corrected")
# Every row must have these: a row without them cannot be placed. Positions and features may
# be empty (NaN): a feature that could not be measured in a frame; merge leaves it out.
_ID_COLUMNS = ("fov", "cell", "frame")
HOURS_PER_UNIT = {"h": 1.0, "min": 1 / 60, "s": 1 / 3600}
_UNIT_NAMES = {"h": "h", "hour": "h", "hours": "h", "min": "min", "minute": "min",
               "minutes": "min", "s": "s", "sec": "s", "second": "s", "seconds": "s",
               "frame": "frame", "frames": "frame"}
_HEADER = "# Time units:"
_CELL = re.compile(r"fov_(\d+)_cell_(\d+)\Z")


def time_unit(name: str, *, source: str = "") -> str:
    """The canonical unit (``h``, ``min``, ``s`` or ``frame``) for a unit name."""
    name = str(name).strip()
    unit = _UNIT_NAMES.get(name.lower())
    if unit is None:
        raise TableError(f"{source + ': ' if source else ''}unknown time unit {name!r}; "
                         f"use s, min, h or frame")
    return unit


def to_hours(times: np.ndarray, unit: str, *, frame_interval_h: float | None = None) -> np.ndarray:
    """Times converted to hours; frame indices need `frame_interval_h`."""
    if unit == "frame":
        if frame_interval_h is None:
            raise ConfigError("the times are frame indices; give the frame interval "
                              "(--frame-interval MINUTES) to fit models in hours")
        return np.asarray(times, dtype=float) * frame_interval_h
    return np.asarray(times, dtype=float) * HOURS_PER_UNIT[unit]


def cell_column(fov: int, cell: int) -> str:
    return f"fov_{fov:03d}_cell_{cell}"


@dataclass(frozen=True)
class SampleTable:
    """A wide table: `values` has a float ``time`` index and one column per cell."""

    values: pd.DataFrame
    time_unit: str

    @property
    def cells(self) -> list[tuple[int, int]]:
        """(fov, cell) of every column."""
        return [_parse_cell(name, "table") for name in self.values.columns]


def read_traces(path: str | Path) -> pd.DataFrame:
    """A traces CSV, checked: required columns, integer ids, boolean ``good``, numeric features.

    ``fov``, ``cell`` and ``frame`` must be whole numbers >= 0 and ``time`` a finite number in
    every row; positions and features may be empty (NaN: not measured in that frame).
    """
    path = Path(path)
    frame = _read_csv(path)
    missing = [c for c in TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}; a traces table has "
                         f"{', '.join(TRACE_COLUMNS)} and feature columns")
    for column in frame.columns.drop("good"):
        _require_numeric(frame, column, path)
    for column in (*_ID_COLUMNS, "time"):
        _require_finite(frame, column, path, whole=column != "time")
    good = frame["good"].astype(str).str.strip().str.lower()
    if not good.isin(["true", "false", "1", "0"]).all():
        bad = frame["good"][~good.isin(["true", "false", "1", "0"])].iloc[0]
        raise TableError(f"{path}: column 'good' must hold True/False, found {bad!r}")
    frame["good"] = good.isin(["true", "1"])
    if "parent" not in frame.columns:
        frame.insert(len(TRACE_COLUMNS), "parent", 0)
    _require_finite(frame, "parent", path, whole=True)
    return frame.astype({"fov": int, "cell": int, "frame": int, "parent": int})


def feature_columns(traces: pd.DataFrame) -> list[str]:
    """The feature columns of a traces table: all but the fixed and lineage columns."""
    return [c for c in traces.columns if c not in TRACE_COLUMNS and c not in LINEAGE_COLUMNS]


def read_any_table(path: str | Path) -> SampleTable:
    """A sample table of either shape `merge` writes: wide (fovflow's, or the older PyAMA
    tool's) or long (``time, fov, cell, value`` rows)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            handle.readline()  # the "# Time units:" line
            columns = handle.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        columns = []  # read_sample_table says what is wrong
    if {"fov", "cell", "value"} <= set(columns):
        return read_long_table(path)
    return read_sample_table(path)


def read_sample_table(path: str | Path) -> SampleTable:
    """A wide sample table (fovflow's or the older PyAMA tool's)."""
    path = Path(path)
    unit = _read_header(path)
    frame = _read_csv(path, skiprows=1)
    if "time" not in frame.columns:
        raise TableError(f"{path}: no 'time' column after the header line")
    for column in frame.columns:
        if column != "time":
            _parse_cell(column, path)
        _require_numeric(frame, column, path)
    _require_finite(frame, "time", path)
    if frame["time"].duplicated().any():
        repeated = frame["time"][frame["time"].duplicated()].iloc[0]
        raise TableError(f"{path}: time {repeated:g} appears in two rows; each row is one time")
    return SampleTable(frame.set_index("time").astype(float), unit)


def write_sample_table(table: SampleTable, path: str | Path) -> None:
    """Write a wide table atomically (a temporary file renamed when complete)."""
    header = f"{_HEADER} {table.time_unit}"
    written = write_text_atomically(Path(path),
                                    f"{header}\n" + table.values.to_csv(index_label="time"))
    write_parquet_twin(Path(path), table.values.rename_axis("time").reset_index(),
                       {"fovflow": header}, csv_written=written)


def to_long(table: SampleTable) -> pd.DataFrame:
    """``time, fov, cell, value`` rows for every non-missing value, by cell then time."""
    long = table.values.rename_axis(columns="column").stack().dropna().rename("value")
    long = long.reset_index()
    cells = pd.DataFrame(table.cells, columns=["fov", "cell"], index=table.values.columns)
    long = long.join(cells, on="column")
    return long[["time", "fov", "cell", "value"]].sort_values(["fov", "cell", "time"],
                                                              ignore_index=True)


def from_long(long: pd.DataFrame, unit: str) -> SampleTable:
    """The wide table of long rows (the inverse of `to_long`)."""
    long = long.assign(column=[cell_column(f, c) for f, c in zip(long.fov, long.cell, strict=True)])
    wide = long.pivot(index="time", columns="column", values="value").sort_index()
    order = sorted(wide.columns, key=lambda name: _parse_cell(name, "table"))
    return SampleTable(wide[order].rename_axis(columns=None).astype(float), unit)


def write_long_table(table: SampleTable, path: str | Path) -> None:
    header, long = f"{_HEADER} {table.time_unit}", to_long(table)
    written = write_text_atomically(Path(path), f"{header}\n" + long.to_csv(index=False))
    write_parquet_twin(Path(path), long, {"fovflow": header}, csv_written=written)


def read_long_table(path: str | Path) -> SampleTable:
    path = Path(path)
    unit = _read_header(path)
    long = _read_csv(path, skiprows=1)
    for column in ("time", "fov", "cell", "value"):
        if column not in long.columns:
            raise TableError(f"{path}: missing column {column!r} of a long table")
        _require_numeric(long, column, path)
    for column in ("time", "fov", "cell"):
        _require_finite(long, column, path, whole=column != "time")
    if long.duplicated(["time", "fov", "cell"]).any():
        raise TableError(f"{path}: a cell has two values at the same time")
    return from_long(long.astype({"fov": int, "cell": int}), unit)


def write_fitted_table(fitted: pd.DataFrame, path: str | Path, settings: dict[str, Any]) -> None:
    """Write fitted parameters after a ``# Fit:`` line holding `settings` as JSON."""
    header = f"# Fit: {json.dumps(settings, sort_keys=True)}"
    written = write_text_atomically(Path(path), f"{header}\n" + fitted.to_csv(index=False))
    write_parquet_twin(Path(path), fitted, {"fovflow": header}, csv_written=written)


def read_fitted_table(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The fitted table and the settings recorded with it."""
    path = Path(path)
    first = _first_line(path)
    if not first.startswith("# Fit:"):
        raise TableError(f"{path}: not a fitted table (first line must be '# Fit: {{...}}')")
    try:
        settings = json.loads(first.removeprefix("# Fit:"))
    except json.JSONDecodeError as exc:
        raise TableError(f"{path}: the '# Fit:' line is not valid JSON: {exc}") from None
    fitted = _read_csv(path, skiprows=1)
    for column in ("fov", "cell", "model", "success", "r_squared", "rmse"):
        if column not in fitted.columns:
            raise TableError(f"{path}: missing column {column!r} of a fitted table")
    return fitted, settings


def _read_header(path: Path) -> str:
    first = _first_line(path)
    if not first.startswith(_HEADER):
        raise TableError(f"{path}: the first line must be '{_HEADER} <unit>', not {first[:60]!r}")
    return time_unit(first.removeprefix(_HEADER), source=str(path))


def _first_line(path: Path) -> str:
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().strip()
    except UnicodeDecodeError:
        raise TableError(f"{path}: not a text table (it is not UTF-8 text)") from None


def _read_csv(path: Path, skiprows: int = 0) -> pd.DataFrame:
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, skiprows=skiprows)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        problem = " ".join(str(exc).split())  # pandas' messages can end in a newline
        raise TableError(f"{path}: not a readable CSV table: {problem}") from None
    if _first_row_too_long(path, skiprows):
        raise TableError(f"{path}: the first row has more values than the header has columns")
    return frame


def _first_row_too_long(path: Path, skiprows: int) -> bool:
    """Whether the first data row is longer than the header (pandas would silently turn its
    extra leading values into an index; a longer later row is a pandas `ParserError`)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = (row for row in itertools.islice(csv.reader(handle), skiprows, None) if row)
            header, first = next(rows, []), next(rows, [])
    except csv.Error:  # pandas has read it; leave odd quoting to pandas
        return False
    return len(first) > len(header)


def _require_numeric(frame: pd.DataFrame, column: str, path: Path) -> None:
    values = frame[column]
    flags = values.map(lambda value: isinstance(value, bool | np.bool_)) if (
        values.dtype == object) else pd.Series(values.dtype == bool, index=values.index)
    if flags.any():  # pandas reads True/False as booleans, which would pass as 1 and 0
        raise TableError(f"{path}: column {column!r} must be numeric, found "
                         f"{bool(values[flags].iloc[0])} in row {int(np.argmax(flags)) + 1}")
    converted = pd.to_numeric(frame[column], errors="coerce")
    bad = converted.isna() & frame[column].notna()
    if bad.any():
        raise TableError(f"{path}: column {column!r} must be numeric, found "
                         f"{frame[column][bad].iloc[0]!r} in row {int(np.argmax(bad)) + 1}")
    frame[column] = converted


def _require_finite(frame: pd.DataFrame, column: str, path: Path, *, whole: bool = False) -> None:
    """`column` (already numeric) must hold a finite value, and with `whole` an index >= 0."""
    values = frame[column].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if whole:
        bad |= ~bad & ((values < 0) | (values != np.round(values)) | (values > 2**53))
    if bad.any():
        row = int(np.argmax(bad))
        value = frame[column].iloc[row]
        found = "an empty value" if pd.isna(value) else repr(value)
        kind = "a whole number >= 0" if whole else "a finite number"
        raise TableError(f"{path}: column {column!r} must hold {kind} in every row, found "
                         f"{found} in row {row + 1}")


def _parse_cell(name: str, source: object) -> tuple[int, int]:
    match = _CELL.match(str(name))
    if match is None:
        raise TableError(f"{source}: column {name!r} is not named fov_XXX_cell_N")
    return int(match.group(1)), int(match.group(2))

