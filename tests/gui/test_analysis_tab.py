"""Analysis tab: fit a simulated sample table, inspect, filter, save; cancel a long fit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gui_helpers import write_table

from fovflow.io.tables import SampleTable, read_sample_table, write_sample_table


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


def _with_noise_cells(path: Path, n_noise: int) -> None:
    """Replace the first `n_noise` cells of a sample table by noise: fits with a poor R²."""
    table = read_sample_table(path)
    values = table.values.copy()
    rng = np.random.default_rng(0)
    for column in values.columns[:n_noise]:
        values[column] = rng.normal(0.0, 1.0, len(values))
    write_sample_table(SampleTable(values, table.time_unit), path)


def test_the_saved_curve_pages_hold_only_the_fits_shown(qtbot, window, tmp_path, monkeypatch):
    from fovflow.analysis import report

    table = write_table(tmp_path / "samples", 8)
    _with_noise_cells(table, 2)
    tab = window.analysis
    tab.load_path(table)
    fix_parameter(tab, "km", 1.0)
    tab.start_button.click()
    qtbot.waitUntil(lambda: not tab.handle.running, timeout=30_000)
    tab.r2_spin.setValue(0.9)
    tab.good_only.setChecked(True)
    shown = {f"fov_000_cell_{cell}" for cell in tab.shown_fits()["cell"]}
    assert len(shown) == 6 and tab.results.rowCount() == 6
    drawn: list[set[str]] = []
    page = report._curve_page

    def recording_page(*args, **kwargs):
        figure = page(*args, **kwargs)
        drawn.append({axis.get_title().split()[0] for axis in figure.axes if axis.get_visible()})
        return figure

    monkeypatch.setattr(report, "_curve_page", recording_page)
    tab.save_results(tmp_path / "report")
    assert drawn and all(cells <= shown for cells in drawn)  # no poor fit on any page
    assert set().union(*drawn[1:]) == shown  # the PDF's pages hold every fit shown
    summary = pd.read_csv(next((tmp_path / "report").glob("*_summary.csv")))
    assert (summary.loc[summary["parameter"] == "r_squared", "n"] == 6).all()


def test_a_table_that_cannot_be_read_leaves_no_results_of_the_last_one(qtbot, window,
                                                                        tmp_path):
    table = write_table(tmp_path / "samples", 4)
    tab = window.analysis
    tab.load_path(table)
    tab.start_button.click()
    qtbot.waitUntil(lambda: not tab.handle.running, timeout=30_000)
    assert tab.results.rowCount() == 4
    broken = tmp_path / "other" / "cells.csv"
    broken.parent.mkdir()
    broken.write_text("# Time units: min\ntime,fov_000_cell_1\n0,not a number\n")
    tab.load_path(broken)
    assert tab.table_combo.currentText() == "cells.csv"
    assert tab.results.rowCount() == 0 and tab.table is None
    assert not tab.curve_figure.axes and not tab.hist_figure.axes
    assert window.statusBar().currentMessage().startswith("error: ")


def test_the_fit_parameters_show_units_and_what_each_one_is(qtbot, window):
    tab = window.analysis
    tab.model_combo.setCurrentText("maturation")
    table = tab.parameters
    units = {table.item(row, 0).text(): table.item(row, 5).text()
             for row in range(table.rowCount())}
    assert units == {"t0": "h", "ktl": "a.u./h", "delta": "1/h", "beta": "1/h", "km": "1/h",
                     "offset": "a.u."}
    table.setCurrentCell(table.model.names.index("beta"), 1)
    assert table.help_label.text().startswith("beta: protein degradation rate (1/h) — ")


def test_fits_use_every_usable_core_by_default_as_the_command_line_does(window):
    from fovflow.execution.knobs import usable_cores

    assert window.analysis.workers_spin.value() == usable_cores()
