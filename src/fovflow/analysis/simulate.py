"""Simulated traces of the built-in models with known parameters, for tests and benchmarks.

The parameter ranges are those of `fovflow.io.synthetic` (rates per hour, amplitudes of whole
cells), except that translation is blocked exactly at time 0 in ``maturation_blocked`` (the
default of its fixed ``t0``: before the first frame ``t0`` cannot be told apart from ``G0`` and
``Gu0``); the noise is Gaussian with a standard deviation that is a fraction of each trace's
maximum.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fovflow.analysis.models import BUILTIN_MODELS
from fovflow.analysis.models.base import FloatArray
from fovflow.errors import ConfigError

_BUILTIN = {model.name: model for model in BUILTIN_MODELS}


def simulate_traces(
    model: str,
    n_cells: int,
    times_h: FloatArray,
    *,
    noise: float = 0.02,
    fixed: Mapping[str, float] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    log_uniform: bool = False,
    seed: int = 0,
) -> tuple[FloatArray, pd.DataFrame]:
    """Noisy traces of a built-in model with parameters drawn per cell.

    Parameters
    ----------
    model : str
        ``trivial``, ``maturation`` or ``maturation_blocked``.
    n_cells : int
        Number of traces.
    times_h : array (T,)
        Sampling times in hours.
    noise : float
        Standard deviation of the noise as a fraction of each noiseless trace's maximum.
    fixed : mapping, optional
        Values shared by every cell (e.g. ``{"km": 1.28}``), for any parameter but the
        amplitudes (``ktl``, ``G0``, ``Gu0``) and ``offset``.
    ranges : mapping, optional
        ``(low, high)`` per parameter to draw it from instead of the default range (same
        parameters as `fixed`), e.g. ``{"delta": (0.02, 0.15)}``.
    log_uniform : bool
        Draw the `ranges` uniformly in log (for rates over decades) rather than linearly.
    seed : int
        The same seed gives the same traces.

    Returns
    -------
    values : array (T, n_cells)
        One trace per column.
    truth : DataFrame
        One row per cell, one column per parameter.
    """
    if model not in _BUILTIN:
        raise ConfigError(f"can simulate only {', '.join(_BUILTIN)}, not {model!r}")
    rng = np.random.default_rng(seed)
    duration = float(np.max(times_h) - np.min(times_h))
    truth = pd.DataFrame([
        _draw(model, duration, _in_ranges(ranges or {}, log_uniform, rng) | dict(fixed or {}),
              rng) for _ in range(n_cells)])
    clean = np.stack([_BUILTIN[model].evaluate(times_h, row) for row in truth.to_dict("records")],
                     axis=1)
    values = clean + rng.normal(size=clean.shape) * noise * clean.max(axis=0)
    return values, truth


def _draw(
    model: str, duration_h: float, fixed: Mapping[str, float], rng: np.random.Generator
) -> dict[str, float]:
    area = rng.uniform(200.0, 600.0)
    while True:
        beta, delta, km = rng.uniform(0.02, 0.15), rng.uniform(0.3, 1.0), rng.uniform(0.6, 2.0)
        if abs(beta - delta + km) > 0.1:  # away from the maturation formula's pole
            break
    if model == "maturation_blocked":
        shape = {"t0": 0.0, "G0": 1.0, "Gu0": rng.uniform(0.2, 1.0),
                 "beta": rng.uniform(0.1, 0.4), "km": km}
        scaled = ("G0", "Gu0")
    else:
        shape = {"t0": min(rng.uniform(0.5, 2.0), 0.3 * duration_h), "ktl": 1.0,
                 "delta": delta, "beta": beta}
        if model == "maturation":
            shape["km"] = km
        scaled = ("ktl",)
    shape |= fixed
    grid = np.linspace(0.0, max(duration_h, 1e-3), 200)
    peak = float(np.max(_BUILTIN[model].evaluate(grid, shape | {"offset": 0.0})))
    scale = area * rng.uniform(150.0, 1200.0) / peak
    params = {key: value * scale if key in scaled else value for key, value in shape.items()}
    return params | {"offset": area * rng.uniform(5.0, 20.0)}


def _in_ranges(ranges: Mapping[str, tuple[float, float]], log_uniform: bool,
               rng: np.random.Generator) -> dict[str, float]:
    if log_uniform:
        return {name: float(np.exp(rng.uniform(np.log(low), np.log(high))))
                for name, (low, high) in ranges.items()}
    return {name: float(rng.uniform(low, high)) for name, (low, high) in ranges.items()}
