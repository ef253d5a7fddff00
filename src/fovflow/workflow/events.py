"""What a run tells its caller: small, frozen, picklable event records.

Workers create events and send them through a queue; the caller's `on_event` receives them in
the caller's thread. `ProgressReporter` turns the algorithms' ``progress(done, total)`` calls
into `StepProgress` events throttled by time, and checks for cancellation on every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fovflow.execution import CancelToken, FrequentEvent
from fovflow.progress import Progress

if TYPE_CHECKING:
    from fovflow.workflow.report import RunReport


@dataclass(frozen=True)
class RunStarted:
    """The first event of a run: the FOVs it covers and the steps each will run."""

    fovs: tuple[int, ...]
    todo: dict[int, tuple[str, ...]]
    n_frames: int


@dataclass(frozen=True)
class FovStarted:
    """A worker began a FOV. More than one for a FOV means it was restarted: on Dask, after
    the worker running it died."""

    fov: int
    worker: str  # host and process (or Dask worker address) it runs on
    attempt: int = 1  # filled in by the engine, which counts the starts


@dataclass(frozen=True)
class StepProgress(FrequentEvent):
    fov: int
    step: str
    done: int
    total: int


@dataclass(frozen=True)
class StepFinished:
    fov: int
    step: str
    seconds: float


@dataclass(frozen=True)
class FovFinished:
    """One FOV ended: ``ok`` (``skipped`` if its outputs were already complete and current),
    cancelled, or failed with message and traceback."""

    fov: int
    ok: bool
    cancelled: bool = False
    skipped: bool = False
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    worker: str | None = None  # where it ran last
    attempts: int = 1
    worker_lost: bool = False  # its last worker died while running it


@dataclass(frozen=True)
class RunFinished:
    report: RunReport


Event = RunStarted | FovStarted | StepProgress | StepFinished | FovFinished | RunFinished
Send = Callable[[Event], None]

DEFAULT_INTERVAL_S = 0.1  # about 10 progress events per second per FOV


class ProgressReporter:
    """Progress callbacks for the steps of one FOV.

    Each callback raises `Cancelled` as soon as the token is set, and sends a `StepProgress`
    at most every `interval` seconds; the first and the last call of a step (``done ==
    total``) are always sent, so a caller always sees where a step starts and that it ended.
    """

    def __init__(
        self,
        fov: int,
        send: Send,
        cancel: CancelToken,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fov, self._send, self._cancel = fov, send, cancel
        self._interval, self._clock = interval, clock

    def step(self, name: str) -> Progress:
        """The callback to hand to the algorithm that runs step `name`."""
        last_sent: float | None = None

        def progress(done: int, total: int) -> None:
            nonlocal last_sent
            self._cancel.raise_if_cancelled()
            now = self._clock()
            if last_sent is None or done >= total or now - last_sent >= self._interval:
                self._send(StepProgress(self._fov, name, done, total))
                last_sent = now

        return progress
