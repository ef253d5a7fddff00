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

    Written with ``expm1`` so that ``delta == beta`` gives its limit ``ktl dt exp(-beta dt)``.
    """
    dt = _elapsed(t, t0)
    return ktl * _one_minus_exp_over(delta - beta, dt) * np.exp(-beta * dt) + offset


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
    """Expression of a protein that matures with rate ``km`` before it fluoresces."""
    dt = _elapsed(t, t0)
    bd = beta - delta
    value = ktl * (
        np.exp(-(beta + km) * dt) / (bd + km)
        - np.exp(-beta * dt) / bd
        + km / (bd * (bd + km)) * np.exp(-delta * dt)
    )
    return value + offset


def maturation_blocked(
    t: ArrayLike, *, t0: float, G0: float, Gu0: float, beta: float, km: float, offset: float
) -> FloatArray:
    """Decay of mature (``G0``) and maturing (``Gu0``) protein after translation is blocked.

    Like every model it is ``offset`` for ``t <= t0`` (so it steps up by ``G0`` at ``t0``): the
    model describes only what follows the block, as in the lab's earlier analysis.
    """
    dt = _elapsed(t, t0)
    decay = G0 * np.exp(-beta * dt) + Gu0 * (np.exp(-beta * dt) - np.exp(-(beta + km) * dt))
    return np.where(dt > 0, decay, 0.0) + offset


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


def _one_minus_exp_over(rate: float, dt: FloatArray) -> FloatArray:
    """``(1 - exp(-rate dt)) / rate``, continuous at ``rate == 0`` where it equals ``dt``."""
    if rate == 0:
        return dt.copy()
    return -np.expm1(-rate * dt) / rate
