"""Cooperative cancellation shared by the caller, threads, worker processes and Dask workers.

Nothing is ever killed from outside: the work checks the token on every frame (through the
progress callback) and stops by raising `fovflow.errors.Cancelled`.
"""

from __future__ import annotations

import threading
from multiprocessing.context import BaseContext
from typing import Protocol

from fovflow.errors import Cancelled


class _Flag(Protocol):
    """What threading.Event, multiprocessing.Event and distributed.Event have in common."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...


class CancelToken:
    """A flag the caller sets and the work checks.

    The default flag is a `threading.Event` (serial and thread executors); use
    `CancelToken.for_processes(context)` for worker processes, where the flag must be handed to
    the workers when they start (a pool initializer), not pickled with each task.
    """

    def __init__(self, flag: _Flag | None = None) -> None:
        self._flag: _Flag = flag if flag is not None else threading.Event()

    @classmethod
    def for_processes(cls, context: BaseContext) -> CancelToken:
        return cls(context.Event())

    @property
    def flag(self) -> _Flag:
        return self._flag

    def cancel(self) -> None:
        """Ask the work to stop; returns at once."""
        self._flag.set()

    @property
    def cancelled(self) -> bool:
        return self._flag.is_set()

    def raise_if_cancelled(self) -> None:
        if self._flag.is_set():
            raise Cancelled
