"""Kinetic models of gene expression: pure formulas over numpy arrays.

Time is in hours. Every model has an onset `t0` and an `offset`; with ``dt = t - t0`` the value
is ``offset`` for ``dt <= 0``. These formulas are shared by the simulator (ground truth) and the
fitting code, so both always agree on what a model means.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def trivial(
    t: ArrayLike, *, t0: float, ktl: float, delta: float, beta: float, offset: float
) -> FloatArray:
    """mRNA decay and translation: ``ktl/(delta-beta) (1-exp(-(delta-beta)dt)) exp(-beta dt)``.

    Symmetric in ``delta`` and ``beta``; evaluated without cancellation where they are close
    (``delta == beta`` gives the limit ``ktl dt exp(-beta dt)``).
    """
    dt = _elapsed(t, t0)
    return ktl * _two_decays(delta, beta, dt) + offset


def maturation(
    t: ArrayLike,
    *,
    t0: float,
    ktl: float,
    delta: float,
    beta: float,
    km: float,
    offset: float,
) -> FloatArray:
    """Mature protein of a protein that matures with rate ``km`` before it fluoresces.

    ``ktl (exp(-(beta+km)dt)/(beta-delta+km) - exp(-beta dt)/(beta-delta)
    + km/((beta-delta)(beta-delta+km)) exp(-delta dt))``, evaluated as ``ktl km`` times the
    convolution of the three decays, which has no poles where the rates meet.
    """
    dt = _elapsed(t, t0)
    return ktl * km * _three_decays(delta, beta + km, beta, dt) + offset


def maturation_blocked(
    t: ArrayLike, *, t0: float, G0: float, Gu0: float, beta: float, km: float, offset: float
) -> FloatArray:
    """Decay of mature (``G0``) and maturing (``Gu0``) protein after translation is blocked.

    Like every model it is ``offset`` for ``t <= t0`` (so it steps up by ``G0`` at ``t0``): the
    model describes only what follows the block, as in the lab's earlier analysis.
    """
    dt = _elapsed(t, t0)
    decay = np.exp(-beta * dt)
    matured = -decay * np.expm1(-km * dt)  # exp(-beta dt) - exp(-(beta + km) dt)
    return np.where(dt > 0, G0 * decay + Gu0 * matured, 0.0) + offset


KineticModel = Callable[..., FloatArray]

MODELS: dict[str, KineticModel] = {
    "trivial": trivial,
    "maturation": maturation,
    "maturation_blocked": maturation_blocked,
}

PARAMETERS: dict[str, tuple[str, ...]] = {
    "trivial": ("t0", "ktl", "delta", "beta", "offset"),
    "maturation": ("t0", "ktl", "delta", "beta", "km", "offset"),
    "maturation_blocked": ("t0", "G0", "Gu0", "beta", "km", "offset"),
}


def _elapsed(t: ArrayLike, t0: float) -> FloatArray:
    """Time since onset, clipped at 0 so every model equals its offset before ``t0``."""
    return np.maximum(np.asarray(t, dtype=np.float64) - t0, 0.0)


def _two_decays(rate_a: ArrayLike, rate_b: ArrayLike, dt: FloatArray) -> FloatArray:
    """``(exp(-a dt) - exp(-b dt)) / (b - a)``, the convolution of two decays; at ``a == b``
    its limit ``dt exp(-a dt)``. Factored from the slower rate, so nothing overflows."""
    slow, fast = np.minimum(rate_a, rate_b), np.maximum(rate_a, rate_b)
    gap = fast - slow
    safe_gap = np.where(gap > 0, gap, 1.0)
    lag = np.where(gap > 0, -np.expm1(-gap * dt) / safe_gap, dt)
    return np.exp(-slow * dt) * lag


def _three_decays(
    rate_a: ArrayLike, rate_b: ArrayLike, rate_c: ArrayLike, dt: FloatArray
) -> FloatArray:
    """The convolution of three decays (symmetric in the rates): with sorted rates
    ``low <= mid <= high`` it is ``(two(low, mid) - two(mid, high)) / (high - low)``, and
    ``dt**2/2 exp(-rate dt)`` where all three meet."""
    low = np.minimum(np.minimum(rate_a, rate_b), rate_c)
    high = np.maximum(np.maximum(rate_a, rate_b), rate_c)
    mid = np.asarray(rate_a) + rate_b + rate_c - low - high
    spread = high - low
    # Below this spread the difference quotient loses more digits than the limit is off.
    apart = spread * np.maximum(dt.max(initial=0.0), 1.0) > 1e-6
    quotient = (_two_decays(low, mid, dt) - _two_decays(mid, high, dt)) / np.where(apart, spread,
                                                                                   1.0)
    limit = dt**2 / 2 * np.exp(-(low + mid + high) / 3 * dt)
    return np.where(apart, quotient, limit)
