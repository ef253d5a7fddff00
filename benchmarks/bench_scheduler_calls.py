"""Scheduler calls per FOV-frame of a Dask run: how many FOVs one scheduler can serve.

Runs `run_workflow` on a simulated file with the Dask executor (an in-process LocalCluster of
2 single-threaded worker processes) and counts the messages the scheduler handles during the
run, by operation: its RPC handlers (a round trip each: queue puts and gets, event checks)
and its stream handlers (one-way messages on the workers' and the client's batched streams).

    .venv/bin/python benchmarks/bench_scheduler_calls.py [--fovs 4] [--frames 40] [--size 256]
        [--executor-module PATH]

``--executor-module`` runs another version of ``fovflow/execution/dask.py`` (e.g. the
previous commit's, from ``git show HEAD~1:src/fovflow/execution/dask.py``), loaded
under its own name in the caller and in the workers.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.util
import inspect
import os
import sys
import tempfile
import time
from pathlib import Path

from fovflow.io.synthetic import SimulationConfig, write_simulation
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fovs", type=int, default=4)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--executor-module", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        movie = write_simulation(Path(folder) / "sim.ome.tif", SimulationConfig(
            n_fovs=args.fovs, n_frames=args.frames, height=args.size, width=args.size,
            seed=0)).image
        module = _executor_module(args.executor_module, Path(folder))
        executor = module.DaskExecutor(2)
        try:
            executor._client.run_on_scheduler(_install_counter)
            config = WorkflowConfig(input=movie, output=Path(folder) / "out", n_workers=2,
                                    fl_channels=(1,), extraction={"min_length": 5})
            start = time.perf_counter()
            report = run_workflow(config, executor=executor)
            seconds = time.perf_counter() - start
            counts = executor._client.run_on_scheduler(_read_counter)
        finally:
            executor.shutdown()
    assert report.ok, report.failed
    fov_frames = args.fovs * args.frames
    rpc = sum(n for (kind, _), n in counts.items() if kind == "rpc")
    stream = sum(n for (kind, _), n in counts.items() if kind == "stream")
    print(f"{args.executor_module or 'execution/dask.py (this tree)'}: {args.fovs} FOVs x "
          f"{args.frames} frames of {args.size}x{args.size} px, {seconds:.1f} s on 2 workers")
    print(f"scheduler round trips (RPC): {rpc}, {rpc / fov_frames:.2f} per FOV-frame, "
          f"{rpc / seconds / 2:.1f} per second per running FOV")
    print(f"one-way stream messages: {stream}, {stream / fov_frames:.2f} per FOV-frame")
    for (kind, op), n in sorted(counts.items(), key=lambda item: -item[1])[:8]:
        print(f"  {kind:6} {op:28} {n:6}  {n / fov_frames:.3f} per FOV-frame")


def _executor_module(path: Path | None, folder: Path):
    """The Dask executor module to measure; another file is copied where workers import it."""
    if path is None:
        from fovflow.execution import dask as dask_executor

        return dask_executor
    (folder / "measured_dask_executor.py").write_text(path.read_text())
    sys.path.insert(0, str(folder))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    spec = importlib.util.spec_from_file_location("measured_dask_executor",
                                                  folder / "measured_dask_executor.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["measured_dask_executor"] = module
    spec.loader.exec_module(module)
    return module


def _install_counter(dask_scheduler) -> None:
    """Wrap every handler of the scheduler to count its calls (runs on the scheduler)."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    dask_scheduler._bench_counts = counts

    def counted(kind: str, op: str, handler):
        # The server awaits coroutine handlers and passes `comm` to those that take it: the
        # wrapper must look the same (functools.wraps exposes the signature).
        if inspect.iscoroutinefunction(handler):
            @functools.wraps(handler)
            async def handle_async(*args, **kwargs):
                counts[kind, op] += 1
                return await handler(*args, **kwargs)
            return handle_async

        @functools.wraps(handler)
        def handle(*args, **kwargs):
            counts[kind, op] += 1
            return handler(*args, **kwargs)
        return handle

    for op, handler in list(dask_scheduler.handlers.items()):
        dask_scheduler.handlers[op] = counted("rpc", op, handler)
    for op, handler in list(dask_scheduler.stream_handlers.items()):
        dask_scheduler.stream_handlers[op] = counted("stream", op, handler)


def _read_counter(dask_scheduler) -> dict[tuple[str, str], int]:
    counts = dict(dask_scheduler._bench_counts)
    counts.pop(("rpc", "run_function"), None)  # the benchmark's own calls
    return counts


if __name__ == "__main__":
    main()
