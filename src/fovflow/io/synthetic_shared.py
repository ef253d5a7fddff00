"""What every kind of simulated scene shares: kinetics of the cells, smooth fields, pixel types."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fovflow import kinetics
from fovflow.io.synthetic_config import SimulationConfig

# The parameters a model's total intensity is proportional to (with the offset).
SCALE_KEYS = {"trivial": ("ktl",), "maturation": ("ktl",), "maturation_blocked": ("G0", "Gu0")}


def draw_kinetics(
    config: SimulationConfig, area: float, rng: np.random.Generator
) -> dict[str, float]:
    """Parameters of one cell's trace, scaled so its peak is a plausible per-pixel brightness."""
    duration_h = config.n_frames * config.frame_interval_s / 3600.0
    onset_h = min(rng.uniform(0.5, 2.0), 0.3 * duration_h)
    offset = area * rng.uniform(5.0, 20.0)
    while True:
        beta, delta, km = rng.uniform(0.02, 0.15), rng.uniform(0.3, 1.0), rng.uniform(0.6, 2.0)
        if abs(beta - delta + km) > 0.1:  # keep the maturation formula away from its pole
            break
    if config.model == "maturation_blocked":
        # Translation was blocked just before the first frame: the decay is seen from frame 0.
        shape = {"t0": -rng.uniform(0.01, 0.5), "G0": 1.0,
                 "Gu0": rng.uniform(0.2, 1.0), "beta": rng.uniform(0.1, 0.4), "km": km}
    elif config.model == "trivial":
        shape = {"t0": onset_h, "ktl": 1.0, "delta": delta, "beta": beta}
    else:
        shape = {"t0": onset_h, "ktl": 1.0, "delta": delta, "beta": beta, "km": km}
    scale_keys = SCALE_KEYS[config.model]
    grid = np.linspace(0.0, max(duration_h, 1e-3), 200)
    peak = float(np.max(kinetics.MODELS[config.model](grid, **shape, offset=0.0)))
    scale = area * rng.uniform(150.0, 1200.0) / peak if peak > 0 else 0.0
    params = {key: (value * scale if key in scale_keys else value) for key, value in shape.items()}
    params["offset"] = offset
    return {key: round(float(value), 6) for key, value in params.items()}


def scaled_kinetics(model: str, params: dict[str, float], share: float) -> dict[str, float]:
    """The parameters of `share` of a cell's total intensity (a daughter's half)."""
    if share == 1.0:
        return params
    scaled = (*SCALE_KEYS[model], "offset")
    return {key: round(value * share, 6) if key in scaled else value
            for key, value in params.items()}


def model_values(model: str, params: dict[str, float], times_h: NDArray) -> NDArray:
    """The model's total intensity of one cell at `times_h`."""
    return kinetics.MODELS[model](times_h, **params)


def smooth_field(
    height: int, width: int, rng: np.random.Generator, level: float, relative_span: float
) -> NDArray[np.float32]:
    """A smooth, uneven illumination: a tilted plane times a vignette, around `level`."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xn, yn = xx / width - 0.5, yy / height - 0.5
    gx, gy = rng.uniform(-1, 1, 2)
    cx, cy = rng.uniform(-0.2, 0.2, 2)
    tilt = 1.0 + relative_span * (gx * xn + gy * yn)
    vignette = 1.0 - relative_span * ((xn - cx) ** 2 + (yn - cy) ** 2)
    return (level * tilt * vignette).astype(np.float32)


def swept_region(
    config: SimulationConfig, drift: NDArray[np.float64], margin: float
) -> tuple[float, float, float, float]:
    """The part of the plane (x_lo, x_hi, y_lo, y_hi) the drifting window sees, grown by margin."""
    travel = drift * (config.n_frames - 1)
    x_lo, x_hi = min(0.0, travel[0]) - margin, config.width + max(0.0, travel[0]) + margin
    y_lo, y_hi = min(0.0, travel[1]) - margin, config.height + max(0.0, travel[1]) + margin
    return x_lo, x_hi, y_lo, y_hi


def stage_drift(rng: np.random.Generator) -> NDArray[np.float64]:
    """A random stage drift of 0.4 to 1 pixel per frame in a random direction."""
    angle = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(0.4, 1.0)  # px per frame
    return np.array([math.cos(angle), math.sin(angle)]) * speed


def to_uint16(image: NDArray) -> NDArray[np.uint16]:
    """Round and clip to the uint16 range."""
    return np.clip(np.rint(image), 0, np.iinfo(np.uint16).max).astype(np.uint16)
