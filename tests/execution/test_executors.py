"""Every executor runs items dynamically, streams events, isolates failures and cancels fast."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from fovflow.errors import ConfigError
from fovflow.execution import (
    CancelToken,
    ProcessExecutor,
    SerialExecutor,
    TaskContext,
    ThreadExecutor,
    make_executor,
)
from fovflow.workflow.events import ProgressReporter, StepProgress

KINDS = ["serial", "thread", "process", "dask"]


@dataclass(frozen=True)
class Job:
    index: int
    frames: int = 5
    frame_s: float = 0.0
    fail: bool = False
    die: bool = False
    die_once_marker: str | None = None  # die only if this file does not exist yet (then create)


@dataclass(frozen=True)
class Started:
    index: int
    pid: int


def run_job(job: Job, context: TaskContext) -> tuple[int, int]:
    """A stand-in for one FOV: a frame loop that reports progress and honours cancellation."""
    context.send(Started(job.index, os.getpid()))
    if job.die_once_marker and not os.path.exists(job.die_once_marker):
        open(job.die_once_marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    if job.die:
        os.kill(os.getpid(), signal.SIGKILL)
    progress = ProgressReporter(job.index, context.send, context.cancel, interval=0).step("work")
    for frame in range(1, job.frames + 1):
        time.sleep(job.frame_s)
        if job.fail and frame == 2:
            raise ValueError(f"bad frame {frame} in item {job.index}")
        progress(frame, job.frames)
    logging.getLogger("fovflow.test").info("item %d done", job.index)
    return job.index * 10, os.getpid()


@pytest.fixture(scope="module", params=KINDS)
def executor(request):
    """One executor per kind for the whole module, as a run keeps one pool."""
    with make_executor(request.param, n_workers=2) as executor:
        yield executor


def test_every_item_yields_one_outcome_with_its_result(executor) -> None:
    outcomes = list(executor.map_unordered(run_job, [Job(i) for i in range(6)]))
    assert sorted(o.item.index for o in outcomes) == list(range(6))
    assert all(o.ok and o.result[0] == o.item.index * 10 for o in outcomes)


def test_events_reach_the_caller_thread_in_order_before_the_outcome(executor) -> None:
    caller, seen, order = threading.get_ident(), [], []

    def on_event(event) -> None:
        assert threading.get_ident() == caller
        seen.append(event)
        order.append(("event", event.index if isinstance(event, Started) else event.fov))

    for outcome in executor.map_unordered(run_job, [Job(i) for i in range(4)], on_event=on_event):
        order.append(("outcome", outcome.item.index))
    for index in range(4):
        progress = [e for e in seen if isinstance(e, StepProgress) and e.fov == index]
        assert [e.done for e in progress] == [1, 2, 3, 4, 5]
        mine = [kind for kind, i in order if i == index]
        assert mine[-1] == "outcome" and mine.count("outcome") == 1


def test_a_failing_item_is_reported_and_the_others_go_on(executor) -> None:
    jobs = [Job(0), Job(1, fail=True), Job(2), Job(3)]
    outcomes = {o.item.index: o for o in executor.map_unordered(run_job, jobs)}
    assert [outcomes[i].ok for i in range(4)] == [True, False, True, True]
    assert outcomes[1].error == "ValueError: bad frame 2 in item 1"
    assert "Traceback" in outcomes[1].traceback and "run_job" in outcomes[1].traceback
    assert not outcomes[1].cancelled


def test_cancel_stops_running_items_fast_and_queued_items_never_start(executor) -> None:
    token, started = CancelToken(), []
    jobs = [Job(i, frames=400, frame_s=0.01) for i in range(6)]  # 4 s each if not cancelled

    def on_event(event) -> None:
        if isinstance(event, Started):
            started.append(event.index)
        if isinstance(event, StepProgress) and event.done == 20 and not token.cancelled:
            token.cancel()
            cancel_time.append(time.perf_counter())

    cancel_time: list[float] = []
    outcomes = list(executor.map_unordered(run_job, jobs, on_event=on_event, cancel=token))
    latency = time.perf_counter() - cancel_time[0]
    assert latency < 2.0
    assert all(o.cancelled and not o.ok for o in outcomes)
    assert len(outcomes) == 6
    assert len(started) <= executor.max_in_flight


def test_batch_size_bounds_items_in_flight() -> None:
    running, peak, lock = set(), [0], threading.Lock()

    def on_event(event) -> None:
        with lock:
            if isinstance(event, Started):
                running.add(event.index)
                peak[0] = max(peak[0], len(running))
            elif isinstance(event, StepProgress) and event.done == event.total:
                running.discard(event.fov)

    with ThreadExecutor(n_workers=4, max_in_flight=2) as executor:
        jobs = [Job(i, frames=3, frame_s=0.02) for i in range(8)]
        assert all(o.ok for o in executor.map_unordered(run_job, jobs, on_event=on_event))
    assert peak[0] == 2


def test_killed_worker_fails_only_its_item_and_is_replaced() -> None:
    with ProcessExecutor(n_workers=2) as executor:
        jobs = [Job(0, frame_s=0.05), Job(1, die=True), Job(2), Job(3), Job(4)]
        outcomes = {o.item.index: o for o in executor.map_unordered(run_job, jobs)}
        assert [outcomes[i].ok for i in range(5)] == [True, False, True, True, True]
        assert "killed by signal 9" in outcomes[1].error
        again = list(executor.map_unordered(run_job, [Job(5), Job(6)]))
        assert all(o.ok for o in again)


def test_workers_that_cannot_start_fail_their_items_not_the_run() -> None:
    with ProcessExecutor(n_workers=1, preload=("fovflow_no_such_module",)) as executor:
        executor.start()
        for worker in executor._idle:  # dead before the first item is sent: its pipe is closed
            worker.process.join(30)
        outcomes = list(executor.map_unordered(run_job, [Job(0), Job(1)]))
    assert [o.ok for o in outcomes] == [False, False]
    assert all("exited (1)" in (o.error or "") for o in outcomes)


def test_process_workers_live_for_the_whole_executor() -> None:
    with ProcessExecutor(n_workers=2) as executor:
        first = {o.result[1] for o in executor.map_unordered(run_job, [Job(i) for i in range(4)])}
        second = {o.result[1] for o in executor.map_unordered(run_job, [Job(i) for i in range(4)])}
    assert len(first) == 2 and first | second == first  # the same two processes both times
    assert os.getpid() not in first


def print_unflushed(text: str, context: TaskContext) -> int:
    print(text, end="")  # no newline, no flush: still in the worker's stdout buffer
    return os.getpid()


def test_a_stopped_worker_keeps_what_it_printed_and_leaves_no_process(
        capfd, monkeypatch) -> None:
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # so the worker's stdout is buffered
    with ProcessExecutor(n_workers=1) as executor:
        [outcome] = executor.map_unordered(print_unflushed, ["printed by a plugin"])
    assert "printed by a plugin" in capfd.readouterr().out
    assert not psutil.pid_exists(outcome.result) or psutil.Process(
        outcome.result).status() == psutil.STATUS_ZOMBIE


def started_at(seconds: float, context: TaskContext) -> float:
    """Sleeps `seconds`; returns the wall-clock time it started."""
    start = time.time()
    time.sleep(seconds)
    return start


def test_free_workers_take_the_next_item_while_the_caller_handles_an_outcome(executor) -> None:
    if isinstance(executor, SerialExecutor):
        pytest.skip("runs each item in the caller's thread when it asks for the next outcome")
    outcomes = executor.map_unordered(started_at, [0.1, 0.1, 0.1])
    next(outcomes)
    handled = time.time()
    time.sleep(0.5)  # e.g. the manifest written on a slow network drive
    last_start = max(outcome.result for outcome in outcomes)
    assert last_start < handled + 0.25


def test_a_long_item_does_not_hold_back_the_others() -> None:
    jobs = [Job(0, frames=1, frame_s=1.5)] + [Job(i, frames=1, frame_s=0.02) for i in range(1, 9)]
    with ProcessExecutor(n_workers=2) as executor:
        pids = {o.item.index: o.result[1] for o in executor.map_unordered(run_job, jobs)}
    long_pid = pids[0]
    assert sum(1 for i in range(1, 9) if pids[i] == long_pid) <= 1  # the other worker took them


def test_worker_logs_reach_the_caller(executor, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="fovflow.test"):
        list(executor.map_unordered(run_job, [Job(7)]))
    assert [r.getMessage() for r in caplog.records if r.name == "fovflow.test"] == ["item 7 done"]


def native_threads(_: int, context: TaskContext) -> tuple[int, int]:
    """The most threads any BLAS/OpenMP pool, and OpenCV, would use in this worker."""
    import cv2
    import threadpoolctl

    return max(pool["num_threads"] for pool in threadpoolctl.threadpool_info()), cv2.getNumThreads()


# A user's script that imports numpy first: spawned workers import it too, before any fovflow
# code runs in them, so OpenBLAS has already sized its pool to the machine.
SCRIPT_IMPORTING_NUMPY_FIRST = """
import json, sys
import numpy
from fovflow.execution import make_executor
sys.path.insert(0, sys.argv[2])
from test_executors import native_threads

if __name__ == "__main__":
    with make_executor(sys.argv[1], n_workers=2) as executor:
        results = {o.result for o in executor.map_unordered(native_threads, [0, 1])}
    print(json.dumps(sorted(results)))
"""


@pytest.mark.parametrize("kind", ["process", "dask"])
def test_worker_processes_run_numerical_libraries_on_one_thread(kind, tmp_path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT_IMPORTING_NUMPY_FIRST)
    done = subprocess.run([sys.executable, str(script), kind, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == [[1, 1]]


def test_thread_workers_use_one_native_thread_and_give_the_callers_back() -> None:

    before = native_threads(0, None)
    with ThreadExecutor(2) as executor:
        assert {o.result for o in executor.map_unordered(native_threads, [0, 1])} == {(1, 1)}
    assert native_threads(0, None) == before


def test_serial_executor_runs_in_the_callers_thread() -> None:
    pids = [o.result[1] for o in SerialExecutor().map_unordered(run_job, [Job(0), Job(1)])]
    assert pids == [os.getpid(), os.getpid()]


@pytest.mark.parametrize(("kind", "workers", "batch"), [("fast", 2, None), ("process", 0, None),
                                                       ("thread", 2, 0)])
def test_bad_executor_settings_are_clear_errors(kind, workers, batch) -> None:
    with pytest.raises(ConfigError):
        make_executor(kind, n_workers=workers or -1, max_in_flight=batch)


def test_dask_run_completes_when_a_worker_is_killed(tmp_path) -> None:
    marker = str(tmp_path / "killed-once")
    jobs = [Job(0, frames=3, frame_s=0.05), Job(1, die_once_marker=marker), Job(2), Job(3)]
    with make_executor("dask", n_workers=2) as executor:
        outcomes = {o.item.index: o for o in executor.map_unordered(run_job, jobs)}
    assert os.path.exists(marker)
    assert all(outcomes[i].ok for i in range(4))


def count_set_up(folder: str) -> None:
    """A worker's one-off preparation: leaves a file per call, named by its process."""
    Path(folder, f"{os.getpid()}-{time.perf_counter_ns()}").touch()


def set_up_then_run(folder: str, context: TaskContext) -> int:
    context.set_up(count_set_up, folder)
    return os.getpid()


def test_a_worker_sets_up_once_per_run_not_once_per_item(executor, tmp_path) -> None:
    for run in (1, 2):
        pids = [o.result for o in executor.map_unordered(set_up_then_run, [str(tmp_path)] * 6)]
        calls = [path.name.split("-")[0] for path in tmp_path.iterdir()]
        assert sorted(set(calls)) == sorted({str(pid) for pid in pids})
        assert all(calls.count(pid) == run for pid in set(calls))  # once per worker and run


UNGUARDED_SCRIPT = """
from fovflow.execution import make_executor
make_executor("process", n_workers=2)
"""


def test_worker_processes_from_a_script_without_main_guard_are_refused(tmp_path) -> None:
    script = tmp_path / "run_script.py"
    script.write_text(UNGUARDED_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "ConfigError" in done.stderr
    assert f"{script} again and would run line 3" in done.stderr
