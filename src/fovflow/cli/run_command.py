"""`fovflow run`: process a microscopy file with progress bars, clean Ctrl-C and a summary."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fovflow.cli.console import console, err_console
from fovflow.errors import ConfigError, FovflowError
from fovflow.execution import ABORT_WAIT_S, CancelToken
from fovflow.io.layout import LOG_NAME
from fovflow.ranges import format_ranges, parse_ranges
from fovflow.workflow.events import FovFinished, RunStarted, StepFinished, StepProgress

if TYPE_CHECKING:
    from fovflow.workflow.prepare import PreparedRun
    from fovflow.workflow.run import RunReport

log = logging.getLogger("fovflow.cli")
EXIT_FAILED, EXIT_CANCELLED, EXIT_TERMINATED = 1, 130, 143  # 128 + the signal


def run(
    input: Annotated[Path | None, typer.Argument(
        help="Microscopy file (OME-TIFF, ND2, CZI); optional with a --config that names it "
             "(input:).", metavar="FILE", show_default=False,
    )] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder.")] = None,
    segment_channel: Annotated[int | None, typer.Option(
        "--segment-channel", "--pc", help="Channel to segment; --pc is its old name.",
        show_default="0",
    )] = None,
    fl: Annotated[str | None, typer.Option(
        help="Channels to measure, e.g. 1,2.",
        show_default="every channel but the segmented one; that one if it is the only one",
    )] = None,
    method: Annotated[str | None, typer.Option(
        help="Segmentation method: phase, bacteria (rods; the diameter is their width), "
             "fluorescence, learned (a network trained on spread cells in phase contrast) or "
             "a plugin's.", show_default="phase",
    )] = None,
    diameter: Annotated[str | None, typer.Option(
        help="Typical cell diameter: pixels, microns like 12um, or auto.", show_default="auto",
    )] = None,
    fovs: Annotated[str | None, typer.Option(help="FOVs to process, e.g. 0-9,12.",
                                             show_default="all")] = None,
    z: Annotated[str | None, typer.Option(
        "--z", help="Z stacks: a plane index, or max or mean (a projection per frame).",
    )] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: cores).")] = None,
    max_in_flight: Annotated[int | None, typer.Option(
        "--max-in-flight", "--batch-size",
        help="Most FOVs in flight at once (default: --workers); --batch-size is its old name.",
    )] = None,
    executor: Annotated[
        str | None, typer.Option(help="process, thread, serial or dask.", show_default="process")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786.")
    ] = None,
    min_length: Annotated[
        int | None, typer.Option(help="Frames a cell needs to count as good.", show_default="30")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Features to extract, e.g. intensity_total,area.")
    ] = None,
    plugins: Annotated[
        list[Path] | None, typer.Option("--plugins", help="Folder of plugin files (features).")
    ] = None,
    copy: Annotated[str | None, typer.Option(
        "--copy", help="copy: the raw channels into the run folder; read: read them from the "
                       "input (half the disk; the input must stay where it is).",
        show_default="copy",
    )] = None,
    corrected: Annotated[str | None, typer.Option(
        "--corrected", help="model: store the background under the corrected fluorescence "
                            "(a few numbers per frame) and correct when read; pixels: store "
                            "the corrected pixels.",
        show_default="model",
    )] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML configuration with the keys of "
                                  "RUN/run_config.yaml (input and output among them); options "
                                  "override it.")
    ] = None,
    qc_report: Annotated[bool, typer.Option(
        "--report/--no-report", help="Write the QC page RUN/report.html at the end (as "
                                     "fovflow report does).",
    )] = True,
) -> None:
    """Segment, correct, track and measure every selected FOV, in parallel and resumably.

    Rerunning the same command skips the work already done. Ctrl-C cancels cleanly (finished
    FOVs are kept, nothing partial is left); a second Ctrl-C, or SIGTERM, aborts: running FOVs
    get a second to stop before their workers are stopped. A second run into a folder a run
    is writing to is refused.
    """
    overrides: dict[str, Any] = {}
    for key, value in [("input", input), ("output", output),
                       ("segment_channel", segment_channel), ("fovs", fovs), ("z", z),
                       ("n_workers", workers), ("max_in_flight", max_in_flight),
                       ("executor", executor), ("scheduler", scheduler), ("copy", copy),
                       ("corrected", corrected)]:
        if value is not None:
            overrides[key] = value
    if fl is not None:
        overrides["fl_channels"] = _channels(fl)
    if min_length is not None:
        overrides["extraction"] = {"min_length": min_length}
    segmentation = {"method": method, "diameter": _number_or_text(diameter)}
    segmentation = {key: value for key, value in segmentation.items() if value is not None}
    if segmentation:
        overrides["segmentation"] = segmentation
    if features is not None:
        overrides["features"] = tuple(name.strip() for name in features.split(",") if name.strip())
    if plugins:
        overrides["plugins"] = tuple(str(folder) for folder in plugins)
    # Imported here: the algorithms and scipy take a second to load, which `--help` need not.
    from fovflow.workflow.config import WorkflowConfig
    from fovflow.workflow.prepare import prepare_run
    from fovflow.workflow.run import run_workflow

    if config is not None:
        workflow = WorkflowConfig.load(config, **overrides)
    elif input is None:
        raise ConfigError("give the microscopy file: fovflow run FILE -o OUT (or a --config "
                          "file naming it with input:)")
    elif output is None:
        raise ConfigError("give the run folder with -o OUT (or a --config file naming it with "
                          "output:)")
    else:
        workflow = WorkflowConfig.from_dict(overrides)
    prepared = prepare_run(workflow)  # every check that can refuse the run, before it starts

    token = CancelToken()
    with _RunDisplay(_channel_warning(prepared)) as display, _stop_on_signals(token) as signals:
        report = run_workflow(prepared, on_event=display.on_event, cancel=token)
    _print_summary(report, display.todo)
    if qc_report and not (signals.terminated or report.cancelled):
        _write_qc_report(workflow.output)
    if signals.terminated:
        raise typer.Exit(EXIT_TERMINATED)
    if report.cancelled:
        raise typer.Exit(EXIT_CANCELLED)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(run)


def _number_or_text(text: str | None) -> float | str | None:
    """``--diameter 25`` is a number of pixels; ``auto`` and ``12um`` stay text."""
    try:
        return float(text) if text is not None else None
    except ValueError:
        return text


def _channels(text: str) -> tuple[int, ...]:
    try:
        return tuple(parse_ranges(text))
    except ConfigError as exc:
        raise ConfigError(f"--fl: {exc}") from None


def _channel_warning(prepared: PreparedRun) -> str | None:
    from fovflow.workflow.channel_roles import channel_role_warning

    chosen = prepared.config
    return channel_role_warning(prepared.metadata.channel_names,
                                segment_channel=chosen.segment_channel,
                                method=prepared.parameters["segmentation"]["method"],
                                fl_channels=chosen.fl_channels or ())


class _RunDisplay:
    """Rich progress: all FOVs, the whole run's work with ETA, and one bar per active FOV.

    `warning` is logged when the run has started: after the checks that refuse a run (so an
    error is one line alone), and into run.log."""

    def __init__(self, warning: str | None) -> None:
        self._warning = warning
        self._progress = Progress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
        )
        self._fovs: TaskID | None = None
        self._work: TaskID | None = None
        self._bars: dict[int, TaskID] = {}
        self._todo: dict[int, tuple[str, ...]] = {}
        self._fov_work: dict[int, float] = {}

    def __enter__(self) -> _RunDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    @property
    def todo(self) -> dict[int, tuple[str, ...]]:
        """The steps each FOV of the run had to do (those not complete and current)."""
        return self._todo

    def on_event(self, event: Any) -> None:
        progress = self._progress
        if isinstance(event, RunStarted):
            if self._warning:
                log.warning("%s", self._warning)
            self._todo = event.todo
            self._fovs = progress.add_task("FOVs", total=len(event.fovs))
            steps = sum(len(todo) for todo in self._todo.values())
            self._work = progress.add_task("all steps", total=max(1, steps))
        elif isinstance(event, StepProgress):
            bar = self._bars.get(event.fov)
            if bar is None:
                bar = self._bars[event.fov] = progress.add_task("", total=event.total)
            progress.update(bar, description=f"  FOV {event.fov}: {event.step}",
                            completed=event.done, total=event.total)
            steps = self._todo.get(event.fov, ())
            finished = steps.index(event.step) if event.step in steps else 0
            self._set_work(event.fov, finished + event.done / max(event.total, 1))
        elif isinstance(event, StepFinished):
            log.debug("FOV %d: %s finished in %.2f s", event.fov, event.step, event.seconds)
        elif isinstance(event, FovFinished):
            if event.fov in self._bars:
                progress.remove_task(self._bars.pop(event.fov))
            self._set_work(event.fov, len(self._todo.get(event.fov, ())))
            if self._fovs is not None:
                progress.advance(self._fovs)
            # A failure is logged as it happens (one line here, its traceback in run.log).

    def _set_work(self, fov: int, units: float) -> None:
        self._fov_work[fov] = units
        if self._work is not None:
            self._progress.update(self._work, completed=sum(self._fov_work.values()))


class _stop_on_signals:  # noqa: N801 - used as a context manager, reads as a phrase
    """First Ctrl-C cancels (running FOVs stop at their next frame); a second one, or SIGTERM
    (a batch system ending the job), aborts: running FOVs get `ABORT_WAIT_S` to stop, then
    their workers are stopped. Either way the run ends through its report."""

    def __init__(self, token: CancelToken) -> None:
        self._token = token
        self._previous: dict[int, Any] = {}
        self.terminated = False

    def __enter__(self) -> _stop_on_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            self.terminated = True
        if signum == signal.SIGINT and not self._token.cancelled:
            self._token.cancel()
            err_console.print("cancelling: running FOVs stop at their next frame "
                              "(Ctrl-C again to abort)")
        elif not self._token.aborted:
            self._token.abort()
            err_console.print(f"aborting: running FOVs get {ABORT_WAIT_S:g} s to stop, then "
                              "their workers are stopped")


def _write_qc_report(run_dir: Path) -> None:
    """The QC page of the finished run; a problem with it is a warning, the run stands."""
    from fovflow.analysis.qc_report import write_qc_report

    try:
        written = write_qc_report(run_dir)
    except (FovflowError, OSError) as exc:
        log.warning("no QC report: %s", exc)
        return
    print(f"QC report: {written.page}")


def _print_summary(report: RunReport, todo: dict[int, tuple[str, ...]]) -> None:
    table = Table(title=f"run folder {report.output}", title_justify="left")
    table.add_column("FOVs", style="bold")
    table.add_column("count", justify="right")
    table.add_column("which")
    for label, fovs in [("processed", report.processed), ("already complete", report.skipped),
                        ("cancelled", report.cancelled), ("failed", tuple(report.failed)),
                        ("may still be running", tuple(report.abandoned)),
                        ("restarted", tuple(report.restarts))]:
        if fovs:
            table.add_row(label, str(len(fovs)), format_ranges(fovs))
    console.print(table)
    for fov, error in report.failed.items():
        console.print(f"FOV {fov}: {error}", markup=False, highlight=False, soft_wrap=True)
    complete = sorted((*report.processed, *report.skipped))
    for line in (*_steps_done(todo, complete), _cells_tracked(report.output, complete)):
        if line:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    for fov, worker in report.abandoned.items():
        console.print(f"FOV {fov} may still be running on {worker}: the abort stopped waiting "
                      "for it; the next run removes its partial outputs", markup=False,
                      highlight=False, soft_wrap=True)
    hosts: dict[str, list[int]] = {}
    for fov, worker in report.workers.items():
        hosts.setdefault(worker.split(" ")[0], []).append(fov)
    if len(hosts) > 1 or report.worker_deaths:
        where = "; ".join(f"{host}: FOVs {format_ranges(fovs)}" for host, fovs in hosts.items())
        console.print(f"ran on {where}; {report.worker_deaths} worker deaths", markup=False,
                      highlight=False, soft_wrap=True)
    stopped = " (aborted)" if report.aborted else ""
    console.print(f"{report.seconds:.1f} s{stopped}; details in {report.output / LOG_NAME}")


def _steps_done(todo: dict[int, tuple[str, ...]], fovs: list[int]) -> list[str]:
    """Which steps the complete FOVs ran and which they kept, FOVs with the same steps together:
    a rerun says what it redid."""
    from fovflow.workflow.steps import STEPS

    groups: dict[tuple[str, ...], list[int]] = {}
    for fov in fovs:
        groups.setdefault(todo.get(fov, ()), []).append(fov)
    lines = []
    for steps, members in groups.items():
        kept = [step for step in STEPS if step not in steps]
        if not steps:
            what = "every step complete and current: nothing redone"
        elif not kept:
            what = f"ran all {len(STEPS)} steps"
        else:
            what = f"ran {', '.join(steps)}; kept {', '.join(kept)} (complete and current)"
        lines.append(f"FOV{'s' if len(members) > 1 else ''} {format_ranges(members)}: {what}")
    return lines


def _cells_tracked(run_dir: Path, fovs: list[int]) -> str | None:
    """How many cells the complete FOVs tracked, from their lineage tables (one row a track)."""
    from fovflow.io.lineage import run_lineage

    tracks = daughters = counted = 0
    for fov in fovs:
        try:
            lineage = run_lineage(run_dir, fov)
        except FovflowError as exc:  # a table damaged by hand: the run itself stands
            log.warning("FOV %d: %s", fov, exc)
            continue
        if lineage is not None:
            counted += 1
            tracks += len(lineage.track)
            daughters += int((lineage.parent > 0).sum())
    if not counted:
        return None
    born = f", {daughters} of them daughters of a division" if daughters else ""
    return (f"{tracks} cell{'s' if tracks != 1 else ''} tracked in {counted} "
            f"FOV{'s' if counted > 1 else ''}{born}")
