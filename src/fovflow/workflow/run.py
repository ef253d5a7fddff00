"""`run_workflow`: every selected FOV through the steps, in parallel, resumable, observable.

The caller's thread owns the manifest: it records each finished step as its `StepFinished`
event arrives, and each FOV as it ends, so an interrupted run loses at most the step that was
running. Events reach `on_event` in the caller's thread, ending with `RunFinished(report)`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fovflow import __version__
from fovflow.errors import FovflowError
from fovflow.execution import CancelToken, Executor, ignore_event
from fovflow.io.fingerprint import input_fingerprint
from fovflow.io.layout import CONFIG_NAME, LOG_NAME, manifest_header, step_outputs
from fovflow.io.manifest import Manifest
from fovflow.io.microscopy import DatasetMetadata
from fovflow.io.store import locked_run_folder, remove_partials
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.events import (
    FovFinished,
    FovStarted,
    RunFinished,
    RunStarted,
    StepFinished,
)
from fovflow.workflow.prepare import PreparedRun, prepare_run
from fovflow.workflow.report import RunReport, RunTally
from fovflow.workflow.steps import (
    STEPS,
    FovTask,
    process_fov,
    step_hashes,
    steps_to_run,
)

__all__ = ["RunReport", "run_workflow"]

log = logging.getLogger(__name__)
OnEvent = Callable[[Any], None]


def run_workflow(
    config: WorkflowConfig | PreparedRun,
    *,
    executor: Executor | None = None,
    on_event: OnEvent | None = None,
    cancel: CancelToken | None = None,
    metadata: DatasetMetadata | None = None,
) -> RunReport:
    """Process the FOVs `config` selects; return when all have ended or the run is cancelled.

    Parameters
    ----------
    config : WorkflowConfig or PreparedRun
        Checked against its plugins, steps, file and run folder (`prepare_run`) before
        anything is written, unless the caller has prepared it.
    executor : Executor, optional
        Where FOVs run; by default the one `config` names, created and shut down here.
    on_event : callable, optional
        Receives every event (progress, step and FOV ends, the final `RunFinished`) in the
        caller's thread.
    cancel : CancelToken, optional
        Set it (from another thread or a signal handler) to stop: running FOVs stop at their
        next frame and leave no partial output, queued FOVs never start.
    metadata : DatasetMetadata, optional
        The input's metadata if the caller has just read it (a GUI has): saves reading the
        file again. Ignored unless it describes `config.input`, or `config` is prepared.

    Raises
    ------
    FovflowError
        On a bad input file or configuration, before any FOV starts.
    """
    start = time.perf_counter()
    own_executor = executor is None
    if executor is None:  # its workers boot while the file's metadata is read
        executor = config.execution.build(preload=(process_fov.__module__,))
        executor.start()
    try:
        return _run(config, executor, on_event, cancel, start, metadata)
    finally:
        if own_executor:
            executor.shutdown()


def _run(config: WorkflowConfig | PreparedRun, executor: Executor, on_event: OnEvent | None,
         cancel: CancelToken | None, start: float, known: DatasetMetadata | None) -> RunReport:
    prepared = config if isinstance(config, PreparedRun) else prepare_run(config, known)
    output = prepared.config.output
    with contextlib.ExitStack() as stack:
        try:
            output.mkdir(parents=True, exist_ok=True)
            # Refuses a folder another run writes to, before anything in it is touched.
            stale_lock = stack.enter_context(locked_run_folder(output))
            stack.callback(_detach_run_log, _attach_run_log(output / LOG_NAME))
        except OSError as exc:
            raise _unwritable(output, exc) from exc
        if stale_lock:
            log.warning("took over the lock of a run that ended without releasing it (%s)",
                        stale_lock)
        return _run_in_locked_folder(prepared, executor, on_event or ignore_event,
                                     cancel or CancelToken(), start)


def _run_in_locked_folder(prepared: PreparedRun, executor: Executor, deliver: OnEvent,
                          cancel: CancelToken, start: float) -> RunReport:
    config, metadata = prepared.config, prepared.metadata
    log.info("fovflow %s: run of %s into %s, FOVs %s", __version__, metadata.path, config.output,
             config.fovs)
    if removed := remove_partials(config.output):
        log.info("removed %d partial outputs of an interrupted run", removed)
    fingerprint = input_fingerprint(metadata.path)
    manifest = _open_manifest(prepared, fingerprint)
    plan = _Plan.of(prepared, manifest, fingerprint)
    deliver(RunStarted(tuple(prepared.fovs), plan.todo, metadata.n_frames))
    tally = RunTally(config.output, tuple(prepared.fovs),
                     tuple(fov for fov, steps in plan.todo.items() if not steps))
    for fov in tally.skipped:
        deliver(FovFinished(fov, ok=True, skipped=True))
    if tally.skipped:
        log.info("FOVs already complete and current, skipped: %s", list(tally.skipped))
    report = _run_fovs(prepared, plan, executor, manifest, tally, deliver, cancel, start)
    deliver(RunFinished(report))
    return report


def _open_manifest(prepared: PreparedRun, fingerprint: str) -> Manifest:
    """The folder's manifest with this run's header, written, and the run's configuration
    saved beside it: both before any FOV starts."""
    config, metadata = prepared.config, prepared.metadata
    manifest = Manifest.open(config.output, input_path=metadata.path, header=manifest_header(
        metadata, version=__version__, fingerprint=fingerprint,
        segment_channel=config.segment_channel, fl_channels=config.fl_channels,
        config=config.to_dict()), recorded=prepared.recorded)
    try:
        manifest.write()
        config.save(config.output / CONFIG_NAME)
    except OSError as exc:  # a full or read-only disk: nothing has run yet
        raise _unwritable(config.output, exc) from exc
    return manifest


@dataclass(frozen=True)
class _Plan:
    """What each FOV has to do: its steps not complete and current, by the manifest."""

    hashes: dict[str, str]  # per step, of everything its outputs depend on
    outputs: dict[str, list[str]]  # per step, the files it writes in a FOV folder
    todo: dict[int, tuple[str, ...]]  # per FOV

    @classmethod
    def of(cls, prepared: PreparedRun, manifest: Manifest, fingerprint: str) -> _Plan:
        config = prepared.config
        hashes = step_hashes(config, prepared.metadata, fingerprint)
        outputs = {step: step_outputs(step, config.fl_channels, corrected=config.corrected)
                   for step in STEPS}
        return cls(hashes, outputs, {fov: steps_to_run(manifest.done_steps(fov, hashes, outputs))
                                     for fov in prepared.fovs})


def _run_fovs(prepared: PreparedRun, plan: _Plan, executor: Executor, manifest: Manifest,
              tally: RunTally, deliver: OnEvent, cancel: CancelToken,
              start: float) -> RunReport:
    """Every FOV with steps to do through the executor, each step and FOV recorded in the
    manifest as it ends; the run's report."""
    tasks = [FovTask(prepared.metadata, prepared.config, fov, steps)
             for fov, steps in plan.todo.items() if steps]

    def on_worker_event(event: Any) -> None:
        if isinstance(event, FovStarted):
            event = tally.started(event)
        elif isinstance(event, StepFinished):
            _update(manifest.record_step, event.fov, event.step, digest=plan.hashes[event.step],
                    seconds=event.seconds, outputs=plan.outputs[event.step])
        deliver(event)

    try:
        for outcome in executor.map_unordered(process_fov, tasks, on_event=on_worker_event,
                                              cancel=cancel):
            event = tally.ended(outcome)
            _update(manifest.record_fov, event.fov, status=tally.status[event.fov],
                    seconds=event.seconds, error=tally.note(event.fov))
            deliver(event)
    finally:  # on every way out, even an unexpected error: the manifest and the log stay true
        for fov in tally.interrupted(manifest):
            _update(manifest.record_fov, fov, status="cancelled")
        report = tally.report(aborted=cancel.aborted, seconds=time.perf_counter() - start)
        tally.log_summary(report)
    return report


def _unwritable(output: Path, exc: OSError) -> FovflowError:
    return FovflowError(f"cannot write to the run folder {output}: {exc.strerror or exc}; "
                        "free some space or choose another folder (-o)")


def _detach_run_log(handler: logging.Handler) -> None:
    logging.getLogger("fovflow").removeHandler(handler)
    try:
        handler.close()  # flushes: fails on a full disk
    except OSError as exc:
        log.warning("the last lines of %s are lost: %s", LOG_NAME, exc)


def _update(record: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Update the manifest, or log why it cannot be (a full or read-only disk) and go on.

    The outputs are whole either way and the manifest keeps its last complete version: a step
    it does not record is redone by the next run. Raising here would stop the FOVs still
    running and lose the report of those that finished.
    """
    try:
        record(*args, **kwargs)
    except OSError as exc:
        log.error("cannot update the manifest (%s); the next run redoes what it misses", exc)


def _attach_run_log(path: Path) -> logging.Handler:
    """Append this run's records (the workers' too: they are forwarded) to ``run.log``."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("fovflow")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
