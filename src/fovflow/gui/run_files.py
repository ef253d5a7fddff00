"""The files the tabs read and write, without Qt: run folders, traces quality, sample tables,
fit reports."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.report import write_report
from fovflow.analysis.tables_fit import fitted_curves
from fovflow.io.layout import trace_files
from fovflow.io.manifest import recorded_time_unit
from fovflow.io.store import rewrite_traces
from fovflow.io.tables import SampleTable, write_fitted_table


def run_time_unit(run_dir: Path) -> str:
    """The time unit the run's manifest records (``frame`` when it records none)."""
    return str(recorded_time_unit(run_dir) or "frame")


def write_quality(run_dir: Path, fov: int, good: Mapping[int, bool]) -> None:
    """Set ``good`` of the cells in `good` on all their rows in every traces table of `fov`.

    Each table is written to a temporary file and renamed over the old one, so a crash never
    leaves a half-written table.
    """
    for path in trace_files(run_dir, fov).values():
        table = pd.read_csv(path)
        table["good"] = [good.get(cell, old) for cell, old in zip(table["cell"], table["good"],
                                                                  strict=True)]
        rewrite_traces(path, table)


def save_fit_report(table: SampleTable, name: str, fitted: pd.DataFrame, shown: pd.DataFrame,
                    settings: FitSettings, frame_interval_h: float | None,
                    folder: Path) -> list[Path]:
    """Write the `shown` fits as a fitted table, plus curves, histograms and a summary.

    Only the `shown` fits (e.g. those above an R² threshold) are drawn and summarised.
    """
    folder.mkdir(parents=True, exist_ok=True)
    table_path = folder / f"{name}_fitted_{settings.model}_shown.csv"
    write_fitted_table(shown, table_path, {"model": settings.model, "shown": len(shown)})
    curves = fitted_curves(table, fitted, settings, frame_interval_h)
    model = settings.resolve()
    written = write_report(table, fitted, curves, [p.name for p in model.free], name=name,
                           model=settings.model, out_dir=folder,
                           frame_interval_h=frame_interval_h,
                           units={p.name: p.unit for p in model.parameters},
                           cells=[fitted.index.get_loc(i) for i in shown.index])
    return [table_path, *written]
