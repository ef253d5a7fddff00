"""Simulated multi-FOV time-lapse movies with ground truth.

Each FOV is a window onto a plane of non-overlapping elliptical cells that drifts with the stage,
so cells enter and leave the field; some cells only appear after frame 0. Channel 0 is phase
contrast (textured dark cells on a smooth, noisy, unevenly lit background); channels 1.. are
fluorescence whose per-cell total intensity follows a kinetic model (`fovflow.kinetics`) with
known parameters, on a smooth background with shot-like noise. Everything is deterministic per
(seed, FOV), so FOVs can be rendered independently and in any order.

`write_simulation` streams frames into a multi-scene OME-TIFF (one scene per FOV, per-plane
``DeltaT`` timestamps) and writes the ground truth beside it::

    sim.ome.tif
    sim.truth/  labels_fov_000.zarr (T, Y, X uint16)  cells.csv  traces.csv  simulation.yaml
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tifffile
import yaml
import zarr
from numpy.typing import NDArray

from fovflow import kinetics
from fovflow.errors import ConfigError, FovflowError

Progress = Callable[[int, int], None]

PHASE_CHANNEL_NAME = "Phase"
FLUORESCENCE_CHANNEL_NAMES = ("GFP", "mCherry", "CFP", "YFP")
_CELL_GAP_PX = 24.0  # free space between cells: wider than a 19 px closing and twice the wobble
_MAX_WOBBLE_PX = 1.5


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Defaults give a small, quick data set like the demo's."""

    n_fovs: int = 4
    n_frames: int = 60
    height: int = 512
    width: int = 512
    n_fluorescence: int = 1
    model: str = "maturation"
    frame_interval_s: float = 600.0
    pixel_size_um: float = 0.65
    cell_radius_px: float = 35.0
    cells_per_megapixel: float = 60.0
    late_fraction: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.n_fovs >= 1, "n_fovs must be at least 1"),
            (self.n_frames >= 1, "n_frames must be at least 1"),
            (self.height >= 32 and self.width >= 32, "height and width must be at least 32 pixels"),
            (self.height * self.width <= 8192**2, "frames above 8192x8192 are not supported"),
            (1 <= self.n_fluorescence <= len(FLUORESCENCE_CHANNEL_NAMES),
             f"n_fluorescence must be between 1 and {len(FLUORESCENCE_CHANNEL_NAMES)}"),
            (self.model in kinetics.MODELS,
             f"model must be one of {', '.join(kinetics.MODELS)}, not {self.model!r}"),
            (self.frame_interval_s > 0, "frame_interval_s must be positive"),
            (self.cells_per_megapixel >= 0, "cells_per_megapixel must not be negative"),
            (4 <= self.cell_radius_px <= 500, "cell_radius_px must be between 4 and 500"),
            (0 <= self.late_fraction <= 1, "late_fraction must be between 0 and 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return (PHASE_CHANNEL_NAME, *FLUORESCENCE_CHANNEL_NAMES[: self.n_fluorescence])

    @property
    def times_s(self) -> NDArray[np.float64]:
        return np.arange(self.n_frames) * self.frame_interval_s


@dataclass(frozen=True)
class SimulatedFrame:
    """One rendered time point of one FOV."""

    phase: NDArray[np.uint16]
    fluorescence: tuple[NDArray[np.uint16], ...]
    labels: NDArray[np.uint16]
    truth: list[dict[str, float | int | str]]


@dataclass
class SimulatedFov:
    """A whole FOV in memory: image stacks (T, Y, X), labels and ground-truth tables."""

    phase: NDArray[np.uint16]
    fluorescence: NDArray[np.uint16]  # (n_fluorescence, T, Y, X)
    labels: NDArray[np.uint16]
    cells: list[dict[str, float | int | str]] = field(default_factory=list)
    traces: list[dict[str, float | int | str]] = field(default_factory=list)


@dataclass(frozen=True)
class SimulationFiles:
    image: Path
    truth: Path


def simulate_fov(config: SimulationConfig, fov: int) -> SimulatedFov:
    """Render FOV `fov` of the simulation fully in memory (for tests and small data).

    Notes
    -----
    Memory is (2 + n_fluorescence) x T x Y x X x 2 bytes; use `write_simulation` for large data.
    """
    scene = _FovScene(config, fov)
    shape = (config.n_frames, config.height, config.width)
    result = SimulatedFov(
        phase=np.empty(shape, np.uint16),
        fluorescence=np.empty((config.n_fluorescence, *shape), np.uint16),
        labels=np.empty(shape, np.uint16),
    )
    for t in range(config.n_frames):
        frame = scene.render(t)
        result.phase[t] = frame.phase
        result.fluorescence[:, t] = frame.fluorescence
        result.labels[t] = frame.labels
        result.traces.extend(frame.truth)
    result.cells = scene.cell_rows({int(row["cell"]) for row in result.traces})
    return result


def truth_dir_for(image_path: Path) -> Path:
    """Where the ground truth of a simulated file lives: ``sim.ome.tif`` -> ``sim.truth``."""
    name = image_path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return image_path.with_name(name + ".truth")


def write_simulation(
    path: str | os.PathLike[str],
    config: SimulationConfig,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> SimulationFiles:
    """Simulate every FOV and write a multi-scene OME-TIFF plus its ground truth.

    Frames are rendered and written one at a time, so memory stays near one frame per channel
    whatever the size of the data set. Both outputs are written under temporary names and
    renamed when complete: an interrupted run (or a `progress` callback that raises
    `fovflow.errors.Cancelled`) leaves nothing behind.

    Raises
    ------
    FovflowError
        If the output exists (and `overwrite` is false), its extension is not ``.ome.tif(f)``
        or its folder cannot be created.
    """
    image = Path(path)
    if not image.name.lower().endswith((".ome.tif", ".ome.tiff")):
        raise FovflowError(f"{image}: simulated data is written as OME-TIFF; name it *.ome.tif")
    truth = truth_dir_for(image)
    if not overwrite and (image.exists() or truth.exists()):
        raise FovflowError(f"{image} already exists; choose another name or pass --force")
    try:
        image.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FovflowError(f"cannot create output folder {image.parent}: {exc.strerror}") from exc

    partial_image = image.with_name(image.name + ".partial")
    partial_truth = truth.with_name(truth.name + ".partial")
    shutil.rmtree(partial_truth, ignore_errors=True)
    partial_truth.mkdir()
    try:
        _write_partial(partial_image, partial_truth, config, progress)
        _replace(partial_truth, truth)
        os.replace(partial_image, image)
    except BaseException:
        partial_image.unlink(missing_ok=True)
        shutil.rmtree(partial_truth, ignore_errors=True)
        raise
    return SimulationFiles(image=image, truth=truth)


def _write_partial(
    image: Path, truth: Path, config: SimulationConfig, progress: Progress | None
) -> None:
    n_channels = 1 + config.n_fluorescence
    n_bytes = config.n_fovs * config.n_frames * n_channels * config.height * config.width * 2
    cells: list[dict[str, float | int | str]] = []
    traces: list[dict[str, float | int | str]] = []
    done, total = 0, config.n_fovs * config.n_frames
    with tifffile.TiffWriter(image, bigtiff=n_bytes > 2**32 - 2**25, ome=True) as writer:
        for fov in range(config.n_fovs):
            scene = _FovScene(config, fov)
            first_trace = len(traces)
            labels = zarr.create_array(
                store=truth / f"labels_fov_{fov:03d}.zarr",
                shape=(config.n_frames, config.height, config.width),
                chunks=(1, config.height, config.width),
                dtype="uint16",
            )

            def planes(scene: _FovScene = scene, labels: zarr.Array = labels) -> Iterator:
                nonlocal done
                for t in range(config.n_frames):
                    frame = scene.render(t)
                    labels[t] = frame.labels
                    traces.extend(frame.truth)
                    yield frame.phase
                    yield from frame.fluorescence
                    done += 1
                    if progress is not None:
                        progress(done, total)

            writer.write(
                planes(),
                shape=(config.n_frames, n_channels, config.height, config.width),
                dtype=np.uint16,
                photometric="minisblack",
                metadata=_ome_metadata(config, fov),
            )
            cells.extend(scene.cell_rows({int(row["cell"]) for row in traces[first_trace:]}))
    _write_csv(truth / "cells.csv", cells)
    _write_csv(truth / "traces.csv", traces)
    (truth / "simulation.yaml").write_text(yaml.safe_dump(asdict(config), sort_keys=False))


def _ome_metadata(config: SimulationConfig, fov: int) -> dict[str, object]:
    n_channels = 1 + config.n_fluorescence
    delta_t = [float(t) for t in config.times_s for _ in range(n_channels)]
    return {
        "axes": "TCYX",
        "Name": f"fov_{fov:03d}",
        "PhysicalSizeX": config.pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": config.pixel_size_um,
        "PhysicalSizeYUnit": "µm",
        "Channel": {"Name": list(config.channel_names)},
        "Plane": {"DeltaT": delta_t, "DeltaTUnit": ["s"] * len(delta_t)},
    }


def _write_csv(path: Path, rows: list[dict[str, float | int | str]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _replace(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    os.replace(source, target)


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


class _FovScene:
    """The cells, illumination and backgrounds of one FOV, rendered frame by frame."""

    def __init__(self, config: SimulationConfig, fov: int) -> None:
        self.config = config
        self.fov = fov
        self._seed = np.random.SeedSequence([config.seed, fov])
        rng = np.random.default_rng(self._seed.spawn(1)[0])
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(0.4, 1.0)  # px per frame
        self.drift = np.array([math.cos(angle), math.sin(angle)]) * speed
        self.cells = _place_cells(config, self.drift, rng)
        self.illumination = _smooth_field(config.height, config.width, rng, 2000.0, 0.25)
        self.fl_background = [
            _smooth_field(config.height, config.width, rng, rng.uniform(80, 160), 0.4)
            for _ in range(config.n_fluorescence)
        ]
        self._times_h = config.times_s / 3600.0
        self._totals = [
            [_model_values(config.model, params, self._times_h) for params in cell.kinetics]
            for cell in self.cells
        ]

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
            _to_uint16(background + sig + rng.normal(0, 1, sig.shape) * np.sqrt(background + sig))
            for background, sig in zip(self.fl_background, signal, strict=True)
        )
        return SimulatedFrame(_to_uint16(phase), fluorescence, labels, truth)

    def _rasterize(
        self, cell: _Cell, t: int
    ) -> tuple[tuple[slice, slice], NDArray[np.bool_], int] | None:
        """The cell's visible mask in frame `t` with its slice, and its unclipped area."""
        cfg = self.config
        wobble = cell.wobble * math.sin(cell.wobble_rate * t + cell.wobble_phase)
        cx = cell.x - self.drift[0] * t + wobble
        cy = cell.y - self.drift[1] * t + wobble * 0.5
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
    travel = drift * (config.n_frames - 1)
    margin = 1.5 * config.cell_radius_px
    x_lo, x_hi = min(0.0, travel[0]) - margin, config.width + max(0.0, travel[0]) + margin
    y_lo, y_hi = min(0.0, travel[1]) - margin, config.height + max(0.0, travel[1]) + margin
    target = round(config.cells_per_megapixel * (x_hi - x_lo) * (y_hi - y_lo) / 1e6)
    centers = np.empty((0, 2))
    radii = np.empty(0)
    cells: list[_Cell] = []
    for _ in range(target * 30):
        if len(cells) == target:
            break
        a = config.cell_radius_px * rng.uniform(0.95, 1.35)
        b = config.cell_radius_px * rng.uniform(0.7, 0.95)
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
                _draw_kinetics(config, a * b * math.pi, rng) for _ in range(config.n_fluorescence)
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


def _draw_kinetics(
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
        scale_keys = ("G0", "Gu0")
    elif config.model == "trivial":
        shape = {"t0": onset_h, "ktl": 1.0, "delta": delta, "beta": beta}
        scale_keys = ("ktl",)
    else:
        shape = {"t0": onset_h, "ktl": 1.0, "delta": delta, "beta": beta, "km": km}
        scale_keys = ("ktl",)
    grid = np.linspace(0.0, max(duration_h, 1e-3), 200)
    peak = float(np.max(kinetics.MODELS[config.model](grid, **shape, offset=0.0)))
    scale = area * rng.uniform(150.0, 1200.0) / peak if peak > 0 else 0.0
    params = {key: (value * scale if key in scale_keys else value) for key, value in shape.items()}
    params["offset"] = offset
    return {key: round(float(value), 6) for key, value in params.items()}


def _model_values(model: str, params: dict[str, float], times_h: NDArray) -> NDArray:
    return kinetics.MODELS[model](times_h, **params)


def _smooth_field(
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


def _to_uint16(image: NDArray) -> NDArray[np.uint16]:
    return np.clip(np.rint(image), 0, np.iinfo(np.uint16).max).astype(np.uint16)
