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

from fovflow.errors import FovflowError
from fovflow.execution import TaskContext
from fovflow.execution.allocator import release_freed_buffers, reuse_freed_buffers
from fovflow.io.background_model import (
    CorrectedFrames,
    open_background_model,
    write_background_model,
)
from fovflow.io.fingerprint import input_fingerprint
from fovflow.io.frames import Frames, create_frames
from fovflow.io.layout import (
    BACKGROUND_NAME,
    CORRECTED_CHOICES,
    CORRECTED_MANTISSA_BITS,
    CORRECTED_NAME,
    IMAGE_NAME,
    LABELS,
    LABELS_NAME,
    LINEAGE_NAME,
    MASKS,
    MASKS_NAME,
    PHASE,
    SHIFTS_NAME,
    WRITES_PARQUET,
    corrected_stack,
    corrected_store,
    fov_dir,
    fov_name,
    open_stack,
    parquet_name,
    raw_stack,
    step_outputs,
    traces_name,
)
from fovflow.io.lineage import run_lineage, write_lineage, write_shifts
from fovflow.io.microscopy import Dataset, DatasetMetadata, FrameStack
from fovflow.io.ngff import Scale, create_image, create_labels, create_source
from fovflow.io.store import remove_outputs, staged, write_columns_csv, write_columns_parquet
from fovflow.plugins import load_processing_plugins
from fovflow.processing.background import correct_background, model_background
from fovflow.processing.extraction import extract_features
from fovflow.processing.lineage import add_lineage_columns
from fovflow.processing.segmentation import resolve_diameter, segment_cells
from fovflow.processing.tracking import track_cells
from fovflow.workflow.config import WorkflowConfig, diameter_px
from fovflow.workflow.events import FovStarted, Progress, ProgressReporter, StepFinished

log = logging.getLogger(__name__)

STEPS = ("copy", "segmentation", "background", "tracking", "extraction")
UPSTREAM: dict[str, tuple[str, ...]] = {
    "copy": (),
    "segmentation": ("copy",),
    "background": ("copy", "segmentation"),
    "tracking": ("segmentation",),
    "extraction": ("background", "tracking"),
}


# Parameters added after run folders existed are hashed only where they change what the step
# did before them, so that those folders stay current (see `step_hashes`): the keys a switch
# governs only when it is on, and the others only at another value than the one that does as
# before. By "tracking" or "segmentation.METHOD": a plugin method's key of the same name as
# one of these is its own.
_SWITCHED = {"tracking": {"rejoin_pieces": ("rejoin_pieces", "min_rejoin_border"),
                          "split_joined_daughters": ("split_joined_daughters",
                                                     "min_joined_cover"),
                          "split_merged": ("min_merged_share",)}}
_AS_BEFORE = {"tracking": {"min_merged_share": 0.5, "border_daughters": False},
              "segmentation.bacteria": {"faint_seam": 0.0, "pale": 0.0}}


# Where a step's algorithm changed after run folders existed, for some of its parameters: a
# revision is hashed wherever the change applies, so those folders redo the step (and what
# follows) and no others. By kind, (revision, applies to these parameters).
_REVISED: dict[str, tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...]] = {
    # The brightness split's background continued past the border, its noise floor; the
    # diameter `auto` measures refined by the brightness split's cells.
    "segmentation.fluorescence": (("2026-12-02", lambda p: p["split"] == "brightness"),
                                  ("2026-12-02 diameter", lambda p: p["diameter"] == "auto"),
                                  # Basins cut again where their outline pinches.
                                  ("2026-12-02 necks", lambda p: p["split"] == "brightness"),
                                  # The cells' diameter refines `auto` only upwards.
                                  ("2026-12-02 diameter up", lambda p: p["diameter"] == "auto")),
    # The shipped network trained 5000 batches instead of 2000; its maps the mean of the
    # frame's and the frame's turned by half a turn.
    "segmentation.learned": (("2026-12-02", lambda p: p["network"] == "phase_mammalian"),
                             ("2026-12-02 half turn", lambda p: True)),
    # New regions rejoined too; split_merged below a share of 0.5 splits regions that hold
    # most of neither cell.
    "tracking": (("2026-12-02", lambda p: p["rejoin_pieces"]
                  or (p["split_merged"] and p["min_merged_share"] < 0.5)),
                 # Joined sisters split by shape (in the last frame, or with split_merged).
                 ("2026-12-02 lobes", lambda p: p["split_joined_daughters"])),
}


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
                 # Only for Z stacks, so runs of 2-D files made before z existed stay current;
                 # and only when not copying, so runs made before the choice stay current.
                 **({"z": metadata.z} if metadata.z is not None else {}),
                 **({"copy": config.copy} if config.copy != "copy" else {})},
        "segmentation": _changing(parameters["segmentation"],
                                  f"segmentation.{parameters['segmentation']['method']}"),
        # Pixels as before the choice (runs made then stay current), or the model.
        "background": {**parameters["background"], **(
            {"mantissa_bits": CORRECTED_MANTISSA_BITS} if config.corrected == "pixels"
            else {"corrected": config.corrected})},
        "tracking": _changing(parameters["tracking"], "tracking"),
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


def _changing(parameters: dict[str, Any], kind: str) -> dict[str, Any]:
    """`parameters` without the later ones that leave the step as it was (the `_SWITCHED`
    and `_AS_BEFORE` of `kind`: ``"tracking"`` or ``"segmentation.METHOD"``), with the
    `_REVISED` revisions that apply to them."""
    off = {key for switch, keys in _SWITCHED.get(kind, {}).items()
           if switch in parameters and not parameters[switch] for key in keys}
    before = _AS_BEFORE.get(kind, {})
    revised = [revision for revision, applies in _REVISED.get(kind, ()) if applies(parameters)]
    return {**{key: value for key, value in parameters.items()
               if key not in off and not (key in before and value == before[key])},
            **({"revised": revised} if revised else {})}


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
        return fov_name(self.fov)


@dataclass(frozen=True)
class FovResult:
    fov: int
    step_seconds: dict[str, float]


def process_fov(task: FovTask, context: TaskContext) -> FovResult:
    """Run `task.todo` for one FOV; the executors call this inside a worker."""
    context.send(FovStarted(task.fov, context.worker))
    folder = fov_dir(task.config.output, task.fov)
    context.set_up(reuse_freed_buffers)
    context.set_up(load_processing_plugins, task.config.plugins)  # user features and methods
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
    meta = task.metadata
    channels = _raw_channels(task.config)
    dataset = _open(meta)
    if task.config.copy == "read":  # the record of where the channels are, for the readers
        with staged(folder, [IMAGE_NAME]) as paths:
            create_source(paths[IMAGE_NAME], stacks=list(channels), source={
                "input": str(meta.path), "fingerprint": input_fingerprint(meta.path),
                "fov": task.fov, "channels": list(channels.values()), "z": meta.z})
        progress(meta.n_frames, meta.n_frames)
        return
    # A channel both segmented and measured (a fluorescence-only file) is stored once, under
    # its measured name; the segmented name is an alias of it.
    stored: dict[int, str] = {}
    for name, channel in channels.items():
        if channel not in stored or name != PHASE:
            stored[channel] = name
    aliases = {name: stored[channel] for name, channel in channels.items()
               if stored[channel] != name}
    with staged(folder, [IMAGE_NAME]) as paths:
        stacks = create_image(paths[IMAGE_NAME], stacks=list(stored.values()),
                              channel_names=[meta.channel_names[c] for c in stored],
                              n_frames=meta.n_frames, frame_shape=meta.frame_shape(task.fov),
                              dtype=meta.dtype, scale=Scale.of_fov(meta, task.fov),
                              aliases=aliases)
        for t in range(meta.n_frames):
            for channel, name in stored.items():
                stacks[name][t] = dataset.frame(task.fov, channel, t)
            progress(t + 1, meta.n_frames)


def _segment(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    frames = _stack(task, PHASE)
    method, diameter = parameters["method"], diameter_px(parameters["diameter"], task.metadata)
    diameter = resolve_diameter(frames, method=method, diameter=diameter)
    if parameters["diameter"] == "auto" and diameter is not None:
        log.info("FOV %d: estimated cell diameter %.1f px", task.fov, diameter)
    own = {name: value for name, value in parameters.items() if name not in ("method", "diameter")}
    with staged(folder, [MASKS_NAME]) as paths:
        out = create_frames(paths[MASKS_NAME], frames.shape[0], frames.shape[1:], np.uint32)
        segment_cells(frames, method=method, diameter=diameter if diameter is not None else "auto",
                      out=out, progress=progress, **own)


def _correct(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    # The other form, of an earlier run with the other choice, would be read first or waste
    # the space: one form of the corrected fluorescence per FOV. Removed first, so that a
    # crash before the new form is in place cannot leave the old one to be read.
    remove_outputs(folder, [corrected_store(other) for other in CORRECTED_CHOICES
                            if other != task.config.corrected])
    masks = _stack(task, MASKS)
    channels = task.config.fl_channels
    names = task.metadata.channel_names
    scale = Scale.of_fov(task.metadata, task.fov)
    if task.config.corrected == "model":
        knots = [model_background(_stack(task, raw_stack(channel)), masks,
                                  progress=_part(progress, index, len(channels)), **parameters)
                 for index, channel in enumerate(channels)]
        with staged(folder, [BACKGROUND_NAME]) as paths:
            write_background_model(
                paths[BACKGROUND_NAME], knots=np.stack(knots, axis=1),
                corrected=[corrected_stack(c) for c in channels],
                raw=[raw_stack(c) for c in channels],
                channel_names=[f"{names[c]} background" for c in channels], scale=scale,
                parameters=parameters)
    else:
        with staged(folder, [CORRECTED_NAME]) as paths:
            outputs = create_image(
                paths[CORRECTED_NAME], stacks=[corrected_stack(c) for c in channels],
                channel_names=[f"{names[c]} corrected" for c in channels],
                n_frames=masks.shape[0], frame_shape=masks.shape[1:], dtype=np.float32,
                scale=scale, mantissa_bits=CORRECTED_MANTISSA_BITS)
            for index, channel in enumerate(channels):
                correct_background(_stack(task, raw_stack(channel)), masks,
                                   out=outputs[corrected_stack(channel)],
                                   progress=_part(progress, index, len(channels)), **parameters)


def _track(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    masks = _stack(task, MASKS)
    with staged(folder, [LABELS_NAME, LINEAGE_NAME, SHIFTS_NAME]) as paths:
        out = create_labels(paths[LABELS_NAME], n_frames=masks.shape[0],
                            frame_shape=masks.shape[1:], dtype=np.uint32,
                            scale=Scale.of_fov(task.metadata, task.fov))
        tracking = track_cells(masks, out=out, progress=progress, **parameters)
        write_lineage(paths[LINEAGE_NAME], tracking.lineage)
        write_shifts(paths[SHIFTS_NAME], tracking.shifts)


def _extract(task: FovTask, folder: Path, parameters: dict[str, Any], progress: Progress) -> None:
    labels = _stack(task, LABELS)
    channels = task.config.fl_channels
    times = task.metadata.times[task.fov]
    if parameters["min_length"] > len(labels):  # a short movie would have no good cell at all
        log.warning("FOV %d: %d frames, fewer than the minimum trace length %d; cells present "
                    "in all frames count as good", task.fov, len(labels),
                    parameters["min_length"])
        parameters = {**parameters, "min_length": len(labels)}
    lineage = run_lineage(task.config.output, task.fov)
    with staged(folder, step_outputs("extraction", channels)) as paths:
        for index, channel in enumerate(channels):
            table = extract_features(
                labels, _stack(task, corrected_stack(channel)),
                features=task.config.features, times=times, fov=task.fov,
                progress=_part(progress, index, len(channels)), **parameters,
            )
            columns = add_lineage_columns(table, lineage, len(labels))
            write_columns_csv(paths[traces_name(channel)], columns)
            if WRITES_PARQUET:
                write_columns_parquet(paths[parquet_name(traces_name(channel))], columns)


def _raw_channels(config: WorkflowConfig) -> dict[str, int]:
    """The input's channels a run uses, by the name of their stack."""
    return {PHASE: config.segment_channel, **{raw_stack(c): c for c in config.fl_channels}}


def _stack(task: FovTask, name: str) -> Frames | FrameStack | CorrectedFrames:
    """The FOV's stack `name`, written by a step before this one (or, not copied, the input's
    channel, through the worker's open handle of the file; or, stored as its background
    model, computed from the raw channel)."""
    channels = _raw_channels(task.config)
    if task.config.copy == "read" and name in channels:
        return _open(task.metadata).stack(task.fov, channels[name])
    if task.config.corrected == "model" and (model := open_background_model(
            fov_dir(task.config.output, task.fov) / BACKGROUND_NAME, name)):
        return model.correct(_stack(task, model.raw))
    stack = open_stack(task.config.output, task.fov, name)
    if stack is None:
        raise FovflowError(f"FOV {task.fov}: {name} is missing from the run folder; run again "
                           "to redo the step that writes it")
    return stack


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
