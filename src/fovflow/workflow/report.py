"""What a run did: the `RunReport` it returns, and the tally of outcomes that builds it.

The tally is kept as events and outcomes arrive, so that a run that ends any way (done,
cancelled, aborted, an unexpected error) still reports, logs and records the truth.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fovflow.execution import Outcome
from fovflow.io.manifest import Manifest
from fovflow.io.store import remove_partials
from fovflow.ranges import format_ranges
from fovflow.workflow.events import FovFinished, FovStarted
from fovflow.workflow.steps import FovTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """What a run did, FOV by FOV, and where.

    Every selected FOV is in exactly one of processed, skipped, failed and cancelled.
    `abandoned` FOVs are cancelled ones an abort stopped waiting for: their Dask task may still
    be running (the next run removes what it leaves). `workers` names where each FOV ran last,
    `restarts` how often a FOV was started again after its worker died, `worker_deaths` how
    many workers died running a FOV.
    """

    output: Path
    selected: tuple[int, ...]
    processed: tuple[int, ...] = ()
    skipped: tuple[int, ...] = ()
    failed: dict[int, str] = field(default_factory=dict)
    cancelled: tuple[int, ...] = ()
    seconds: float = 0.0
    aborted: bool = False
    abandoned: dict[int, str] = field(default_factory=dict)  # FOV -> worker it may run on
    workers: dict[int, str] = field(default_factory=dict)
    restarts: dict[int, int] = field(default_factory=dict)
    worker_deaths: int = 0

    @property
    def ok(self) -> bool:
        """True when every selected FOV is complete (processed now or before)."""
        return not self.failed and not self.cancelled


class RunTally:
    """What the run has seen so far, FOV by FOV: enough for a true report on any way out."""

    def __init__(self, output: Path, selected: tuple[int, ...], skipped: tuple[int, ...]) -> None:
        self.output, self.selected, self.skipped = output, selected, skipped
        self.status: dict[int, str] = {}
        self.errors: dict[int, str] = {}
        self.abandoned: dict[int, str] = {}
        self.workers: dict[int, str] = {}
        self.starts: Counter[int] = Counter()
        self.worker_deaths = 0

    def started(self, event: FovStarted) -> FovStarted:
        """Count the start; a second one means the FOV was restarted elsewhere."""
        self.starts[event.fov] += 1
        attempt = self.starts[event.fov]
        if attempt > 1:
            self.worker_deaths += 1
            log.warning("FOV %d restarted on %s (attempt %d): its worker %s died or left",
                        event.fov, event.worker, attempt, self.workers.get(event.fov))
        self.workers[event.fov] = event.worker
        return replace(event, attempt=attempt)

    def ended(self, outcome: Outcome[FovTask, Any]) -> FovFinished:
        fov = outcome.item.fov
        status = "done" if outcome.ok else "cancelled" if outcome.cancelled else "failed"
        self.status[fov] = status
        worker = self.workers.get(fov)
        self.worker_deaths += outcome.worker_lost
        if outcome.abandoned:
            self.abandoned[fov] = worker or "an unknown worker"
            log.warning("FOV %d did not confirm it stopped: it may still be running on %s; "
                        "the next run removes its partial outputs", fov, self.abandoned[fov])
        elif not outcome.ok:
            remove_partials(self.output, fov)  # its worker has ended (or died: no clean-up)
        if status == "failed":
            self.errors[fov] = outcome.error or "unknown error"
            log.error("FOV %d failed on %s: %s\n%s", fov, worker, outcome.error,
                      outcome.traceback or "")
        return FovFinished(fov, ok=outcome.ok, cancelled=outcome.cancelled, error=outcome.error,
                           traceback=outcome.traceback, seconds=outcome.seconds, worker=worker,
                           attempts=max(1, self.starts[fov]), worker_lost=outcome.worker_lost)

    def note(self, fov: int) -> str | None:
        """The manifest's error entry: the failure, or where an abandoned FOV may still run."""
        if fov in self.abandoned:
            return f"may still be running on {self.abandoned[fov]}"
        return self.errors.get(fov)

    def interrupted(self, manifest: Manifest) -> list[int]:
        """FOVs this run started but saw no end of, that the manifest still calls running."""
        records = manifest.data["fovs"]
        return [fov for fov in self.starts if fov not in self.status
                and records.get(fov, {}).get("status") == "running"]

    def report(self, *, aborted: bool, seconds: float) -> RunReport:
        ended = set(self.status) | set(self.skipped)
        cancelled = [fov for fov, status in self.status.items() if status == "cancelled"]
        cancelled += [fov for fov in self.selected if fov not in ended]  # never got an outcome
        return RunReport(
            output=self.output, selected=self.selected,
            processed=tuple(sorted(f for f, s in self.status.items() if s == "done")),
            skipped=self.skipped, failed=dict(sorted(self.errors.items())),
            cancelled=tuple(sorted(cancelled)), seconds=seconds, aborted=aborted,
            abandoned=dict(sorted(self.abandoned.items())),
            workers={fov: self.workers[fov] for fov in sorted(self.workers)},
            restarts={fov: n - 1 for fov, n in sorted(self.starts.items()) if n > 1},
            worker_deaths=self.worker_deaths)

    @staticmethod
    def log_summary(report: RunReport) -> None:
        log.info("run finished%s in %.1f s: %d processed, %d skipped, %d failed, %d cancelled, "
                 "%d restarted, %d worker deaths", " (aborted)" if report.aborted else "",
                 report.seconds, len(report.processed), len(report.skipped),
                 len(report.failed), len(report.cancelled), len(report.restarts),
                 report.worker_deaths)
        for worker in sorted(set(report.workers.values())):
            fovs = [fov for fov, where in report.workers.items() if where == worker]
            log.info("  %s ran FOVs %s", worker, format_ranges(fovs))
