"""Kind ``isolated``: well separated elliptical cells, textured and dark in phase contrast.

Each FOV is a window onto a plane of non-overlapping cells that drifts with the stage. This is the
simulator's original scene; for a seed it renders exactly what it always rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fovflow.io.synthetic_config import SimulatedFrame, SimulationConfig
from fovflow.io.synthetic_divisions import stage_jump
from fovflow.io.synthetic_shared import (
    draw_kinetics,
    model_values,
    smooth_field,
    stage_drift,
    swept_region,
    to_uint16,
)

_CELL_GAP_PX = 24.0  # free space between cells: wider than a 19 px closing and twice the wobble
_MAX_WOBBLE_PX = 1.5


@dataclass(frozen=True)
class _Cell:
    id: int
    x: float  # world position at frame 0
    y: float
    a: float  # semi-axes in px
    b: float
    angle: float
    spin: float  # rad per frame
    wobble: float  # px
    wobble_rate: float  # rad per frame
    wobble_phase: float
    darkness: float  # phase-contrast interior level relative to the background
    appear_frame: int
    kinetics: tuple[dict[str, float], ...]  # one parameter set per fluorescence channel


class IsolatedScene:
    """The cells, illumination and backgrounds of one FOV, rendered frame by frame."""

    def __init__(self, config: SimulationConfig, fov: int) -> None:
        self.config = config
        self.fov = fov
        self._seed = np.random.SeedSequence([config.seed, fov])
        rng = np.random.default_rng(self._seed.spawn(1)[0])
        self.drift = stage_drift(rng)
        self.cells = _place_cells(config, self.drift, rng)
        self.illumination = smooth_field(config.height, config.width, rng, 2000.0, 0.25)
        self.fl_background = [
            smooth_field(config.height, config.width, rng, rng.uniform(80, 160), 0.4)
            for _ in range(config.n_fluorescence)
        ]
        self._times_h = config.times_s / 3600.0
        self._totals = [
            [model_values(config.model, params, self._times_h) for params in cell.kinetics]
            for cell in self.cells
        ]
        self.jump = stage_jump(config, np.random.default_rng(  # its own stream: see kinds
            np.random.SeedSequence([config.seed, fov, 5])))

    def parents(self) -> dict[int, int]:
        """The mother of every daughter cell: none, isolated cells do not divide."""
        return {}

    def cell_rows(self, seen: set[int]) -> list[dict[str, float | int | str]]:
        """Ground-truth parameters of the cells in `seen` (those visible in some frame)."""
        rows: list[dict[str, float | int | str]] = []
        for cell in (cell for cell in self.cells if cell.id in seen):
            for channel, params in enumerate(cell.kinetics, start=1):
                rows.append({
                    "fov": self.fov, "cell": cell.id, "channel": channel,
                    "model": self.config.model, "appear_frame": cell.appear_frame,
                    "semi_major_px": round(cell.a, 3), "semi_minor_px": round(cell.b, 3),
                    **params,
                })
        return rows

    def render(self, t: int) -> SimulatedFrame:
        """Frame `t`: phase contrast, fluorescence, labels and one truth row per visible cell."""
        cfg = self.config
        # Each frame has its own noise stream, so frames render identically in any order.
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, self.fov, 1, t]))
        labels = np.zeros((cfg.height, cfg.width), np.uint16)
        flicker = 1.0 + rng.normal(0, 0.02)
        lit = self.illumination * flicker
        phase = lit * (1.0 + rng.normal(0, 0.01, lit.shape).astype(np.float32))
        signal = [np.zeros_like(background) for background in self.fl_background]
        truth: list[dict[str, float | int | str]] = []
        for index, cell in enumerate(self.cells):
            if t < cell.appear_frame:
                continue
            placed = self._rasterize(cell, t)
            if placed is None:
                continue
            region, mask, full_area = placed
            labels[region][mask] = cell.id
            texture = rng.normal(0, 0.09, mask.shape)
            phase[region][mask] = (lit[region] * (cell.darkness + texture))[mask]
            ys, xs = np.nonzero(mask)
            row: dict[str, float | int | str] = {
                "fov": self.fov, "cell": cell.id, "frame": t,
                "time_h": round(float(self._times_h[t]), 6), "area": int(mask.sum()),
                "position_x": float(xs.mean() + region[1].start),
                "position_y": float(ys.mean() + region[0].start),
            }
            for channel, totals in enumerate(self._totals[index]):
                per_pixel = totals[t] / full_area
                signal[channel][region][mask] += per_pixel
                row[f"intensity_total_ch_{channel + 1}"] = float(per_pixel * mask.sum())
            truth.append(row)
        fluorescence = tuple(
            to_uint16(background + sig + rng.normal(0, 1, sig.shape) * np.sqrt(background + sig))
            for background, sig in zip(self.fl_background, signal, strict=True)
        )
        return SimulatedFrame(to_uint16(phase), fluorescence, labels, truth)

    def _rasterize(
        self, cell: _Cell, t: int
    ) -> tuple[tuple[slice, slice], NDArray[np.bool_], int] | None:
        """The cell's visible mask in frame `t` with its slice, and its unclipped area."""
        cfg = self.config
        wobble = cell.wobble * math.sin(cell.wobble_rate * t + cell.wobble_phase)
        jump = self.jump if t >= (cfg.stage_jump_frame or cfg.n_frames) else np.zeros(2)
        cx = cell.x - self.drift[0] * t + wobble - jump[0]
        cy = cell.y - self.drift[1] * t + wobble * 0.5 - jump[1]
        x0, x1 = math.floor(cx - cell.a) - 1, math.ceil(cx + cell.a) + 2
        y0, y1 = math.floor(cy - cell.a) - 1, math.ceil(cy + cell.a) + 2
        if x1 <= 0 or y1 <= 0 or x0 >= cfg.width or y0 >= cfg.height:
            return None
        yy, xx = np.mgrid[y0:y1, x0:x1]
        angle = cell.angle + cell.spin * t
        cos, sin = math.cos(angle), math.sin(angle)
        u = (xx - cx) * cos + (yy - cy) * sin
        v = -(xx - cx) * sin + (yy - cy) * cos
        full = (u / cell.a) ** 2 + (v / cell.b) ** 2 <= 1.0
        cy0, cx0 = max(y0, 0), max(x0, 0)
        cy1, cx1 = min(y1, cfg.height), min(x1, cfg.width)
        mask = full[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        if not mask.any():
            return None
        return (slice(cy0, cy1), slice(cx0, cx1)), mask, int(full.sum())


def _place_cells(
    config: SimulationConfig, drift: NDArray[np.float64], rng: np.random.Generator
) -> list[_Cell]:
    """Random non-overlapping cells on the part of the plane the window sweeps over."""
    radius = config.effective_cell_radius_px
    x_lo, x_hi, y_lo, y_hi = swept_region(config, drift, 1.5 * radius)
    target = round(config.effective_cells_per_megapixel * (x_hi - x_lo) * (y_hi - y_lo) / 1e6)
    centers = np.empty((0, 2))
    radii = np.empty(0)
    cells: list[_Cell] = []
    for _ in range(target * 30):
        if len(cells) == target:
            break
        a = radius * rng.uniform(0.95, 1.35)
        b = radius * rng.uniform(0.7, 0.95)
        x, y = rng.uniform(x_lo, x_hi), rng.uniform(y_lo, y_hi)
        if len(centers) and np.any(
            np.hypot(centers[:, 0] - x, centers[:, 1] - y) < radii + a + _CELL_GAP_PX
        ):
            continue
        if not _ever_visible(x, y, a, drift, config):
            continue
        late = rng.random() < config.late_fraction and config.n_frames > 2
        cells.append(_Cell(
            id=len(cells) + 1, x=x, y=y, a=a, b=b,
            angle=rng.uniform(0, math.pi), spin=rng.uniform(-0.01, 0.01),
            wobble=rng.uniform(0, _MAX_WOBBLE_PX), wobble_rate=rng.uniform(0.05, 0.2),
            wobble_phase=rng.uniform(0, 2 * math.pi), darkness=rng.uniform(0.5, 0.7),
            appear_frame=int(rng.integers(1, max(2, config.n_frames // 2))) if late else 0,
            kinetics=tuple(
                draw_kinetics(config, a * b * math.pi, rng) for _ in range(config.n_fluorescence)
            ),
        ))
        centers = np.vstack([centers, [x, y]])
        radii = np.append(radii, a)
    return cells


def _ever_visible(x: float, y: float, a: float, drift: NDArray, config: SimulationConfig) -> bool:
    """Whether a cell's centre comes within the frame (grown by its radius) at some frame."""
    t = np.arange(config.n_frames)
    cx, cy = x - drift[0] * t, y - drift[1] * t
    inside = (cx > -a) & (cx < config.width + a) & (cy > -a) & (cy < config.height + a)
    return bool(inside.any())
