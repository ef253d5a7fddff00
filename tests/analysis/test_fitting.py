"""The fitter finds the global optimum of every model on simulated traces, quickly and safely."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import TIMES_H

from fovflow.analysis.diagnostics import fit_notes
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
    settings = FitSettings.create("maturation", bounds={"km": (1e-3, 10.0)})
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


# The biology: transfected mRNA (delta 0.02-0.15/h) and stable GFP (beta 0.005-0.04/h),
# and fast turnover (mRNA 1-5/h, protein 0.2-0.8/h); the defaults must cover both.
LOW_RATES = {"delta": (0.02, 0.15), "beta": (0.005, 0.04)}
HIGH_RATES = {"delta": (1.0, 5.0), "beta": (0.2, 0.8)}


def _fits_from_truth(settings: FitSettings, values: np.ndarray,
                     truth: pd.DataFrame) -> list:
    model = settings.resolve()
    return [fit_trace(model, TIMES_H, values[:, i],
                      truth.loc[[i], [p.name for p in model.free]].to_numpy())
            for i in range(values.shape[1])]


@pytest.mark.slow
@pytest.mark.parametrize("rates", [LOW_RATES, HIGH_RATES], ids=["low", "high"])
def test_maturation_defaults_reach_the_optimum_on_low_and_high_rates(rates: dict) -> None:
    values, truth = simulate_traces("maturation", 100, TIMES_H, fixed={"km": 1.28},
                                    ranges=rates, seed=21)
    settings = FitSettings.create("maturation")  # defaults only: km fixed at 1.28
    fitted = fit_traces(settings, TIMES_H, values)
    reference = np.array([fit.cost for fit in _fits_from_truth(settings, values, truth)])
    assert (fitted.km == 1.28).all()
    assert fitted.success.mean() >= 0.99
    assert np.mean(fitted.cost.to_numpy() <= 1.01 * reference) >= 0.99
    ordered = truth.delta > truth.beta  # the fit names the faster rate delta
    error = np.abs(fitted.delta[ordered] - truth.delta[ordered]) / truth.delta[ordered]
    assert np.median(error) < 0.25
    assert (fitted.at_bound.str.contains("delta=")).mean() <= 0.02


def test_trivial_calls_the_faster_rate_delta() -> None:
    values, truth = simulate_traces("trivial", 20, TIMES_H, ranges={"delta": (0.05, 0.1),
                                                                    "beta": (0.3, 0.5)}, seed=5)
    fitted = fit_traces(FitSettings.create("trivial"), TIMES_H, values)
    assert (fitted.delta >= fitted.beta).all()
    np.testing.assert_allclose(fitted.delta, truth.beta, rtol=0.15)
    np.testing.assert_allclose(fitted.beta, truth.delta, rtol=0.15)
    # swapping the names of the rates leaves the curve, hence the cost, as it was
    settings = FitSettings.create("trivial")
    reference = [fit.cost for fit in _fits_from_truth(settings, values, truth)]
    np.testing.assert_allclose(fitted.cost, reference, rtol=1e-3)


def test_a_bound_that_decides_the_fit_is_flagged() -> None:
    values, _ = simulate_traces("maturation", 12, TIMES_H, fixed={"km": 1.28},
                                ranges=LOW_RATES, seed=6)
    narrow = FitSettings.create("maturation", bounds={"delta": (0.25, 10.0)})
    fitted = fit_traces(narrow, TIMES_H, values)
    assert fitted.success.all()  # converged: the bound, not the optimiser, is the problem
    assert (fitted.at_bound.str.split().apply(lambda flags: "delta=lower" in flags)).all()
    notes = fit_notes(fitted.assign(n_points=181), narrow.resolve())
    assert any(note.startswith("delta is at its lower bound (0.25) in 12 fits") and
               "--bounds delta=LOW:HIGH" in note for note in notes)
    wide = fit_traces(FitSettings.create("maturation"), TIMES_H, values)
    assert not wide.at_bound.str.contains("delta").any()


@pytest.mark.slow
def test_intervals_cover_the_true_values_about_95_percent() -> None:
    values, truth = simulate_traces("maturation", 300, TIMES_H, fixed={"km": 1.28},
                                    ranges=LOW_RATES, seed=31)
    settings = FitSettings.create("maturation")
    fitted = fit_traces(settings, TIMES_H, values)
    for p in settings.resolve().free:
        inside = (fitted[f"{p.name}_ci_low"] <= truth[p.name]) & (
            truth[p.name] <= fitted[f"{p.name}_ci_high"])
        assert 0.90 <= inside.mean() <= 0.98, (p.name, inside.mean())
        assert (fitted[f"{p.name}_se"] > 0).all()


def test_a_trace_without_signal_leaves_the_rates_unidentified() -> None:
    rng = np.random.default_rng(0)
    noise = 1000.0 + rng.normal(size=(len(TIMES_H), 1))
    fitted = fit_traces(FitSettings.create("maturation"), TIMES_H, noise)
    assert {"delta", "beta"} & set(fitted.not_identifiable[0].split())


def test_converged_fits_are_successes_whatever_their_evaluations() -> None:
    values, _ = simulate_traces("maturation", 6, TIMES_H, fixed={"km": 1.28}, seed=9)
    fitted = fit_traces(FitSettings.create("maturation", bounds={"km": (1e-3, 10.0)}),
                        TIMES_H, values)
    assert fitted.success.all() and (fitted.message == "").all()
    assert (fitted.evaluations > 0).all()


def test_worker_processes_from_a_script_without_main_guard_are_refused(tmp_path) -> None:
    script = tmp_path / "fit_script.py"
    script.write_text(
        "import numpy as np\n"
        "from fovflow.analysis.fitting import FitSettings, fit_traces\n"
        "values = np.ones((20, 8))\n"
        "fit_traces(FitSettings.create('trivial'), np.arange(20.0), values, n_workers=2,\n"
        "           chunk_size=2)\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and "if __name__ == \"__main__\":" in result.stderr
    assert f"{script} again and would run line 4" in result.stderr
    assert "worker" not in result.stdout
