"""Fit sample tables: one table or every table of a folder, skipping finished ones.

Each table ``<name>.csv`` gets ``<name>_fitted_<model>.csv`` beside it (and, on request,
``<name>_fitted_<model>_curves.csv``, the fitted curves as a wide table). A fitted table is
complete and current when it exists and records the same settings; it is then skipped unless
``force``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fovflow.analysis.fitting import FitSettings, Progress, fit_traces
from fovflow.errors import TableError
from fovflow.io.tables import (
    SampleTable,
    read_fitted_table,
    read_sample_table,
    to_hours,
    write_fitted_table,
    write_sample_table,
)
from fovflow.workflow.cancel import CancelToken
from fovflow.workflow.executors import Executor, make_executor


@dataclass(frozen=True)
class TableFitted:
    """Event: one table's fitted table was written (or was already complete: ``skipped``)."""

    table: Path
    output: Path
    n_cells: int
    n_success: int
    skipped: bool = False


def fitted_path(table: Path, model: str) -> Path:
    return table.with_name(f"{table.stem}_fitted_{model}.csv")


def sample_tables(path: str | Path) -> list[Path]:
    """`path` itself, or every sample table in the folder `path` (not fitted tables or curves)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise TableError(f"{path}: no such table or folder")
    tables = [p for p in sorted(path.glob("*.csv")) if "_fitted_" not in p.stem
              and not p.stem.endswith("_summary")]
    if not tables:
        raise TableError(f"{path}: holds no sample tables (*.csv)")
    return tables


def fit_tables(
    tables: Iterable[Path],
    settings: FitSettings,
    *,
    n_workers: int = 1,
    frame_interval_h: float | None = None,
    curves: bool = False,
    force: bool = False,
    on_event: Callable[[TableFitted], None] | None = None,
    progress: Callable[[Path], Progress] | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Fit every table in turn; return the fitted tables' paths.

    Parameters
    ----------
    progress : callable, optional
        Given a table, returns the ``progress(done, total)`` callback for its traces.
    on_event : callable, optional
        Receives a `TableFitted` as soon as each table's output is written or skipped.
    """
    record = asdict(settings) | {"frame_interval_h": frame_interval_h}
    del record["plugins"]  # where a model came from does not change its fit
    outputs = []
    kind = "process" if n_workers > 1 else "serial"
    with make_executor(kind, n_workers=n_workers) as pool:  # one pool for every table
        for table_path in tables:
            outputs.append(_fit_one(table_path, settings, _jsonable(record), pool, force=force,
                                    curves=curves, frame_interval_h=frame_interval_h,
                                    progress=progress, cancel=cancel, on_event=on_event))
    return outputs


def _fit_one(
    table_path: Path,
    settings: FitSettings,
    record: dict[str, object],
    pool: Executor,
    *,
    force: bool,
    curves: bool,
    frame_interval_h: float | None,
    progress: Callable[[Path], Progress] | None,
    cancel: CancelToken | None,
    on_event: Callable[[TableFitted], None] | None,
) -> Path:
    output = fitted_path(table_path, settings.model)
    # The table's digest is part of the record: a table merged anew is fitted anew.
    record = {**record, "table_sha256": hashlib.sha256(table_path.read_bytes()).hexdigest()}
    if not force and output.is_file() and _recorded(output) == record:
        fitted, _ = read_fitted_table(output)
        event = TableFitted(table_path, output, len(fitted), int(fitted.success.sum()), True)
    else:
        table = read_sample_table(table_path)
        fitted = fit_table(table, settings, executor=pool, frame_interval_h=frame_interval_h,
                           cancel=cancel, progress=progress(table_path) if progress else None)
        write_fitted_table(fitted, output, record)
        if curves:
            write_sample_table(fitted_curves(table, fitted, settings, frame_interval_h),
                               output.with_name(f"{output.stem}_curves.csv"))
        event = TableFitted(table_path, output, len(fitted), int(fitted.success.sum()))
    if on_event is not None:
        on_event(event)
    return output


def fit_table(
    table: SampleTable,
    settings: FitSettings,
    *,
    n_workers: int = 1,
    executor: str | Executor = "process",
    frame_interval_h: float | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """Fit every cell of a wide table: ``fov, cell, model, success, r_squared, rmse, <params>,
    n_points, message``."""
    times_h = to_hours(table.values.index.to_numpy(), table.time_unit,
                       frame_interval_h=frame_interval_h)
    values = table.values.to_numpy()
    if not len(times_h):  # a table without rows (no cell ever found): every cell fails, no crash
        times_h, values = np.zeros(1), np.full((1, values.shape[1]), np.nan)
    fits = fit_traces(settings, times_h, values, n_workers=n_workers,
                      executor=executor, progress=progress, cancel=cancel)
    ids = pd.DataFrame(table.cells, columns=["fov", "cell"]).assign(model=settings.model)
    model = settings.resolve()
    fits = fits.reset_index(drop=True)
    first = ["success", "r_squared", "rmse"]
    return pd.concat([ids, fits[first], fits[list(model.names)], fits[["n_points", "message"]]],
                     axis=1)


def fitted_curves(
    table: SampleTable, fitted: pd.DataFrame, settings: FitSettings,
    frame_interval_h: float | None = None,
) -> SampleTable:
    """The fitted curves at the table's times (NaN for failed fits), as a wide table."""
    model = settings.resolve()
    times_h = to_hours(table.values.index.to_numpy(), table.time_unit,
                       frame_interval_h=frame_interval_h)
    columns = {
        name: model.evaluate(times_h, row[list(model.names)].to_dict()) if row.success
        else np.full(len(times_h), np.nan)
        for name, (_, row) in zip(table.values.columns, fitted.iterrows(), strict=True)
    }
    return SampleTable(pd.DataFrame(columns, index=table.values.index), table.time_unit)


def _recorded(output: Path) -> dict[str, object] | None:
    try:
        return read_fitted_table(output)[1]
    except TableError:
        return None


def _jsonable(record: dict[str, object]) -> dict[str, object]:
    """The settings as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(record))
