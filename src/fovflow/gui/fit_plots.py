"""The analysis tab's plots: one cell's data with its fitted curve, and parameter histograms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import NDArray

from fovflow.analysis.models import Model
from fovflow.analysis.report import draw_histogram, fit_flags


def draw_fit(figure: Figure, times_h: NDArray[np.float64], data: NDArray[np.float64],
             model: Model, row: pd.Series | None, *, title: str) -> None:
    """Plot `data` against time in hours and, when `row` holds parameters, the model curve
    (dashed when the fit did not converge; its flags in the title)."""
    figure.clear()
    axes = figure.add_subplot()
    axes.plot(times_h, data, ".", ms=3, color="0.45", label="data")
    flags = fit_flags(row) if row is not None else ""
    values = {name: float(row[name]) for name in model.names} if row is not None else {}
    if values and all(math.isfinite(v) for v in values.values()):
        dense_h = np.linspace(times_h.min(), times_h.max(), 400)
        axes.plot(dense_h, model.evaluate(dense_h, values), "-" if row["success"] else "--",
                  color="C1" if flags else "C3", lw=1.5,
                  label=f"{model.name} fit, R² {float(row['r_squared']):.3f}")
    axes.set_title(title + (f"\n⚑ {flags}" if flags else ""), fontsize=9,
                   color="C1" if flags else "black")
    axes.set_xlabel("time (h)")
    axes.set_ylabel("intensity (a.u.)")
    axes.legend(fontsize=8, frameon=False)
    figure.canvas.draw_idle()


def draw_histograms(figure: Figure, fits: pd.DataFrame, parameters: list[str],
                    units: dict[str, str]) -> None:
    """One histogram per parameter and R² over the rows of `fits` (the converged ones)."""
    figure.clear()
    columns = [*parameters, "r_squared"]
    n_cols = min(4, len(columns))
    n_rows = math.ceil(len(columns) / n_cols)
    for number, column in enumerate(columns, start=1):
        axes = figure.add_subplot(n_rows, n_cols, number)
        draw_histogram(axes, fits, column, units.get(column, ""))
    # Fixed margins: a grid of small plots in a small canvas defeats constrained layout.
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.92, hspace=0.8, wspace=0.4)
    figure.canvas.draw_idle()
