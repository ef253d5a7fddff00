"""Plots and summaries of a fitted table (matplotlib, headless Agg backend).

For a table ``<name>`` and model ``<model>`` `write_report` writes into a folder:
``<name>_<model>_curves.png/.pdf`` (a page of fitted curves over the data),
``<name>_<model>_histograms.png/.pdf`` (each parameter and R², successful fits only) and
``<name>_<model>_summary.csv`` (median, quartiles and IQR of each parameter).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fovflow.io.tables import SampleTable


def write_report(
    table: SampleTable,
    fitted: pd.DataFrame,
    curves: SampleTable,
    parameters: list[str],
    *,
    name: str,
    model: str,
    out_dir: str | Path,
    n_curves: int = 16,
) -> list[Path]:
    """Write the curve page, the histograms (PNG and PDF) and the summary CSV; return paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{name}_{model}"
    written = []
    for kind, figure in (("curves", _curve_page(table, fitted, curves, n_curves)),
                         ("histograms", _histograms(fitted, parameters))):
        for suffix in (".png", ".pdf"):
            path = stem.with_name(f"{stem.name}_{kind}{suffix}")
            figure.savefig(path, dpi=120)
            written.append(path)
        plt.close(figure)
    summary = summarise(fitted, parameters).assign(sample=name).set_index("sample", append=True)
    summary_path = stem.with_name(f"{stem.name}_summary.csv")
    summary.to_csv(summary_path)
    return [*written, summary_path]


def summarise(fitted: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    """Per parameter (and R²) over successful fits: n, median, q25, q75 and IQR."""
    ok = fitted[fitted.success.astype(bool)]
    rows = {}
    for column in [*parameters, "r_squared"]:
        values = ok[column].astype(float)
        q25, median, q75 = values.quantile([0.25, 0.5, 0.75]) if len(values) else [np.nan] * 3
        rows[column] = {"n": len(values), "median": median, "q25": q25, "q75": q75,
                        "iqr": q75 - q25}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "parameter"
    return frame


def _curve_page(
    table: SampleTable, fitted: pd.DataFrame, curves: SampleTable, n_curves: int
) -> plt.Figure:
    chosen = np.linspace(0, table.values.shape[1] - 1, min(n_curves, table.values.shape[1]))
    columns = max(1, int(np.ceil(np.sqrt(len(chosen)))))  # one empty panel for a table
    rows = max(1, int(np.ceil(len(chosen) / columns)))  # without cells
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.4 * rows), squeeze=False,
                                sharex=True)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.94, hspace=0.45, wspace=0.3)
    time = table.values.index.to_numpy()
    for axis, index in zip(axes.flat, chosen.astype(int), strict=False):
        name = table.values.columns[index]
        axis.plot(time, table.values.iloc[:, index], ".", ms=2, color="0.5", label="data")
        axis.plot(time, curves.values.iloc[:, index], "-", color="C3", lw=1.2, label="fit")
        r2 = fitted.r_squared.iloc[index]
        status = f"R² {r2:.3f}" if fitted.success.iloc[index] else "failed"
        axis.set_title(f"{name}  {status}", fontsize=8)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(chosen):]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel(f"time ({table.time_unit})", fontsize=8)
    if len(chosen):
        axes[0, 0].legend(fontsize=7, frameon=False)
    else:
        figure.suptitle("no cells in this table", fontsize=10)
    return figure


def _histograms(fitted: pd.DataFrame, parameters: list[str]) -> plt.Figure:
    ok = fitted[fitted.success.astype(bool)]
    columns = [*parameters, "r_squared"]
    n_cols = min(3, len(columns))
    n_rows = int(np.ceil(len(columns) / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(3.4 * n_cols, 2.6 * n_rows),
                                squeeze=False)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.88, hspace=0.55, wspace=0.3)
    for axis, column in zip(axes.flat, columns, strict=False):
        values = ok[column].astype(float).dropna()
        axis.hist(values, bins=30, color="C0" if column != "r_squared" else "C2")
        label = "R²" if column == "r_squared" else column
        median = f"median {values.median():.3g}" if len(values) else "no successful fit"
        axis.set_title(f"{label}  ({median}, n={len(values)})", fontsize=9)
        axis.tick_params(labelsize=7)
        axis.locator_params(axis="x", nbins=4)
    for axis in list(axes.flat)[len(columns):]:
        axis.set_visible(False)
    figure.suptitle(f"{len(ok)}/{len(fitted)} successful fits", fontsize=10)
    return figure
