"""Cooperative cancellation shared by the caller and the work, wherever the work runs.

A cancel is a flag the work checks on every frame (through the progress callback); it stops by
raising `fovflow.errors.Cancelled`. The flag is whatever the executor hands its workers: a
`threading.Event` in the caller's process, a `multiprocessing` Event given to each worker
process as it starts, a flag in each Dask worker set by the caller. An abort (a second Ctrl-C,
SIGTERM) cancels too, and lets the executors stop waiting after `ABORT_WAIT_S`: worker
processes still running then are killed, Dask tasks are cancelled and reported as possibly
still running.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from fovflow.errors import Cancelled

ABORT_WAIT_S = 1.0  # how long an abort waits for running work to stop at its next frame


class Flag(Protocol):
    """What threading.Event, multiprocessing.Event and a Dask worker's run flag share."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...


class CancelToken:
    """A flag the caller sets and the work checks (a `threading.Event` unless given one)."""

    def __init__(self, flag: Flag | None = None) -> None:
        self._flag: Flag = flag if flag is not None else threading.Event()
        self._aborted_at: float | None = None  # the caller's side only: never sent to workers

    def cancel(self) -> None:
        """Ask the work to stop; returns at once."""
        self._flag.set()

    def abort(self) -> None:
        """Cancel, and give running work only `ABORT_WAIT_S` to stop; returns at once."""
        if self._aborted_at is None:
            self._aborted_at = time.monotonic()
        self._flag.set()

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    @property
    def aborted(self) -> bool:
        return self._aborted_at is not None

    @property
    def done_waiting(self) -> bool:
        """True once an abort has waited `ABORT_WAIT_S`: stop what is still running."""
        return self._aborted_at is not None and time.monotonic() - self._aborted_at >= ABORT_WAIT_S

    def raise_if_cancelled(self) -> None:
        if self._flag.is_set():
            raise Cancelled
