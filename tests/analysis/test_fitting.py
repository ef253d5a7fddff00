"""The fitter finds the global optimum of every model on simulated traces, quickly and safely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import TIMES_H

from fovflow.analysis.fitting import FitSettings, fit_trace, fit_traces
from fovflow.analysis.simulate import simulate_traces
from fovflow.errors import Cancelled

# km is a property of the fluorescent protein (fixed in practice: maturation is symmetric in
# delta and beta + km); in maturation_blocked t0, the time of the block, is fixed by default.
CASES = {
    "trivial": {},
    "maturation": {"km": 1.28},
    "maturation_blocked": {},
}


def _fit_and_reference(
    name: str, n: int = 150
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Fits of simulated traces, the truth, and the cost and parameters of fits from the truth."""
    values, truth = simulate_traces(name, n, TIMES_H, noise=0.02, fixed=CASES[name], seed=3)
    settings = FitSettings.create(name, fixed=CASES[name])
    fitted = fit_traces(settings, TIMES_H, values)
    model = settings.resolve()
    from_truth = [fit_trace(model, TIMES_H, values[:, i],
                            truth.loc[[i], [p.name for p in model.free]].to_numpy())
                  for i in range(n)]
    reference = pd.DataFrame([fit.values for fit in from_truth])
    return fitted, truth, np.array([fit.cost for fit in from_truth]), reference


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_fit_reaches_the_global_optimum_and_recovers_parameters(name: str) -> None:
    fitted, truth, reference_cost, reference = _fit_and_reference(name)
    assert fitted.success.mean() >= 0.99
    # global optimum: the cost is within 1 % of a fit started at the true parameters
    assert np.mean(fitted.cost.to_numpy() <= 1.01 * reference_cost) >= 0.99
    for p in FitSettings.create(name, fixed=CASES[name]).resolve().free:
        error = np.median(np.abs(fitted[p.name] - truth[p.name]) / np.abs(truth[p.name]))
        floor = np.median(np.abs(reference[p.name] - truth[p.name]) / np.abs(truth[p.name]))
        assert error <= 1.1 * floor + 1e-3, (p.name, error, floor)


@pytest.mark.slow
def test_maturation_with_free_km_reaches_the_global_optimum() -> None:
    # delta and beta + km can swap without changing the curve: only the cost is comparable
    values, truth = simulate_traces("maturation", 100, TIMES_H, noise=0.02, seed=8)
    settings = FitSettings.create("maturation")
    fitted = fit_traces(settings, TIMES_H, values)
    model = settings.resolve()
    reference = [fit_trace(model, TIMES_H, values[:, i], truth.loc[[i], list(model.names)]
                           .to_numpy()).cost for i in range(100)]
    assert fitted.success.mean() >= 0.99
    assert np.mean(fitted.cost.to_numpy() <= 1.01 * np.array(reference)) >= 0.99


def test_fixed_parameters_keep_their_value() -> None:
    values, _ = simulate_traces("maturation", 5, TIMES_H, fixed={"km": 1.28}, seed=1)
    fitted = fit_traces(FitSettings.create("maturation", fixed={"km": 1.28}), TIMES_H, values)
    assert (fitted.km == 1.28).all() and fitted.success.all()


def test_short_and_all_nan_traces_fail_without_stopping_the_batch() -> None:
    values, _ = simulate_traces("trivial", 4, TIMES_H, seed=2)
    values[:, 1] = np.nan
    values[5:, 2] = np.nan  # 5 valid points for 5 free parameters: too few
    fitted = fit_traces(FitSettings.create("trivial"), TIMES_H, values)
    assert fitted.success.tolist() == [True, False, False, True]
    assert fitted.loc[1, "n_points"] == 0 and "valid points" in fitted.loc[1, "message"]
    assert np.isnan(fitted.loc[2, "ktl"])


def test_progress_reports_every_trace_and_can_cancel() -> None:
    values, _ = simulate_traces("trivial", 6, TIMES_H, seed=2)
    calls: list[tuple[int, int]] = []
    fit_traces(FitSettings.create("trivial"), TIMES_H, values, chunk_size=2,
               progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 6), (4, 6), (6, 6)]

    def stop(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        fit_traces(FitSettings.create("trivial"), TIMES_H, values, chunk_size=2, progress=stop)


@pytest.mark.slow
def test_worker_processes_give_the_same_fits_as_serial() -> None:
    values, _ = simulate_traces("maturation", 8, TIMES_H, fixed={"km": 1.28}, seed=4)
    settings = FitSettings.create("maturation", fixed={"km": 1.28})
    serial = fit_traces(settings, TIMES_H, values)
    parallel = fit_traces(settings, TIMES_H, values, n_workers=2, chunk_size=2)
    pd.testing.assert_frame_equal(serial, parallel)
