"""The analysis tab's plots: one cell's data with its fitted curve, and parameter histograms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import NDArray

from fovflow.analysis.models import Model


def draw_fit(figure: Figure, times: NDArray[np.float64], times_h: NDArray[np.float64],
             data: NDArray[np.float64], model: Model, row: pd.Series | None, *,
             title: str, time_unit: str) -> None:
    """Plot `data` against `times` and, when `row` holds a successful fit, the model curve."""
    figure.clear()
    axes = figure.add_subplot()
    axes.plot(times, data, ".", ms=3, color="0.45", label="data")
    if row is not None and bool(row["success"]):
        dense_h = np.linspace(times_h.min(), times_h.max(), 400)
        dense = np.interp(dense_h, times_h, times)
        curve = model.evaluate(dense_h, {name: float(row[name]) for name in model.names})
        axes.plot(dense, curve, "-", color="C3", lw=1.5,
                  label=f"{model.name} fit, R² {float(row['r_squared']):.3f}")
    axes.set_title(title, fontsize=9)
    axes.set_xlabel(f"time ({time_unit})")
    axes.legend(fontsize=8, frameon=False)
    figure.canvas.draw_idle()


def draw_histograms(figure: Figure, fits: pd.DataFrame, parameters: list[str]) -> None:
    """One histogram per parameter and R² over the rows of `fits` (the good fits)."""
    figure.clear()
    columns = [*parameters, "r_squared"]
    n_cols = min(4, len(columns))
    n_rows = math.ceil(len(columns) / n_cols)
    for number, column in enumerate(columns, start=1):
        axes = figure.add_subplot(n_rows, n_cols, number)
        values = fits[column].astype(float).dropna() if len(fits) else pd.Series(dtype=float)
        axes.hist(values, bins=25, color="C2" if column == "r_squared" else "C0")
        axes.set_title(f"{'R²' if column == 'r_squared' else column} (n={len(values)})",
                       fontsize=8)
        axes.tick_params(labelsize=7)
        axes.locator_params(axis="x", nbins=3)
    # Fixed margins: a grid of small plots in a small canvas defeats constrained layout.
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.92, hspace=0.6, wspace=0.4)
    figure.canvas.draw_idle()
