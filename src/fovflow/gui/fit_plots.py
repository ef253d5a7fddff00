"""The analysis tab's plots: one cell's data with its fitted curve, and parameter histograms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import NDArray

from fovflow.analysis.models import Model
from fovflow.analysis.report import draw_histogram, fit_flags

PANEL_PX = (210, 190)  # the least room (width, height) a histogram's labels need, pixels


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
    # Under the plot: inside it, the legend hides the data of one trace or another.
    figure.legend(fontsize=8, frameon=False, loc="outside lower center", ncols=2)
    figure.canvas.draw_idle()


def draw_histograms(figure: Figure, fits: pd.DataFrame, parameters: list[str],
                    units: dict[str, str]) -> None:
    """One histogram per parameter and R² over the rows of `fits` (the converged ones), in as
    many columns as the figure's width holds at `PANEL_PX` each; the canvas is made tall
    enough for the rows (it sits in a scroll area), so titles and ticks never overlap."""
    figure.clear()
    columns = [*parameters, "r_squared"]
    width_px = figure.get_figwidth() * figure.dpi
    n_cols = max(1, min(4, len(columns), int(width_px // PANEL_PX[0])))
    n_rows = math.ceil(len(columns) / n_cols)
    figure.canvas.setMinimumHeight(n_rows * PANEL_PX[1])
    for number, column in enumerate(columns, start=1):
        axes = figure.add_subplot(n_rows, n_cols, number)
        draw_histogram(axes, fits, column, units.get(column, ""))
        if (number - 1) % n_cols:
            axes.set_ylabel("")  # "cells" once per row is enough
    figure.canvas.draw_idle()
