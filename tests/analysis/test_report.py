"""Reports: plots of curves and parameter distributions, and summaries per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from analysis_helpers import TIMES_H

from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.report import summarise, write_report
from fovflow.analysis.simulate import simulate_traces
from fovflow.analysis.tables_fit import fit_table, fitted_curves
from fovflow.io.tables import SampleTable, cell_column


def test_report_writes_plots_and_a_summary(tmp_path: Path) -> None:
    values, _ = simulate_traces("trivial", 6, TIMES_H, seed=5)
    values[:, 5] = np.nan
    columns = [cell_column(0, i) for i in range(6)]
    table = SampleTable(pd.DataFrame(values, index=pd.Index(TIMES_H, name="time"),
                                     columns=columns), "h")
    settings = FitSettings.create("trivial")
    fitted = fit_table(table, settings)
    assert fitted.columns[:6].tolist() == ["fov", "cell", "model", "success", "r_squared", "rmse"]
    paths = write_report(table, fitted, fitted_curves(table, fitted, settings),
                         list(settings.resolve().names), name="ctrl", model="trivial",
                         out_dir=tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        [f"ctrl_trivial_{kind}.{ext}" for kind in ("curves", "histograms")
         for ext in ("png", "pdf")]
        + ["ctrl_trivial_summary.csv"])
    assert all(p.stat().st_size > 1000 for p in paths[:-1])
    summary = pd.read_csv(tmp_path / "ctrl_trivial_summary.csv", index_col=[0, 1])
    assert summary.loc[("ktl", "ctrl"), "n"] == 5
    assert summary.loc[("ktl", "ctrl"), "median"] == fitted.ktl[:5].median()


def test_a_table_without_cells_gets_a_report_that_says_so(tmp_path: Path) -> None:
    table = SampleTable(pd.DataFrame(index=pd.Index(TIMES_H, name="time")), "h")
    settings = FitSettings.create("trivial")
    fitted = fit_table(table, settings)
    paths = write_report(table, fitted, fitted_curves(table, fitted, settings),
                         list(settings.resolve().names), name="empty", model="trivial",
                         out_dir=tmp_path)
    assert len(paths) == 5 and all(p.stat().st_size > 0 for p in paths)
    assert (pd.read_csv(paths[-1])["n"] == 0).all()


def test_summary_gives_median_and_iqr_of_successful_fits() -> None:
    fitted = pd.DataFrame({"success": [True] * 5 + [False], "r_squared": [0.9] * 6,
                           "beta": [1.0, 2.0, 3.0, 4.0, 5.0, 100.0]})
    row = summarise(fitted, ["beta"]).loc["beta"]
    assert (row["n"], row["median"], row["q25"], row["q75"], row["iqr"]) == (5, 3, 2, 4, 2)
