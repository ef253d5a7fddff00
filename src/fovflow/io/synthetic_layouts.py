"""Where the cells of the packed kinds sit: crowds, microcolonies of rods, scattered nuclei.

Every cell is a `Body`: a capsule (rods) or an ellipse with a lobed outline, in world coordinates
at frame 0. Bodies may overlap; the renderer gives each pixel to the body whose outline is
relatively nearest, so overlapping neighbours share a border instead of covering each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from fovflow.io.synthetic_config import SimulationConfig
from fovflow.io.synthetic_shared import draw_kinetics, swept_region

MAX_CELLS = int(np.iinfo(np.uint16).max)  # the truth labels are uint16


@dataclass(frozen=True)
class Body:
    """One cell of a packed scene.

    A capsule of straight half-length `half_length` with elliptic caps (semi-axes `a` along and
    `b` across its axis); with ``half_length == 0`` an ellipse. `lobes` and `lobe_phases` are the
    relative amplitudes and phases of outline harmonics 2, 3, ... `nucleus` is the offset (u, v)
    and relative size of an inner nucleus, `contrast` a per-cell optical strength (thickness in
    phase contrast, brightness of a nuclear marker). A body that divides ends (`end_frame`)
    where two daughters (`parent`, `synthetic_divisions`) begin.
    """

    id: int
    x: float
    y: float
    half_length: float
    a: float
    b: float
    angle: float
    spin: float
    lobes: tuple[float, ...]
    lobe_phases: tuple[float, ...]
    wobble: float
    wobble_rate: float
    wobble_phase: float
    wobble_direction: float
    nucleus: tuple[float, float, float]
    contrast: float
    appear_frame: int
    kinetics: tuple[dict[str, float], ...]
    end_frame: int | None = None  # the first frame it is gone in: it divided
    parent: int = 0  # the id of the body it is a daughter of
    share: float = 1.0  # of its lineage's fluorescence: halved at each division
    # (frame, dx, dy): moved by (dx, dy) from that frame on, by a neighbour's division
    pushes: tuple[tuple[int, float, float], ...] = ()

    def present(self, t: int) -> bool:
        """Whether the body exists in frame `t` (in view or not)."""
        return self.appear_frame <= t and (self.end_frame is None or t < self.end_frame)

    @property
    def reach(self) -> float:
        """Farthest distance of the outline from the centre, in px."""
        return self.half_length + max(self.a, self.b) * (1.0 + sum(self.lobes))

    def half_extents(self, angle: float) -> tuple[float, float]:
        """Half width and half height of a box around the outline turned by `angle`, px."""
        swell = 1.0 + sum(self.lobes)
        a, b = self.a * swell, self.b * swell
        cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
        return (self.half_length * cos + math.hypot(a * cos, b * sin) + 1.0,
                self.half_length * sin + math.hypot(a * sin, b * cos) + 1.0)

    @property
    def area(self) -> float:
        """Area of the whole outline (without neighbours), in px²."""
        return math.pi * self.a * self.b + 4.0 * self.half_length * self.b

    def center(self, t: int, drift: NDArray[np.float64]) -> tuple[float, float]:
        """Position of the centre in frame `t`: stage drift, a slow jitter and the pushes of
        neighbours' divisions so far."""
        shift = self.wobble * math.sin(self.wobble_rate * t + self.wobble_phase)
        pushed_x = sum(dx for frame, dx, _ in self.pushes if frame <= t)
        pushed_y = sum(dy for frame, _, dy in self.pushes if frame <= t)
        return (self.x - drift[0] * t + shift * math.cos(self.wobble_direction) + pushed_x,
                self.y - drift[1] * t + shift * math.sin(self.wobble_direction) + pushed_y)


@dataclass(frozen=True)
class _Style:
    """How the cells of one kind are shaped, spaced and moved (sizes relative to the radius)."""

    spacing: float  # closest centres, relative to the sum of mean semi-axes (< 1 overlaps)
    clumping: float  # 0: uniform; larger: confluent patches and empty gaps
    size_spread: float  # sigma of the log of a cell's scale
    major: tuple[float, float]  # range of a / radius
    minor: tuple[float, float]  # range of b / radius
    lobe_amplitude: float  # largest outline harmonic
    max_wobble_px: float
    max_spin: float  # rad per frame
    contrast_log_sigma: float  # spread of `contrast` around 1 (log-normal)
    pushed_aside: bool = False  # a division moves its neighbours to `spacing` (a monolayer)


_STYLES = {
    "crowded": _Style(0.6, 2.5, 0.22, (1.0, 1.5), (0.6, 0.9), 0.18, 1.5, 0.004, 0.15),
    "nuclei": _Style(0.92, 1.2, 0.15, (0.95, 1.3), (0.75, 1.0), 0.03, 1.2, 0.005, 0.85, True),
    "small": _Style(0.92, 3.0, 0.1, (0.9, 1.15), (0.85, 1.05), 0.02, 1.0, 0.0, 0.12, True),
    "bacteria": _Style(0.93, 0.0, 0.04, (0.95, 1.05), (0.95, 1.05), 0.0, 0.6, 0.0015, 0.08),
}
_ROD_LENGTH = (5.0, 12.0)  # whole length of a rod relative to half its width: 25-60 px at 5 px
_SINGLE_ROD_SHARE = 0.08  # rods outside colonies


def pushed_aside_spacing(kind: str) -> float | None:
    """The closest centres, relative to the sum of mean semi-axes, to which a division pushes
    its neighbours in a scene of `kind` (None: divisions push no one)."""
    style = _STYLES[kind]
    return style.spacing if style.pushed_aside else None


def lay_out_bodies(
    config: SimulationConfig, drift: NDArray[np.float64], rng: np.random.Generator
) -> list[Body]:
    """The cells of one FOV on the part of the plane its drifting window sweeps over.

    Notes
    -----
    About O(n log n) in the number of cells (a k-d tree of candidate positions).
    """
    style = _STYLES[config.kind]
    if config.kind == "bacteria":
        shapes = _colonies(config, drift, rng)
    else:
        shapes = _scattered(config, drift, style, rng)
    x, y, half_length, a, b, _ = shapes
    seen = _ever_visible(x, y, half_length + np.maximum(a, b) * 1.4 + 2.0, drift, config)
    shapes = [column[seen][:MAX_CELLS] for column in shapes]
    return [_body(index + 1, shape, style, config, rng)
            for index, shape in enumerate(zip(*shapes, strict=True))]


def _scattered(
    config: SimulationConfig, drift: NDArray[np.float64], style: _Style, rng: np.random.Generator
) -> list[NDArray[np.float64]]:
    """Ellipses at random, kept at `style.spacing` from each other, denser in patches."""
    radius = config.effective_cell_radius_px
    x_lo, x_hi, y_lo, y_hi = swept_region(config, drift, 2.0 * radius)
    target = round(config.effective_cells_per_megapixel * (x_hi - x_lo) * (y_hi - y_lo) / 1e6)
    n = 8 * min(target, MAX_CELLS) + 16
    x, y = rng.uniform(x_lo, x_hi, n), rng.uniform(y_lo, y_hi, n)
    scale = radius * np.exp(rng.normal(0.0, style.size_spread, n))
    a, b = scale * rng.uniform(*style.major, n), scale * rng.uniform(*style.minor, n)
    kept = rng.random(n) < _patchiness(x, y, radius, style.clumping, rng)
    x, y, a, b = x[kept], y[kept], a[kept], b[kept]
    chosen = _spaced(np.column_stack([x, y]), style.spacing * (a + b) / 2.0, target)
    angle = rng.uniform(0.0, math.pi, len(chosen))
    return [x[chosen], y[chosen], np.zeros(len(chosen)), a[chosen], b[chosen], angle]


def _patchiness(
    x: NDArray, y: NDArray, radius: float, clumping: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Probability of keeping a candidate: a smooth random field, patches ~10 radii across."""
    if clumping == 0:
        return np.ones_like(x)
    field = np.zeros_like(x)
    for _ in range(6):
        direction = rng.uniform(0.0, 2 * math.pi)
        wavelength = radius * rng.uniform(8.0, 20.0)
        phase = rng.uniform(0.0, 2 * math.pi)
        along = x * math.cos(direction) + y * math.sin(direction)
        field += np.cos(2 * math.pi * along / wavelength + phase)
    return 1.0 / (1.0 + np.exp(-clumping * (field / math.sqrt(3.0) + 0.6)))


def _spaced(points: NDArray[np.float64], reach: NDArray[np.float64], target: int) -> NDArray:
    """Indices of the first `target` points, in order, not closer than reach_i + reach_j."""
    if len(points) == 0 or target == 0:
        return np.zeros(0, np.int64)
    tree = cKDTree(points)
    neighbours = tree.query_ball_point(points, reach + reach.max())
    accepted = np.zeros(len(points), bool)
    chosen: list[int] = []
    for index, near in enumerate(neighbours):
        near = np.asarray(near, np.int64)
        near = near[accepted[near]]
        distance = np.hypot(*(points[near] - points[index]).T)
        if np.all(distance >= reach[near] + reach[index]):
            accepted[index] = True
            chosen.append(index)
            if len(chosen) == target:
                break
    return np.asarray(chosen, np.int64)


def _colonies(
    config: SimulationConfig, drift: NDArray[np.float64], rng: np.random.Generator
) -> list[NDArray[np.float64]]:
    """Rods packed side by side in rows, aligned within each colony, plus a few single rods."""
    half_width = config.effective_cell_radius_px
    longest = half_width * _ROD_LENGTH[1]
    x_lo, x_hi, y_lo, y_hi = swept_region(config, drift, longest)
    target = round(config.effective_cells_per_megapixel * (x_hi - x_lo) * (y_hi - y_lo) / 1e6)
    target = min(target, MAX_CELLS)
    rods: list[tuple[float, ...]] = []
    colonies: list[tuple[float, float, float]] = []
    for _ in range(200 + 4 * target):
        if len(rods) >= target * (1.0 - _SINGLE_ROD_SHARE):
            break
        size = half_width * rng.uniform(8.0, 28.0)
        cx, cy = rng.uniform(x_lo, x_hi), rng.uniform(y_lo, y_hi)
        if any(math.hypot(cx - x, cy - y) < size + r + 3 * half_width for x, y, r in colonies):
            continue
        colonies.append((cx, cy, size))
        rods.extend(_fill_colony(cx, cy, size, half_width, rng))
    for _ in range(20 * target + 100):
        if len(rods) >= target:
            break
        x, y = rng.uniform(x_lo, x_hi), rng.uniform(y_lo, y_hi)
        if any(math.hypot(x - cx, y - cy) < r + longest for cx, cy, r in colonies):
            continue
        colonies.append((x, y, longest / 2))
        length = half_width * rng.uniform(*_ROD_LENGTH)
        rods.append((x, y, length / 2 - half_width, half_width, half_width,
                     rng.uniform(0.0, math.pi)))
    columns = np.asarray(rods, np.float64).reshape(-1, 6).T
    return list(columns)


def _fill_colony(
    cx: float, cy: float, size: float, half_width: float, rng: np.random.Generator
) -> list[tuple[float, ...]]:
    """Rows of end-to-end rods across an irregular round colony of radius about `size`."""
    axis = rng.uniform(0.0, math.pi)
    pitch = 2.0 * half_width * 0.9  # neighbouring rows overlap a little: they share a border
    lumps = rng.uniform(-0.15, 0.15, 2), rng.uniform(0.0, 2 * math.pi, 2)

    def edge(direction: float) -> float:
        return size * (1.0 + sum(amp * math.cos(k * direction + ph)
                                 for k, amp, ph in zip((2, 3), *lumps, strict=True)))

    rods: list[tuple[float, ...]] = []
    n_rows = int(size // pitch)
    for row in range(-n_rows, n_rows + 1):
        v = row * pitch + rng.normal(0.0, 0.3)
        left, right = (math.sqrt(max(edge(d) ** 2 - v**2, 0.0)) for d in (math.pi, 0.0))
        u = -left + rng.uniform(0.0, 0.6) * half_width * _ROD_LENGTH[1]
        while True:
            width = half_width * rng.uniform(0.92, 1.08)
            length = half_width * rng.uniform(*_ROD_LENGTH)
            if u + length > right:
                break
            middle = u + length / 2
            angle = axis + rng.normal(0.0, 0.03)
            rods.append((cx + middle * math.cos(axis) - v * math.sin(axis),
                         cy + middle * math.sin(axis) + v * math.cos(axis),
                         length / 2 - width, width, width, angle))
            u += length + rng.uniform(0.5, 3.0)
    return rods


def _ever_visible(
    x: NDArray, y: NDArray, reach: NDArray, drift: NDArray, config: SimulationConfig
) -> NDArray[np.bool_]:
    """Which bodies come within the frame (grown by their reach) in some frame."""
    t = np.arange(config.n_frames)[:, None]
    cx, cy = x[None] - drift[0] * t, y[None] - drift[1] * t
    inside = ((cx > -reach) & (cx < config.width + reach)
              & (cy > -reach) & (cy < config.height + reach))
    return inside.any(axis=0)


def _body(
    id: int, shape: tuple[float, ...], style: _Style, config: SimulationConfig,
    rng: np.random.Generator,
) -> Body:
    """A body with its motion, outline, nucleus, optics and kinetics drawn at random."""
    x, y, half_length, a, b, angle = (float(value) for value in shape)
    n_lobes = 4 if style.lobe_amplitude else 0
    late = rng.random() < config.late_fraction and config.n_frames > 2
    body = Body(
        id=id, x=x, y=y, half_length=half_length, a=a, b=b, angle=angle,
        spin=rng.uniform(-style.max_spin, style.max_spin),
        lobes=tuple(rng.uniform(0.0, style.lobe_amplitude, n_lobes) / np.arange(1, n_lobes + 1)),
        lobe_phases=tuple(rng.uniform(0.0, 2 * math.pi, n_lobes)),
        wobble=rng.uniform(0.0, style.max_wobble_px), wobble_rate=rng.uniform(0.05, 0.2),
        wobble_phase=rng.uniform(0.0, 2 * math.pi),
        wobble_direction=rng.uniform(0.0, 2 * math.pi),
        nucleus=(rng.uniform(-0.2, 0.2), rng.uniform(-0.15, 0.15), rng.uniform(0.35, 0.5)),
        contrast=float(np.exp(rng.normal(0.0, style.contrast_log_sigma))),
        appear_frame=int(rng.integers(1, max(2, config.n_frames // 2))) if late else 0,
        kinetics=(),
    )
    kinetics = tuple(draw_kinetics(config, body.area, rng) for _ in range(config.n_fluorescence))
    return replace(body, kinetics=kinetics)
