"""Analysis tab: fit a simulated sample table, inspect, filter, save; cancel a long fit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fovflow.analysis.simulate import simulate_traces
from fovflow.io.tables import SampleTable, cell_column, write_sample_table

TIMES_MIN = np.arange(72) * 10.0


def write_table(folder: Path, n_cells: int, name: str = "ctrl_intensity_total_ch_1") -> Path:
    """A wide sample table (time in minutes) of simulated maturation traces, km = 1.0."""
    values, _ = simulate_traces("maturation", n_cells, TIMES_MIN / 60, fixed={"km": 1.0},
                                seed=3)
    frame = pd.DataFrame(values, index=pd.Index(TIMES_MIN, name="time"),
                         columns=[cell_column(0, cell) for cell in range(1, n_cells + 1)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    write_sample_table(SampleTable(frame, "min"), path)
    return path


def fix_parameter(tab, name: str, value: float) -> None:
    from PySide6.QtCore import Qt

    row = tab.parameters.model.names.index(name)
    tab.parameters.item(row, 1).setText(str(value))
    tab.parameters.item(row, 2).setCheckState(Qt.CheckState.Checked)


def test_fits_a_simulated_table_fills_the_results_and_saves_plots(qtbot, window, tmp_path):
    table = write_table(tmp_path / "samples", 12)
    tab = window.analysis
    window.tabs.setCurrentWidget(tab)
    tab.load_path(table.parent)
    assert tab.table_combo.currentText() == table.name
    tab.model_combo.setCurrentText("maturation")
    fix_parameter(tab, "km", 1.0)
    tab.start_button.click()
    qtbot.waitUntil(lambda: not tab.handle.running, timeout=30_000)
    assert tab.results.rowCount() == 12
    assert tab.progress_bar.value() == tab.progress_bar.maximum() == 12
    assert (tab.fitted["r_squared"] > 0.95).mean() > 0.8
    assert (table.parent / "ctrl_intensity_total_ch_1_fitted_maturation.csv").is_file()
    assert len(tab.curve_figure.axes[0].lines) == 2  # data and fitted curve of the first row
    assert tab.curve_figure.axes[0].get_xlabel() == "time (h)"
    assert len(tab.hist_figure.axes) >= 2

    tab.r2_spin.setValue(0.999999)
    tab.good_only.setChecked(True)
    assert tab.results.rowCount() < 12
    written = tab.save_results(tmp_path / "report")
    assert all(path.is_file() for path in written)
    assert any(path.suffix == ".png" for path in written)

    tab.load_path(table)  # previously fitted results load with their table and settings
    assert len(tab.fitted) == 12
    assert "delta_se" in tab.results.frame.columns and "at_bound" in tab.results.frame.columns
    assert "median relative uncertainty" in tab.notes_label.text()
    km_row = tab.parameters.model.names.index("km")
    tab.model_combo.setCurrentText("trivial")  # another model's defaults, then back
    tab.load_path(table)
    assert float(tab.parameters.item(km_row, 1).text()) == 1.0
    assert tab.parameters.settings().fixed == (("km", 1.0),)


@pytest.mark.slow
def test_cancelling_a_fit_stops_it_and_reports_no_result(qtbot, window, tmp_path):
    table = write_table(tmp_path / "samples", 160, name="big")
    tab = window.analysis
    tab.load_path(table)
    tab.start_button.click()
    qtbot.waitUntil(lambda: tab.progress_bar.value() > 0, timeout=30_000)
    start = time.perf_counter()
    tab.cancel_button.click()
    qtbot.waitUntil(lambda: not tab.handle.running, timeout=2000)
    print(f"fit cancel latency: {(time.perf_counter() - start) * 1000:.0f} ms")
    assert tab.start_button.isEnabled()
    assert window.statusBar().currentMessage() == "fitting cancelled"
    assert not (table.parent / "big_fitted_maturation.csv").exists()
