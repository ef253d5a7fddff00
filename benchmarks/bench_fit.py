"""Fitting with the default settings: global optimum, speed and interval coverage.

Traces: 181 frames 10 minutes apart, noise 2 % of each trace's maximum, true rates drawn over
the biological range, not from inside the defaults:

- "target": the issue's kind (maturation, km 1.28/h, delta 0.02-0.15/h, beta 0.005-0.04/h,
  uniform), fitted through the command line exactly as a user would,
  ``fovflow fit TABLE --model maturation --workers W`` (start-up included);
- "wide": every model, rates log-uniform over delta 0.01-5/h, beta 0.003-1/h (km 0.3-3/h in
  maturation_blocked), fitted with `fit_traces` on 1 and W workers.

"optimum" is the share of traces whose cost is within 1 % of a fit started at the true
parameters (`fit_trace`, which also names swapped rates in order); "coverage" the share of true
values inside the 95 % intervals, per free parameter (the wide set counts only traces whose
true delta is the faster rate, the name the fit gives it). With ``--real TRACES.csv`` (a traces
table with ``cell, time`` in minutes and ``intensity_total``, as PyAMA writes it) the real
traces are fitted through the command line too.

    .venv/bin/python benchmarks/bench_fit.py [--cells 1000] [--workers 2] [--real TRACES.csv]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fovflow.analysis.fitting import FitSettings, fit_trace, fit_traces
from fovflow.analysis.simulate import simulate_traces
from fovflow.io.tables import SampleTable, cell_column, read_fitted_table, write_sample_table

TIMES_H = np.arange(181) / 6.0
FOVFLOW = Path(sys.executable).with_name("fovflow")
TARGET = {"delta": (0.02, 0.15), "beta": (0.005, 0.04)}
WIDE = {
    "trivial": ({"delta": (0.01, 5.0), "beta": (0.003, 1.0)}, {}),
    "maturation": ({"delta": (0.01, 5.0), "beta": (0.003, 1.0)}, {"km": 1.28}),
    "maturation_blocked": ({"beta": (0.003, 1.0), "km": (0.3, 3.0)}, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--real", type=Path, help="a PyAMA traces table (time in minutes)")
    args = parser.parse_args()
    print(f"{args.cells} simulated traces x 181 frames (10 min), noise 2 % of max, defaults only")
    print(f"{'set':<26}{'fitter':<14}{'cells/s':>8}{'success':>9}{'med R2':>8}{'optimum':>9}"
          f"  coverage of 95 % intervals")
    with tempfile.TemporaryDirectory() as folder:
        _target(Path(folder), args.cells, args.workers)
        if args.real:
            _real(Path(folder), args.real, args.workers)
    for name, (ranges, fixed) in WIDE.items():
        values, truth = simulate_traces(name, args.cells, TIMES_H, fixed=fixed, ranges=ranges,
                                        log_uniform=True, seed=11)
        settings = FitSettings.create(name)
        for workers in (1, args.workers):
            start = time.perf_counter()
            fitted = fit_traces(settings, TIMES_H, values, n_workers=workers)
            rate = args.cells / (time.perf_counter() - start)
            _row(f"wide {name}", f"fit_traces x{workers}", rate, fitted,
                 *_quality(settings, values, truth, fitted))


def _target(folder: Path, n_cells: int, workers: int) -> None:
    values, truth = simulate_traces("maturation", n_cells, TIMES_H, fixed={"km": 1.28},
                                    ranges=TARGET, seed=7)
    table = folder / "target_intensity_total_ch_1.csv"
    frame = pd.DataFrame(values, index=pd.Index(TIMES_H * 60, name="time"),
                         columns=[cell_column(0, i) for i in range(n_cells)])
    write_sample_table(SampleTable(frame, "min"), table)
    fitted, rate = _cli_fit(table, workers)
    settings = FitSettings.create("maturation")
    _row("target maturation", f"CLI x{workers}", rate, fitted,
         *_quality(settings, values, truth, fitted))


def _real(folder: Path, traces: Path, workers: int) -> None:
    long = pd.read_csv(traces)
    wide = long.pivot(index="time", columns="cell", values="intensity_total")
    wide.columns = [cell_column(0, int(cell)) for cell in wide.columns]
    table = folder / "real_intensity_total_ch_1.csv"
    write_sample_table(SampleTable(wide, "min"), table)
    fitted, rate = _cli_fit(table, workers)
    _row(f"real {traces.name} ({wide.shape[1]})", f"CLI x{workers}", rate, fitted, np.nan, "")


def _cli_fit(table: Path, workers: int) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    subprocess.run([FOVFLOW, "fit", table, "--model", "maturation", "--workers", str(workers)],
                   check=True, capture_output=True)
    seconds = time.perf_counter() - start
    fitted, _ = read_fitted_table(table.with_name(f"{table.stem}_fitted_maturation.csv"))
    return fitted, len(fitted) / seconds


def _quality(settings: FitSettings, values: np.ndarray, truth: pd.DataFrame,
             fitted: pd.DataFrame) -> tuple[float, str]:
    """Share at the global optimum, and the coverage per free parameter."""
    model = settings.resolve()
    free = [p.name for p in model.free]
    reference = np.array([fit_trace(model, TIMES_H, values[:, i], truth.loc[[i], free]
                                    .to_numpy()).cost for i in range(values.shape[1])])
    optimum = float(np.mean(_cost(settings, values, fitted) <= 1.01 * reference))
    # the fit names the faster rate delta, so only truths named that way can be covered
    named = truth.delta >= truth.beta if {"delta", "beta"} <= set(truth) else truth.index >= 0
    coverage = []
    for name in free:
        inside = (fitted[f"{name}_ci_low"] <= truth[name]) & (truth[name]
                                                             <= fitted[f"{name}_ci_high"])
        coverage.append(f"{name} {inside[named].mean():.1%}")
    return optimum, ", ".join(coverage)


def _cost(settings: FitSettings, values: np.ndarray, fitted: pd.DataFrame) -> np.ndarray:
    """Each fit's cost from its parameters (a fitted table on disk does not hold it)."""
    model = settings.resolve()
    costs = []
    for i, row in enumerate(fitted[list(model.names)].to_dict("records")):
        trace = values[:, i]
        scale = np.max(np.abs(trace))
        costs.append(0.5 * np.sum(((model.evaluate(TIMES_H, row) - trace) / scale) ** 2))
    return np.array(costs)


def _row(name: str, fitter: str, rate: float, fitted: pd.DataFrame, optimum: float,
         coverage: str) -> None:
    print(f"{name:<26}{fitter:<14}{rate:>8.1f}{fitted.success.mean():>9.1%}"
          f"{fitted.r_squared.median():>8.4f}{optimum:>9.1%}  {coverage}")


if __name__ == "__main__":
    main()
