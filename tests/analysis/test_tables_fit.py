"""Fitting tables on disk: which tables a folder offers, and no silent overwrite of a result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import TIMES_H

from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.report import report_paths
from fovflow.analysis.simulate import simulate_traces
from fovflow.analysis.tables_fit import fit_tables, sample_tables
from fovflow.errors import TableError
from fovflow.io.tables import SampleTable, cell_column, read_fitted_table, write_sample_table


def _write(folder: Path, name: str, n: int = 4) -> Path:
    values, _ = simulate_traces("maturation", n, TIMES_H, fixed={"km": 1.28}, seed=2)
    frame = pd.DataFrame(values, index=pd.Index(TIMES_H, name="time"),
                         columns=[cell_column(0, i) for i in range(n)])
    path = folder / f"{name}.csv"
    write_sample_table(SampleTable(frame, "h"), path)
    return path


def test_a_folder_offers_its_intensity_tables_by_default(tmp_path: Path) -> None:
    for name in ("ctrl_intensity_total_ch_1", "ctrl_area_ch_1", "ctrl_intensity_mean_ch_1",
                 "legacy_pyama"):
        _write(tmp_path, name, n=1)
    assert [p.name for p in sample_tables(tmp_path)] == ["ctrl_intensity_total_ch_1.csv",
                                                         "legacy_pyama.csv"]
    assert [p.name for p in sample_tables(tmp_path, feature="area")] == ["ctrl_area_ch_1.csv",
                                                                         "legacy_pyama.csv"]
    assert len(sample_tables(tmp_path, feature=None)) == 4
    (tmp_path / "legacy_pyama.csv").unlink()
    with pytest.raises(TableError, match="holds no intensity_max tables"):
        sample_tables(tmp_path, feature="intensity_max")


def test_refit_with_other_settings_keeps_the_previous_result_with_its_report(
        tmp_path: Path) -> None:
    table = _write(tmp_path, "ctrl_intensity_total_ch_1")
    first = fit_tables([table], FitSettings.create("maturation"), report=True, curves=True)[0]
    before = first.read_text()
    events = []
    fit_tables([table], FitSettings.create("maturation", fixed={"km": 1.0}), report=True,
               on_event=events.append)
    previous = events[0].previous
    assert previous is not None and previous.read_text() == before
    assert previous.name.startswith("ctrl_intensity_total_ch_1_fitted_maturation_previous_")
    stamp = previous.stem.removeprefix("ctrl_intensity_total_ch_1_fitted_maturation")
    assert previous.with_name(f"{previous.stem}_curves.csv").is_file()
    report = tmp_path / "report"
    assert all(p.is_file() for p in report_paths(report, f"ctrl_intensity_total_ch_1{stamp}",
                                                 "maturation"))
    assert all(p.is_file() for p in report_paths(report, "ctrl_intensity_total_ch_1",
                                                 "maturation"))
    _, settings = read_fitted_table(first)
    assert settings["fixed"] == [["km", 1.0]]
    # the curves of the previous fit went with it: none describe the new fit
    assert not (tmp_path / "ctrl_intensity_total_ch_1_fitted_maturation_curves.csv").exists()
    # the same settings again: up to date, nothing renamed
    again = []
    fit_tables([table], FitSettings.create("maturation", fixed={"km": 1.0}),
               on_event=again.append)
    assert again[0].skipped and again[0].previous is None
    assert len(list(tmp_path.glob("*_previous_*.csv"))) == 2  # fitted table and its curves


def test_the_report_is_written_with_its_fitted_table(tmp_path: Path) -> None:
    table = _write(tmp_path, "ctrl_intensity_total_ch_1", n=3)
    events = []
    fit_tables([table], FitSettings.create("maturation"), report=True, on_event=events.append)
    assert [p.name for p in events[0].report] == [
        p.name for p in report_paths(tmp_path / "report", table.stem, "maturation")]
    fitted, _ = read_fitted_table(events[0].output)
    assert {"delta_se", "delta_ci_low", "delta_ci_high", "at_bound",
            "not_identifiable"} <= set(fitted.columns)
    assert "km_se" not in fitted.columns  # fixed: no uncertainty of its own
    assert np.all(fitted.delta_ci_low <= fitted.delta) and np.all(
        fitted.delta <= fitted.delta_ci_high)
