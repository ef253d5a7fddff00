"""Plots and summaries of a fitted table (matplotlib, headless Agg backend).

For a table ``<name>`` and model ``<model>`` `write_report` writes into a folder:
``<name>_<model>_curves.png`` (16 cells' data with their fitted curves, flagged and failed fits
among them), ``<name>_<model>_curves.pdf`` (every cell, 16 per page),
``<name>_<model>_histograms.png/.pdf`` (each free parameter and R² over the converged fits,
fits a bound decided stacked in another colour) and ``<name>_<model>_summary.csv`` (median,
quartiles, IQR, median relative uncertainty and fits at a bound per parameter). Time is in
hours on every axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from fovflow.analysis.diagnostics import bound_counts, flag_words, relative_uncertainty
from fovflow.io.tables import SampleTable, to_hours
from fovflow.processing.extraction import FEATURES

PER_PAGE = 16
_KINDS = ("curves.png", "curves.pdf", "histograms.png", "histograms.pdf", "summary.csv")
_FLAGGED, _GOOD, _FAILED = "C1", "C3", "0.35"


def report_paths(out_dir: Path, name: str, model: str) -> list[Path]:
    """The files `write_report` writes for table `name` and `model`, in its order."""
    return [out_dir / f"{name}_{model}_{kind}" for kind in _KINDS]


def write_report(
    table: SampleTable,
    fitted: pd.DataFrame,
    curves: SampleTable,
    parameters: list[str],
    *,
    name: str,
    model: str,
    out_dir: str | Path,
    frame_interval_h: float | None = None,
    units: Mapping[str, str] | None = None,
    cells: Sequence[int] | None = None,
) -> list[Path]:
    """Write the curve pages, the histograms and the summary CSV; return their paths.

    Parameters
    ----------
    table, fitted, curves
        The sample table, its fitted table (one row per column, same order) and the fitted
        curves at the table's times (NaN where a fit has no parameters).
    parameters : list of str
        The free parameters, for histograms and summary.
    name, model : str
        Table name (``<sample>_<feature>_ch_<c>``) and model name, for titles and file names.
    frame_interval_h : float, optional
        Hours per frame, for tables timed in frames.
    units : mapping, optional
        Unit of each parameter, for axis labels.
    cells : sequence of int, optional
        Positions of the cells to draw and count (e.g. the fits a user kept); all by default.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = list(range(len(fitted))) if cells is None else list(cells)
    title = f"{describe_table(name)} · model {model}"
    hours = _hours(table, frame_interval_h)
    paths = report_paths(out_dir, name, model)
    pages = [chosen[i:i + PER_PAGE] for i in range(0, len(chosen), PER_PAGE)] or [[]]
    overview = _curve_page(hours, table, fitted, curves, _overview(fitted, chosen), title)
    overview.savefig(paths[0], dpi=120)
    plt.close(overview)
    with PdfPages(paths[1]) as pdf:
        for number, page in enumerate(pages, start=1):
            figure = _curve_page(hours, table, fitted, curves, page,
                                 f"{title} · page {number}/{len(pages)}")
            pdf.savefig(figure)
            plt.close(figure)
    kept = fitted.iloc[chosen]
    histograms = _histograms(kept, parameters, dict(units or {}), title)
    for path in paths[2:4]:
        histograms.savefig(path, dpi=120)
    plt.close(histograms)
    summary = summarise(kept, parameters).assign(sample=name).set_index("sample", append=True)
    summary.to_csv(paths[4])
    return paths


def describe_table(name: str) -> str:
    """``sample ctrl · intensity_total · channel 1`` for a table `merge` wrote, else `name`."""
    stem, sep, channel = name.rpartition("_ch_")
    for feature in sorted(FEATURES, key=len, reverse=True):
        if sep and channel.isdigit() and stem.endswith(f"_{feature}"):
            sample = stem.removesuffix(f"_{feature}")
            return f"sample {sample} · {feature} · channel {channel}"
    return name


def summarise(fitted: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    """Per parameter (and R²) over successful fits: n, median, q25, q75, IQR, the median of
    ``se / |value|`` and the number of fits with the parameter at a bound."""
    ok = fitted[fitted.success.astype(bool)]
    spread = relative_uncertainty(fitted, parameters)
    flags = bound_counts(ok)
    rows = {}
    for column in [*parameters, "r_squared"]:
        values = ok[column].astype(float)
        q25, median, q75 = values.quantile([0.25, 0.5, 0.75]) if len(values) else [np.nan] * 3
        rows[column] = {"n": len(values), "median": median, "q25": q25, "q75": q75,
                        "iqr": q75 - q25, "median_relative_se": spread.get(column, np.nan),
                        "n_at_bound": sum(count for flag, count in flags.items()
                                          if flag.startswith(f"{column}="))}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "parameter"
    return frame


def _hours(table: SampleTable, frame_interval_h: float | None) -> np.ndarray:
    return to_hours(table.values.index.to_numpy(dtype=float), table.time_unit,
                    frame_interval_h=frame_interval_h)


def fit_flags(row: pd.Series) -> str:
    """What is wrong with one fit, shortly: "" for a clean one."""
    if not bool(row["success"]):
        return "not converged" if np.isfinite(row.get("r_squared", np.nan)) else "not fitted"
    words = [flag.replace("=", " at ") for flag in flag_words(row.get("at_bound"))]
    unfixed = flag_words(row.get("not_identifiable"))
    if unfixed:
        words.append(f"{', '.join(unfixed)} not identifiable")
    return "; ".join(words)


def _overview(fitted: pd.DataFrame, chosen: list[int]) -> list[int]:
    """Up to `PER_PAGE` cells spread over `chosen`, with up to a quarter of them flagged ones,
    so that a problem shows on the first page."""
    if len(chosen) <= PER_PAGE:
        return chosen
    flagged = [i for i in chosen if fit_flags(fitted.iloc[i])][:PER_PAGE // 4]
    rest = [i for i in chosen if i not in flagged]
    spread = np.linspace(0, len(rest) - 1, PER_PAGE - len(flagged)).astype(int)
    return sorted(flagged + [rest[i] for i in spread])


def _curve_page(hours: np.ndarray, table: SampleTable, fitted: pd.DataFrame,
                curves: SampleTable, cells: list[int], title: str) -> plt.Figure:
    columns = max(1, int(np.ceil(np.sqrt(len(cells)))))  # one empty panel for a table
    rows = max(1, int(np.ceil(len(cells) / columns)))  # without cells
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.5 * rows + 0.6),
                                squeeze=False, sharex=True)
    figure.subplots_adjust(left=0.09, right=0.98, bottom=0.1, top=1 - 0.7 / (2.5 * rows + 0.6),
                           hspace=0.62, wspace=0.35)
    for axis, index in zip(axes.flat, cells, strict=False):
        row = fitted.iloc[index]
        flags = fit_flags(row)
        colour = _GOOD if not flags else _FAILED if not bool(row["success"]) else _FLAGGED
        axis.plot(hours, table.values.iloc[:, index], ".", ms=2, color="0.55", label="data")
        axis.plot(hours, curves.values.iloc[:, index], "-" if row["success"] else "--",
                  color=colour, lw=1.3, label="fit")
        r2 = row["r_squared"]
        heading = f"{table.values.columns[index]}" + (f"  R² {r2:.3f}" if np.isfinite(r2)
                                                       else "")
        axis.set_title(heading + (f"\n⚑ {flags}" if flags else ""), fontsize=7.5,
                       color="black" if not flags else colour)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(cells):]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("time (h)", fontsize=8)
    for axis in axes[:, 0]:
        axis.set_ylabel("intensity (a.u.)", fontsize=8)
    if cells:
        handles = [Line2D([], [], ls="", marker=".", color="0.55", label="data"),
                   Line2D([], [], color=_GOOD, label="fit"),
                   Line2D([], [], color=_FLAGGED, label="fit with a flag ⚑"),
                   Line2D([], [], color=_FAILED, ls="--", label="not converged")]
        figure.legend(handles=handles, loc="upper right", ncols=4, fontsize=7, frameon=False)
        figure.suptitle(title, fontsize=10, x=0.01, ha="left")
    else:
        figure.suptitle(f"{title}: no cells in this table", fontsize=10)
    return figure


def _histograms(fitted: pd.DataFrame, parameters: list[str], units: dict[str, str],
                title: str) -> plt.Figure:
    ok = fitted[fitted.success.astype(bool)]
    columns = [*parameters, "r_squared"]
    n_cols = min(3, len(columns))
    n_rows = int(np.ceil(len(columns) / n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 2.8 * n_rows + 0.7),
                                squeeze=False)
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.1, top=1 - 0.75 / (2.8 * n_rows + 0.7),
                           hspace=0.65, wspace=0.35)
    for axis, column in zip(axes.flat, columns, strict=False):
        draw_histogram(axis, ok, column, units.get(column, ""))
    for axis in list(axes.flat)[len(columns):]:
        axis.set_visible(False)
    figure.suptitle(f"{title}\n{len(ok)} of {len(fitted)} fits converged; dotted: median; "
                    f"orange: fits with the parameter at a bound or not identifiable", fontsize=9)
    return figure


def draw_histogram(axis: plt.Axes, ok: pd.DataFrame, column: str, unit: str) -> None:
    """One parameter's histogram over the fits `ok`, flagged fits stacked in orange, on a log
    axis when the values span decades; labelled with unit, median and count."""
    values = ok[column].astype(float).to_numpy()
    finite = np.isfinite(values)
    flagged = finite & _flagged(ok, column)
    positive = finite & (values > 0)
    # A positive parameter spread over decades (e.g. ktl) reads on a log axis.
    log = positive.sum() > 1 and (positive == finite).all() and (
        values[positive].max() / values[positive].min() > 30)
    data = values[finite]
    label = "R²" if column == "r_squared" else column
    below = 0
    if len(data):
        low, high = data.min(), data.max()
        if column == "r_squared":  # a few poor fits would squeeze the good ones into one bin
            low = min(np.quantile(data, 0.05), high - 1e-3)
            below = int((data < low).sum())
        bins = np.geomspace(low, high, 31) if log else np.linspace(low, high, 31)
        colour = "C2" if column == "r_squared" else "C0"
        shown = np.clip(values, low, high)
        axis.hist([shown[finite & ~flagged], shown[flagged]], bins=bins, stacked=True,
                  color=[colour, _FLAGGED])
        axis.axvline(float(np.median(data)), color="k", lw=0.8, ls=":")
    if log:
        axis.set_xscale("log")
    axis.set_xlabel((f"{label} ({unit})" if unit else label)
                    + (f"; {below} fits below {low:.4g} in the first bin" if below else ""),
                    fontsize=8)
    axis.set_ylabel("cells", fontsize=8)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not log:
        axis.xaxis.set_major_locator(MaxNLocator(nbins=4))
        axis.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    median = f"median {np.median(data):.3g}" if len(data) else "no converged fit"
    axis.set_title(f"{median}, n={len(data)}", fontsize=8)
    axis.tick_params(labelsize=7)


def _flagged(ok: pd.DataFrame, column: str) -> np.ndarray:
    """Fits with `column` at a bound or not identifiable."""
    def names(row: pd.Series) -> set[str]:
        bound = {flag.partition("=")[0] for flag in flag_words(row.get("at_bound"))}
        return bound | set(flag_words(row.get("not_identifiable")))

    return np.array([column in names(row) for _, row in ok.iterrows()], dtype=bool)
