"""Fit sample tables: one table or every table of a folder, skipping finished ones.

Each table ``<name>.csv`` gets ``<name>_fitted_<model>.csv`` beside it (and, on request,
``<name>_fitted_<model>_curves.csv``, the fitted curves as a wide table, and the plots and
summary of `fovflow.analysis.report` in ``report/``); with pyarrow, each CSV has a Parquet
twin (`fovflow.io.tables`). A fitted table is complete and current
when it exists and records the same settings and table; it is then skipped unless ``force``.
A fit with other settings (or of a table merged anew) does not replace the previous result:
the previous fitted table, curves and report are kept under names ending ``_previous_<time>``
(the time the previous fit was written).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fovflow.analysis.diagnostics import fit_notes
from fovflow.analysis.fitting import (
    RESULT_COLUMNS,
    FitSettings,
    Progress,
    fit_traces,
    fitting_spec,
    uncertainty_columns,
)
from fovflow.analysis.report import report_paths, write_report
from fovflow.errors import TableError
from fovflow.execution import CancelToken, Executor
from fovflow.io.layout import parquet_name
from fovflow.io.tables import (
    SampleTable,
    read_any_table,
    read_fitted_table,
    to_hours,
    write_fitted_table,
    write_sample_table,
)

DEFAULT_FEATURE = "intensity_total"
_MERGED = re.compile(r"_ch_\d+\Z")  # the end of a table `merge` wrote: <sample>_<feature>_ch_<c>


@dataclass(frozen=True)
class TableFitted:
    """Event: one table's fitted table was written (or was already complete: ``skipped``).

    ``previous`` is where the result of earlier, different settings was kept; ``notes`` are
    `fit_notes` on the fits; ``report`` the report files written.
    """

    table: Path
    output: Path
    n_cells: int
    n_success: int
    skipped: bool = False
    previous: Path | None = None
    notes: tuple[str, ...] = ()
    report: tuple[Path, ...] = ()


def fitted_path(table: Path, model: str) -> Path:
    return table.with_name(f"{table.stem}_fitted_{model}.csv")


def sample_tables(path: str | Path, *, feature: str | None = DEFAULT_FEATURE) -> list[Path]:
    """`path` itself, or the sample tables in the folder `path` (not fitted tables or curves).

    In a folder, tables `merge` wrote for another feature than `feature` are left out (all are
    listed when `feature` is None); tables named otherwise (e.g. the older PyAMA tool's) are
    always listed.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise TableError(f"{path}: no such table or folder")
    tables = [p for p in sorted(path.glob("*.csv")) if "_fitted_" not in p.stem
              and not p.stem.endswith("_summary")]
    if not tables:
        raise TableError(f"{path}: holds no sample tables (*.csv)")
    chosen = [p for p in tables if feature is None or not _MERGED.search(p.stem)
              or re.search(rf"_{re.escape(feature)}_ch_\d+\Z", p.stem)]
    if not chosen:
        raise TableError(f"{path}: holds no {feature} tables; choose another feature (e.g. "
                         f"--feature area) or one table")
    return chosen


def fit_tables(
    tables: Iterable[Path],
    settings: FitSettings,
    *,
    n_workers: int | None = 1,
    frame_interval_h: float | None = None,
    curves: bool = False,
    report: bool = False,
    force: bool = False,
    on_event: Callable[[TableFitted], None] | None = None,
    progress: Callable[[Path], Progress] | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Fit every table in turn; return the fitted tables' paths.

    Parameters
    ----------
    n_workers : int or None
        1 fits in the caller's thread, more in as many worker processes, shared by every
        table (None: one per core).
    curves, report : bool
        Also write the fitted curves beside the table, the plots and summary in ``report/``
        (for a skipped table too).
    progress : callable, optional
        Given a table, returns the ``progress(done, total)`` callback for its traces.
    on_event : callable, optional
        Receives a `TableFitted` as soon as each table's output is written or skipped.
    """
    record = asdict(settings) | {"frame_interval_h": frame_interval_h}
    del record["plugins"]  # where a model came from does not change its fit
    outputs = []
    with fitting_spec(n_workers).build() as pool:  # one pool for every table
        for table_path in tables:
            job = _Job(table_path, settings, frame_interval_h, _jsonable(record))
            event = job.run(pool, force=force, curves=curves, report=report, progress=progress,
                            cancel=cancel)
            outputs.append(event.output)
            if on_event is not None:
                on_event(event)
    return outputs


@dataclass(frozen=True)
class _Job:
    """One table to fit, with the settings record its fitted table carries."""

    table_path: Path
    settings: FitSettings
    frame_interval_h: float | None
    record: dict[str, object]

    def run(self, pool: Executor, *, force: bool, curves: bool, report: bool,
            progress: Callable[[Path], Progress] | None,
            cancel: CancelToken | None) -> TableFitted:
        output = fitted_path(self.table_path, self.settings.model)
        # The table's digest is part of the record: a table merged anew is fitted anew.
        digest = hashlib.sha256(self.table_path.read_bytes()).hexdigest()
        record = {**self.record, "table_sha256": digest}
        current = _recorded(output) == record
        table = read_any_table(self.table_path)
        previous = None
        if current and not force:
            fitted, _ = read_fitted_table(output)
        else:
            if output.is_file() and not current:
                previous = self._keep_previous(output)
            fitted = fit_table(table, self.settings, executor=pool,
                               frame_interval_h=self.frame_interval_h, cancel=cancel,
                               progress=progress(self.table_path) if progress else None)
            write_fitted_table(fitted, output, record)
        if curves:
            write_sample_table(self.curves(table, fitted), _curves_path(output))
        written: list[Path] = []
        kept = report_paths(self.report_dir, self.table_path.stem, self.settings.model)
        if report and current and not force and all(path.is_file() for path in kept):
            written = kept  # the report of this very fit: a rerun leaves it alone
        elif report:
            written = write_report(table, fitted, self.curves(table, fitted),
                                   [p.name for p in self.settings.resolve().free],
                                   name=self.table_path.stem, model=self.settings.model,
                                   out_dir=self.report_dir, frame_interval_h=self.frame_interval_h,
                                   units=self.units)
        return TableFitted(self.table_path, output, len(fitted), int(fitted.success.sum()),
                           current and not force, previous,
                           tuple(fit_notes(fitted, self.settings.resolve())), tuple(written))

    @property
    def units(self) -> dict[str, str]:
        return {p.name: p.unit for p in self.settings.resolve().parameters}

    @property
    def report_dir(self) -> Path:
        return self.table_path.parent / "report"

    def curves(self, table: SampleTable, fitted: pd.DataFrame) -> SampleTable:
        return fitted_curves(table, fitted, self.settings, self.frame_interval_h)

    def _keep_previous(self, output: Path) -> Path:
        """Rename the previous fitted table, its curves and its report with the time it was
        written; return the fitted table's new path."""
        stamp = datetime.fromtimestamp(output.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
        suffix = f"_previous_{stamp}"
        name, model = self.table_path.stem, self.settings.model
        moves = [(output, output.with_name(f"{output.stem}{suffix}.csv")),
                 (_curves_path(output), output.with_name(f"{output.stem}{suffix}_curves.csv"))]
        moves += [(old.with_name(parquet_name(old.name)), new.with_name(parquet_name(new.name)))
                  for old, new in moves]  # the Parquet twins (`fovflow.io.tables`)
        moves += zip(report_paths(self.report_dir, name, model),
                     report_paths(self.report_dir, name + suffix, model), strict=True)
        for old, new in moves:
            if old.is_file():
                old.replace(new)
        return moves[0][1]


def _curves_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_curves.csv")


def fit_table(
    table: SampleTable,
    settings: FitSettings,
    *,
    n_workers: int | None = 1,
    executor: Executor | None = None,
    frame_interval_h: float | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """Fit every cell of a wide table: ``fov, cell, model, success, r_squared, rmse, <params>,
    <param>_se, <param>_ci_low, <param>_ci_high`` (free parameters) ``, n_points, at_bound,
    not_identifiable, evaluations, message``."""
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
    last = [c for c in RESULT_COLUMNS if c not in (*first, "cost")]
    return pd.concat([ids, fits[first], fits[list(model.names)],
                      fits[uncertainty_columns(model)], fits[last]], axis=1)


def fitted_curves(
    table: SampleTable, fitted: pd.DataFrame, settings: FitSettings,
    frame_interval_h: float | None = None,
) -> SampleTable:
    """The fitted curves at the table's times, as a wide table: every fit with parameters,
    converged or not (NaN for a trace too short to fit)."""
    model = settings.resolve()
    times_h = to_hours(table.values.index.to_numpy(), table.time_unit,
                       frame_interval_h=frame_interval_h)
    parameters = fitted[list(model.names)].astype(float)
    columns = {
        name: model.evaluate(times_h, values) if np.isfinite(list(values.values())).all()
        else np.full(len(times_h), np.nan)
        for name, values in zip(table.values.columns, parameters.to_dict("records"), strict=True)
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
