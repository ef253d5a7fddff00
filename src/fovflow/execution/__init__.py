"""Run many independent tasks (one per FOV, or per chunk of traces) and stream what happens.

Below both `fovflow.workflow` and `fovflow.analysis`: it knows tasks and items, not FOVs.
Every executor has one method, `map_unordered(task, items, on_event=..., cancel=...)`, that
yields an `Outcome` per item as items finish, in completion order (the loop is written once,
in `base`). ``task(item, context)`` is a picklable top-level function; ``context.send(event)``
forwards an event to `on_event`, which always runs in the caller's thread, ``context.cancel``
is the token the task checks every frame, ``context.worker`` names where it runs and
``context.set_up`` prepares a worker once.

- `SerialExecutor`: in the caller's thread, deterministic, for debugging.
- `ThreadExecutor` (`.thread`): a thread pool; fine when the work releases the GIL.
- `ProcessExecutor` (`.process`): spawned worker processes kept for the whole run, each with
  its own pipe, so a worker that dies fails only its item.
- `DaskExecutor` (`.dask`): a Dask cluster, or a LocalCluster.

`ExecutorSpec` (or `make_executor`) names one and how wide it is; its knobs, `n_workers`,
`max_in_flight` and `scheduler`, are defined and checked once, in `knobs`. The backends load
when first asked for, as in `concurrent.futures`, so that fitting in the caller's thread
imports no Dask.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fovflow.execution.base import (
    Executor,
    FrequentEvent,
    OnEvent,
    Outcome,
    SerialExecutor,
    Task,
    TaskContext,
    ignore_event,
)
from fovflow.execution.cancel import ABORT_WAIT_S, CancelToken
from fovflow.execution.knobs import usable_cores
from fovflow.execution.spec import EXECUTORS, ExecutorSpec, make_executor

if TYPE_CHECKING:
    from fovflow.execution.dask import DaskExecutor
    from fovflow.execution.process import ProcessExecutor
    from fovflow.execution.thread import ThreadExecutor

_BACKENDS = {"ThreadExecutor": "thread", "ProcessExecutor": "process", "DaskExecutor": "dask"}

__all__ = ["ABORT_WAIT_S", "EXECUTORS", "CancelToken", "DaskExecutor", "Executor",
           "ExecutorSpec", "FrequentEvent", "OnEvent", "Outcome", "ProcessExecutor",
           "SerialExecutor", "Task", "TaskContext", "ThreadExecutor", "ignore_event",
           "make_executor", "usable_cores"]


def __getattr__(name: str) -> Any:
    if name in _BACKENDS:
        module = importlib.import_module(f"{__name__}.{_BACKENDS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
