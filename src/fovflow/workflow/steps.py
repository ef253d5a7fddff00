"""One FOV through copy -> segmentation -> background -> tracking -> extraction.

`process_fov` is the task the executors run: it reads its own frames from the input, skips
nothing it was not told to skip (the caller decides from the manifest), writes every output
atomically (`fovflow.io.store.staged`), reports progress per frame and `StepFinished` per step,
and stops at the next frame when the run is cancelled.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fovflow.io.lineage import LINEAGE_NAME, SHIFTS_NAME, run_lineage, write_lineage, write_shifts
from fovflow.io.microscopy import Dataset, DatasetMetadata
from fovflow.io.store import create_frames, fov_dir, open_frames, staged, write_columns_csv
from fovflow.plugins import load_processing_plugins
from fovflow.processing.background import correct_background
from fovflow.processing.extraction import extract_features
from fovflow.processing.lineage import add_lineage_columns
from fovflow.processing.segmentation import resolve_diameter, segment_cells
from fovflow.processing.tracking import track_cells
from fovflow.workflow.allocator import release_freed_buffers, reuse_freed_buffers
from fovflow.workflow.config import WorkflowConfig, diameter_px
from fovflow.workflow.events import FovStarted, Progress, ProgressReporter, StepFinished
from fovflow.workflow.executors import TaskContext

log = logging.getLogger(__name__)

STEPS = ("copy", "segmentation", "background", "tracking", "extraction")
UPSTREAM: dict[str, tuple[str, ...]] = {
    "copy": (),
    "segmentation": ("copy",),
    "background": ("copy", "segmentation"),
    "tracking": ("segmentation",),
    "extraction": ("background", "tracking"),
}


def step_outputs(step: str, fl_channels: tuple[int, ...]) -> list[str]:
    """File names (inside the FOV folder) that `step` writes."""
    per_channel = {
        "copy": "fl_ch_{}.zarr",
        "background": "fl_corrected_ch_{}.zarr",
        "extraction": "traces_ch_{}.csv",
    }
    names = [per_channel[step].format(c) for c in fl_channels] if step in per_channel else []
    fixed = {"copy": ["pc.zarr"], "segmentation": ["seg.zarr"],
             "tracking": ["labels.zarr", LINEAGE_NAME, SHIFTS_NAME]}
    return fixed.get(step, []) + names


def step_hashes(config: WorkflowConfig, metadata: DatasetMetadata,
                fingerprint: str) -> dict[str, str]:
    """A digest per step of everything its outputs depend on, upstream steps included.

    The input counts by its content (`fovflow.io.store.input_fingerprint`), not its path or
    time: a replaced input invalidates every output, a moved or copied one none.
    """
    parameters = config.step_parameters()
    own: dict[str, Any] = {
        "copy": {"input": fingerprint, "frames": metadata.n_frames,
                 "size": [metadata.height, metadata.width], "pc": config.segment_channel,
                 "fl": list(config.fl_channels),
                 # Only for Z stacks, so runs of 2-D files made before z existed stay current.
                 **({"z": metadata.z} if metadata.z is not None else {})},
        "segmentation": parameters["segmentation"],
        "background": parameters["background"],
        "tracking": parameters["tracking"],
        "extraction": {**parameters["extraction"], "features": list(config.features),
                       "times": metadata.time_unit},
    }
    digests: dict[str, str] = {}
    for step in STEPS:  # in order, so upstream digests exist when needed
        payload = {"step": step, "parameters": own[step],
                   "upstream": [digests[name] for name in UPSTREAM[step]]}
        text = json.dumps(payload, sort_keys=True, default=str)
        digests[step] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return digests


def steps_to_run(done: set[str]) -> tuple[str, ...]:
    """Steps not done, plus every step downstream of one that reruns."""
    todo: list[str] = []
    for step in STEPS:
        if step not in done or any(name in todo for name in UPSTREAM[step]):
            todo.append(step)
    return tuple(todo)


@dataclass(frozen=True)
class FovTask:
    """Everything a worker needs for one FOV (small: metadata, not an open file)."""

    metadata: DatasetMetadata
    config: WorkflowConfig
    fov: int
    todo: tuple[str, ...]

    @property
    def name(self) -> str:
        """``fov_003``: names the task in Dask's keys, dashboard and messages."""
        return f"fov_{self.fov:03d}"


@dataclass(frozen=True)
class FovResult:
    fov: int
    step_seconds: dict[str, float]


def process_fov(task: FovTask, context: TaskContext) -> FovResult:
    """Run `task.todo` for one FOV; the executors call this inside a worker."""
    context.send(FovStarted(task.fov, context.worker))
    folder = fov_dir(task.config.output, task.fov)
    reuse_freed_buffers()
    load_processing_plugins(task.config.plugins)  # user features and methods, in this worker too
    reporter = ProgressReporter(task.fov, context.send, context.cancel)
    parameters = task.config.step_parameters()
    seconds: dict[str, float] = {}
    try:
        for step in task.todo:
            start = time.perf_counter()
            log.info("FOV %d: %s started", task.fov, step)
            _STEP_RUNNERS[step](task, folder, parameters.get(step, {}), reporter.step(step))
            seconds[step] = time.perf_counter() - start
            log.info("FOV %d: %s finished in %.2f s", task.fov, step, seconds[step])
            context.send(StepFinished(task.fov, step, seconds[step]))
    finally:
        release_freed_buffers()  # the next FOV starts from the same footprint
    return FovResult(task.fov, seconds)


def _open(metadata: DatasetMetadata) -> Dataset:
    """The open handle of the file as it is now on disk (a file replaced by another of the
    same shape since the last FOV is opened anew, never read through the old handle)."""
    stat = metadata.path.stat()
    return _dataset(metadata, (stat.st_size, stat.st_mtime_ns, stat.st_ino))


@functools.lru_cache(maxsize=2)
def _dataset(metadata: DatasetMetadata, identity: tuple[int, int, int]) -> Dataset:
    """One open handle per worker process and file, reused by every FOV the worker runs."""
    return Dataset(metadata)


def _copy(task: FovTask, folder: Path, _: dict[str, Any], progress: Progress) -> None:
    meta, config = task.metadata, task.config
    channels = {"pc.zarr": config.segment_channel,
                **{f"fl_ch_{c}.zarr": c for c in config.fl_channels}}
    dataset = _open(meta)
    with staged(folder, list(channels)) as paths:
        arrays = {name: create_frames(paths[name], meta.n_frames, meta.frame_shape(task.fov),
                                      meta.dtype) for name in channels}
        for t in range(meta.n_frames):
            for name, channel in channels.items():
                arrays[name][t] = dataset.frame(task.fov, channel, t)
            progress(t + 1, meta.n_frames)


def _segment(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    frames = open_frames(folder / "pc.zarr")
    method, diameter = parameters["method"], diameter_px(parameters["diameter"], task.metadata)
    diameter = resolve_diameter(frames, method=method, diameter=diameter)
    if parameters["diameter"] == "auto" and diameter is not None:
        log.info("FOV %d: estimated cell diameter %.1f px", task.fov, diameter)
    own = {name: value for name, value in parameters.items() if name not in ("method", "diameter")}
    with staged(folder, ["seg.zarr"]) as paths:
        out = create_frames(paths["seg.zarr"], frames.shape[0], frames.shape[1:], np.uint32)
        segment_cells(frames, method=method, diameter=diameter if diameter is not None else "auto",
                      out=out, progress=progress, **own)


def _correct(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    masks = open_frames(folder / "seg.zarr")
    channels = task.config.fl_channels
    names = [f"fl_corrected_ch_{c}.zarr" for c in channels]
    with staged(folder, names) as paths:
        for index, (channel, name) in enumerate(zip(channels, names, strict=True)):
            raw = open_frames(folder / f"fl_ch_{channel}.zarr")
            out = create_frames(paths[name], raw.shape[0], raw.shape[1:], np.float32)
            correct_background(raw, masks, out=out, progress=_part(progress, index, len(names)),
                               **parameters)


def _track(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    masks = open_frames(folder / "seg.zarr")
    with staged(folder, ["labels.zarr", LINEAGE_NAME, SHIFTS_NAME]) as paths:
        out = create_frames(paths["labels.zarr"], masks.shape[0], masks.shape[1:], np.uint32)
        tracking = track_cells(masks, out=out, progress=progress, **parameters)
        write_lineage(paths[LINEAGE_NAME], tracking.lineage)
        write_shifts(paths[SHIFTS_NAME], tracking.shifts)


def _extract(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    labels = open_frames(folder / "labels.zarr")
    channels = task.config.fl_channels
    names = [f"traces_ch_{c}.csv" for c in channels]
    times = task.metadata.times[task.fov]
    if parameters["min_length"] > len(labels):  # a short movie would have no good cell at all
        log.warning("FOV %d: %d frames, fewer than the minimum trace length %d; cells present "
                    "in all frames count as good", task.fov, len(labels),
                    parameters["min_length"])
        parameters = {**parameters, "min_length": len(labels)}
    lineage = run_lineage(task.config.output, task.fov)
    with staged(folder, names) as paths:
        for index, (channel, name) in enumerate(zip(channels, names, strict=True)):
            table = extract_features(
                labels, open_frames(folder / f"fl_corrected_ch_{channel}.zarr"),
                features=task.config.features, times=times, fov=task.fov,
                progress=_part(progress, index, len(names)), **parameters,
            )
            write_columns_csv(paths[name], add_lineage_columns(table, lineage, len(labels)))


def _part(progress: Progress, index: int, count: int) -> Progress:
    """Progress of part `index` of `count` equal parts, reported as one step."""
    def report(done: int, total: int) -> None:
        progress(index * total + done, count * total)
    return report


_STEP_RUNNERS: dict[str, Callable[[FovTask, Path, dict[str, Any], Progress], None]] = {
    "copy": _copy,
    "segmentation": _segment,
    "background": _correct,
    "tracking": _track,
    "extraction": _extract,
}
