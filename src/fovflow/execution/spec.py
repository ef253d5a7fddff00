"""`ExecutorSpec`: which executor to build and how wide, as one checked value.

A caller that does not hold a running executor passes this (or its fields) instead: a
configuration file's ``executor``, ``n_workers``, ``max_in_flight`` and ``scheduler`` become one
`ExecutorSpec`, which `build` turns into the executor. The knobs are those of
`fovflow.execution.knobs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fovflow.errors import ConfigError
from fovflow.execution.knobs import (
    IN_FLIGHT,
    WORKERS,
    checked_count,
    checked_scheduler,
    local_width,
)

if TYPE_CHECKING:
    from fovflow.execution.base import Executor

EXECUTORS = ("process", "thread", "serial", "dask")


@dataclass(frozen=True)
class ExecutorSpec:
    """`kind` is ``process`` (spawned worker processes, the local default), ``thread``,
    ``serial`` (the caller's thread, for debugging) or ``dask`` (a cluster at `scheduler`, or
    a LocalCluster of `n_workers` processes)."""

    kind: str = "process"
    n_workers: int | None = None  # None: every usable core
    max_in_flight: int | None = None  # None: n_workers (with a scheduler: the cluster's threads)
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.kind!r} (--executor); choose "
                              f"{', '.join(EXECUTORS)}")
        object.__setattr__(self, "n_workers", checked_count(self.n_workers, WORKERS))
        object.__setattr__(self, "max_in_flight", checked_count(self.max_in_flight, IN_FLIGHT))
        object.__setattr__(self, "scheduler", checked_scheduler(self.scheduler))
        if self.scheduler and self.kind != "dask":
            raise ConfigError("a scheduler address needs the dask executor (--executor dask)")

    @property
    def workers(self) -> int:
        """`n_workers`, or every usable core."""
        return local_width(self.n_workers, self.max_in_flight)[0]

    def build(self, *, preload: tuple[str, ...] = ()) -> Executor:
        """The executor this describes, ready to use as a context manager.

        `preload` names modules that worker processes import as they start (the task's
        module), so a started pool is ready when the first item arrives.
        """
        # The backends are imported here, when asked for: each loads only what it needs.
        if self.kind == "serial":
            from fovflow.execution.base import SerialExecutor

            return SerialExecutor()
        if self.kind == "thread":
            from fovflow.execution.thread import ThreadExecutor

            return ThreadExecutor(self.n_workers, self.max_in_flight)
        if self.kind == "process":
            from fovflow.execution.process import ProcessExecutor

            return ProcessExecutor(self.n_workers, self.max_in_flight, preload=preload)
        from fovflow.execution.dask import DaskExecutor

        if self.scheduler:  # the cluster decides how many run: n_workers does not apply
            return DaskExecutor(max_in_flight=self.max_in_flight, scheduler=self.scheduler)
        return DaskExecutor(self.n_workers, self.max_in_flight)


def make_executor(
    kind: str = "process",
    *,
    n_workers: int | None = None,
    max_in_flight: int | None = None,
    scheduler: str | None = None,
    preload: tuple[str, ...] = (),
) -> Executor:
    """``ExecutorSpec(kind, ...).build(preload=preload)``: an executor by name."""
    return ExecutorSpec(kind, n_workers, max_in_flight, scheduler).build(preload=preload)
