"""Fitting throughput and quality on simulated traces shaped like the lab's recordings.

Traces: 181 frames 10 minutes apart, noise 2 % of each trace's maximum. For each model, fovflow's
fitter (grid + vectorised Levenberg-Marquardt + per-trace `least_squares`) runs on `--cells`
traces serially and with `--workers` processes (the pool's start-up is included in the time),
and the issue's reference fitter (one `least_squares` per trace from the model's default values,
scipy's own finite-difference Jacobian) on the first 118 traces, serially. "optimum" is the share
of those 118 traces whose cost is within 1 % of a fit started at the true parameters.

    .venv/bin/python benchmarks/bench_fit.py [--cells 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import least_squares

from fovflow.analysis.fitting import FitSettings, fit_trace, fit_traces
from fovflow.analysis.models import Model
from fovflow.analysis.simulate import simulate_traces

TIMES_H = np.arange(181) / 6.0
CASES = {"trivial": {}, "maturation": {"km": 1.28}, "maturation_blocked": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"{args.cells} simulated traces x 181 frames (10 min), noise 2 % of max; "
          f"reference fitter serial on the first 118")
    print(f"{'model':<20}{'fitter':<13}{'cells/s':>9}{'success':>10}{'median R2':>11}"
          f"{'optimum':>9}")
    for name, fixed in CASES.items():
        values, truth = simulate_traces(name, args.cells, TIMES_H, fixed=fixed, seed=11)
        settings = FitSettings.create(name, fixed=fixed)
        model = settings.resolve()
        n_ref = min(118, args.cells)
        truth_cost = np.array([
            fit_trace(model, TIMES_H, values[:, i],
                      truth.loc[[i], [p.name for p in model.free]].to_numpy()).cost
            for i in range(n_ref)])
        for workers in (1, args.workers):
            start = time.perf_counter()
            fitted = fit_traces(settings, TIMES_H, values, n_workers=workers)
            rate = args.cells / (time.perf_counter() - start)
            optimum = np.mean(fitted.cost.to_numpy()[:n_ref] <= 1.01 * truth_cost)
            _row(name, f"fovflow x{workers}", rate, fitted.success.mean(),
                 fitted.r_squared.median(), optimum)
        start = time.perf_counter()
        naive = [_reference_fit(model, values[:, i]) for i in range(n_ref)]
        rate = n_ref / (time.perf_counter() - start)
        _row(name, "reference", rate, np.mean([ok for ok, _, _ in naive]),
             np.median([r2 for _, r2, _ in naive]),
             np.mean([cost <= 1.01 * ref for (_, _, cost), ref in zip(naive, truth_cost,
                                                                      strict=True)]))


def _reference_fit(model: Model, trace: np.ndarray) -> tuple[bool, float, float]:
    """scipy's least_squares from the defaults, 2-point Jacobian: (success, R², cost)."""
    scale = np.abs(trace).max()

    def residuals(x: np.ndarray) -> np.ndarray:
        return (model.evaluate(TIMES_H, model.full_values(x)) - trace) / scale

    free = model.free
    result = least_squares(residuals, [p.default for p in free], method="trf",
                           bounds=([p.lower for p in free], [p.upper for p in free]))
    r2 = 1 - 2 * result.cost * scale**2 / np.sum((trace - trace.mean()) ** 2)
    return bool(result.success), float(r2), float(result.cost)


def _row(name: str, fitter: str, rate: float, success: float, r2: float, optimum: float) -> None:
    print(f"{name:<20}{fitter:<13}{rate:>9.1f}{success:>10.1%}{r2:>11.4f}{optimum:>9.1%}")


if __name__ == "__main__":
    main()
