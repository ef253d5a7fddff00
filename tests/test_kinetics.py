"""The kinetic formulas are the solutions of the ODE systems they stand for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from fovflow import kinetics

T = np.linspace(0.0, 12.0, 61)
KTL, DELTA, BETA, KM = 400.0, 0.6, 0.08, 1.2


def _integrate(rhs, y0: list[float]) -> np.ndarray:
    return solve_ivp(rhs, (0, T[-1]), y0, t_eval=T, rtol=1e-10, atol=1e-10).y


def test_trivial_solves_mrna_decay_and_translation() -> None:
    # m' = -delta m, p' = ktl m - beta p
    _, protein = _integrate(lambda t, y: [-DELTA * y[0], KTL * y[0] - BETA * y[1]], [1, 0])
    model = kinetics.trivial(T, t0=0, ktl=KTL, delta=DELTA, beta=BETA, offset=0)
    np.testing.assert_allclose(model, protein, atol=1e-6)


def test_maturation_solves_translation_then_maturation() -> None:
    # m' = -delta m, immature' = ktl m - (beta + km) immature, mature' = km immature - beta mature
    def rhs(t: float, y: list[float]) -> list[float]:
        m, immature, mature = y
        return [-DELTA * m, KTL * m - (BETA + KM) * immature, KM * immature - BETA * mature]

    mature = _integrate(rhs, [1, 0, 0])[2]
    model = kinetics.maturation(T, t0=0, ktl=KTL, delta=DELTA, beta=BETA, km=KM, offset=0)
    np.testing.assert_allclose(model, mature, atol=1e-6)


def test_maturation_blocked_solves_decay_of_both_pools() -> None:
    g0, gu0 = 300.0, 200.0

    def rhs(t: float, y: list[float]) -> list[float]:
        immature, mature = y
        return [-(BETA + KM) * immature, KM * immature - BETA * mature]

    mature = _integrate(rhs, [gu0, g0])[1]
    model = kinetics.maturation_blocked(T, t0=0, G0=g0, Gu0=gu0, beta=BETA, km=KM, offset=0)
    np.testing.assert_allclose(model[1:], mature[1:], atol=1e-6)  # t = t0 itself is the offset


@pytest.mark.parametrize("name", list(kinetics.MODELS))
def test_every_model_equals_offset_before_onset_and_shifts_with_t0(name: str) -> None:
    params = {"t0": 2.0, "ktl": KTL, "delta": DELTA, "beta": BETA, "km": KM, "G0": 50.0,
              "Gu0": 20.0, "offset": 7.5}
    params = {key: params[key] for key in kinetics.PARAMETERS[name]}
    model = kinetics.MODELS[name]
    before = model(np.array([0.0, 1.0, 2.0]), **params)
    np.testing.assert_allclose(before, 7.5)
    shifted = model(T + 2.0, **params)
    at_zero = model(T, **{**params, "t0": 0.0})
    np.testing.assert_allclose(shifted, at_zero)


def test_trivial_is_continuous_where_delta_equals_beta() -> None:
    equal = kinetics.trivial(T, t0=0, ktl=KTL, delta=0.3, beta=0.3, offset=0)
    near = kinetics.trivial(T, t0=0, ktl=KTL, delta=0.3 + 1e-7, beta=0.3, offset=0)
    np.testing.assert_allclose(equal, KTL * T * np.exp(-0.3 * T))
    np.testing.assert_allclose(near, equal, rtol=1e-5)
