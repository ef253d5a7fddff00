"""Simulated multi-FOV time-lapse movies with ground truth.

Each FOV is a window onto a plane of cells that drifts with the stage, so cells enter and leave
the field; some cells only appear after frame 0. The `kind` of cells (`CELL_KINDS`) sets what
channel 0 shows: phase contrast of well separated cells (``isolated``, `synthetic_isolated`),
of touching mammalian-like cells (``crowded``), of rods packed in microcolonies (``bacteria``)
or of small round cells (``small``), or a fluorescent nuclear marker (``nuclei``) (the last four
in `synthetic_kinds`). Channels 1.. are fluorescence whose per-cell total intensity follows a
kinetic model (`fovflow.kinetics`) with known parameters, on a smooth background with shot-like
noise. Everything is deterministic per (seed, FOV), so FOVs can be rendered independently and in
any order.

`write_simulation` streams frames into a multi-scene OME-TIFF (one scene per FOV, per-plane
``DeltaT`` timestamps, channel names) and writes the ground truth beside it::

    sim.ome.tif
    sim.truth/  labels_fov_000.zarr (T, Y, X uint16)  lineage_fov_000.csv  cells.csv  traces.csv
                simulation.yaml

With `SimulationConfig.cell_cycle_h` the cells of the packed kinds divide
(`synthetic_divisions`); ``lineage_fov_NNN.csv`` (``track, parent, first_frame, last_frame``,
frames in which the cell is in view) holds the true parent links.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import tifffile
import yaml
import zarr
from numpy.typing import NDArray

from fovflow.errors import FovflowError
from fovflow.io.lineage import write_lineage
from fovflow.io.synthetic_config import (
    CELL_KINDS,
    FLUORESCENCE_CHANNEL_NAMES,
    NUCLEI_CHANNEL_NAME,
    PHASE_CHANNEL_NAME,
    CellKind,
    SimulatedFrame,
    SimulationConfig,
)
from fovflow.io.synthetic_isolated import IsolatedScene
from fovflow.io.synthetic_kinds import PackedScene
from fovflow.processing.lineage import Lineage
from fovflow.progress import Progress

__all__ = [
    "CELL_KINDS",
    "FLUORESCENCE_CHANNEL_NAMES",
    "NUCLEI_CHANNEL_NAME",
    "PHASE_CHANNEL_NAME",
    "CellKind",
    "SimulatedFov",
    "SimulatedFrame",
    "SimulationConfig",
    "SimulationFiles",
    "simulate_fov",
    "truth_dir_for",
    "write_simulation",
]



class _Scene(Protocol):
    def render(self, t: int) -> SimulatedFrame: ...

    def cell_rows(self, seen: set[int]) -> list[dict[str, float | int | str]]: ...

    def parents(self) -> dict[int, int]: ...


def _scene_for(config: SimulationConfig, fov: int) -> _Scene:
    """The scene that renders FOV `fov` of the configured kind."""
    if config.kind == "isolated":
        return IsolatedScene(config, fov)
    return PackedScene(config, fov)


@dataclass
class SimulatedFov:
    """A whole FOV in memory: image stacks (T, Y, X), labels and ground-truth tables.

    `phase` is channel 0: phase contrast, or the nuclear marker for kind ``nuclei``.
    `lineage` has the cells in view, with their mothers (divisions).
    """

    phase: NDArray[np.uint16]
    fluorescence: NDArray[np.uint16]  # (n_fluorescence, T, Y, X)
    labels: NDArray[np.uint16]
    cells: list[dict[str, float | int | str]] = field(default_factory=list)
    traces: list[dict[str, float | int | str]] = field(default_factory=list)
    lineage: Lineage = field(default_factory=lambda: _truth_lineage([], {}))


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
    scene = _scene_for(config, fov)
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
    result.lineage = _truth_lineage(result.traces, scene.parents())
    return result


def _truth_lineage(traces: list[dict[str, float | int | str]], parents: dict[int, int]
                   ) -> Lineage:
    """Per cell in view: its mother and the first and last frame it is in view."""
    cell = np.array([int(row["cell"]) for row in traces], np.int64)
    frame = np.array([int(row["frame"]) for row in traces], np.int64)
    tracks, index = np.unique(cell, return_inverse=True)
    first = np.full(len(tracks), np.iinfo(np.int64).max)
    last = np.full(len(tracks), -1, np.int64)
    np.minimum.at(first, index, frame)
    np.maximum.at(last, index, frame)
    parent = np.array([parents.get(track, 0) for track in tracks.tolist()], np.int64)
    return Lineage(tracks, parent, first, last)


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
            scene = _scene_for(config, fov)
            first_trace = len(traces)
            labels = zarr.create_array(
                store=truth / f"labels_fov_{fov:03d}.zarr",
                shape=(config.n_frames, config.height, config.width),
                chunks=(1, config.height, config.width),
                dtype="uint16",
            )

            def planes(scene: _Scene = scene, labels: zarr.Array = labels) -> Iterator:
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
            write_lineage(truth / f"lineage_fov_{fov:03d}.csv",
                          _truth_lineage(traces[first_trace:], scene.parents()))
    _write_csv(truth / "cells.csv", cells)
    _write_csv(truth / "traces.csv", traces)
    (truth / "simulation.yaml").write_text(yaml.safe_dump(config.as_record(), sort_keys=False))


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
