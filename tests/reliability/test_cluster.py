"""A real standalone Dask cluster (issue 15, items 3-7): `dask scheduler` and `dask worker`
processes started here, as a user starts them, and always torn down.

The worker processes load the test-side fault plugin (`reliability_helpers.FAULT_PLUGIN`): each
frame takes 20 ms longer, and frames do not end while the module's stall marker exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import psutil
import pytest
from distributed import Client
from reliability_helpers import (
    FOVS,
    FRAME_DELAY,
    STALL_WHEN,
    assert_fov_complete,
    assert_report_is_true,
    config_for,
    manifest_of,
    partial_files,
)

from fovflow.errors import FovflowError
from fovflow.execution import CancelToken
from fovflow.execution import dask as dask_executor
from fovflow.workflow.events import FovFinished, FovStarted
from fovflow.workflow.run import run_workflow

# The scheduler runs this module's functions (`Cluster.on_scheduler`) but cannot import it.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
DASK = Path(sys.executable).with_name("dask")
FOVFLOW = Path(sys.executable).with_name("fovflow")
pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    address: str
    dashboard: int
    folder: Path
    stall: Path
    processes: list[subprocess.Popen[bytes]]

    def start_worker(self, name: str, n_workers: int = 1) -> subprocess.Popen[bytes]:
        """A `dask worker` (a nanny and its worker processes) that logs to ``<name>.log``."""
        env = {**os.environ, FRAME_DELAY: "0.02", STALL_WHEN: str(self.stall),
               "OMP_NUM_THREADS": "1"}
        with (self.folder / f"{name}.log").open("wb") as log:
            worker = subprocess.Popen(
                # Preloaded, a worker is ready once it has registered: one that joins mid-run
                # then takes a FOV before the others have run them all.
                [DASK, "worker", self.address, "--nworkers", str(n_workers), "--nthreads", "1",
                 "--no-dashboard", "--name", name, "--preload", "fovflow.workflow.steps"],
                stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self.folder)  # another working folder than the caller's
        self.processes.append(worker)
        return worker

    def wait_for_threads(self, threads: int) -> None:
        with Client(self.address, timeout="10s") as client:
            client.wait_for_workers(threads, timeout=60)

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.folder.glob("*.log"))

    def on_scheduler(self, function) -> object:
        with Client(self.address, timeout="10s") as client:
            return client.run_on_scheduler(function)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("cluster")
    scheduler_file = folder / "scheduler.json"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with (folder / "scheduler.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [DASK, "scheduler", "--scheduler-file", scheduler_file, "--port", "0",
                 "--dashboard-address", "127.0.0.1:0", "--host", "127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT, cwd=folder))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            assert time.monotonic() < deadline and processes[0].poll() is None, "no scheduler"
            time.sleep(0.1)
        info = json.loads(scheduler_file.read_text())
        cluster = Cluster(info["address"], info["services"]["dashboard"], folder,
                          folder / "stall", processes)
        cluster.start_worker("first", n_workers=2)
        cluster.wait_for_threads(2)
        yield cluster
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def scheduler_leftovers(dask_scheduler) -> dict[str, list[str]]:
    return {"queues": list(dask_scheduler.extensions["queues"].queues),
            "events": [name for name, event in dask_scheduler.extensions["events"]._events.items()
                       if event.is_set()],
            "keys": sorted({str(entry[0]) for entry in dask_scheduler.transition_log})}


def test_a_cluster_run_names_its_tasks_and_workers_and_leaves_nothing_behind(
        cluster, movie, plugins, reference, tmp_path) -> None:
    output = tmp_path / "out"
    config = config_for(movie, output, plugins, executor="dask", scheduler=cluster.address)
    events: list = []

    report = run_workflow(config, on_event=events.append)

    assert report.ok and report.processed == FOVS, report.failed
    for fov in FOVS:
        assert_fov_complete(output, fov, reference)
    assert all("tcp://127.0.0.1:" in report.workers[fov] for fov in FOVS), report.workers
    finished = {e.fov: e for e in events if isinstance(e, FovFinished)}
    assert {finished[fov].worker for fov in FOVS} <= set(report.workers.values())
    leftovers = cluster.on_scheduler(scheduler_leftovers)
    assert leftovers["queues"] == [] and leftovers["events"] == []
    assert all(any(key.startswith(f"fovflow-fov_{fov:03d}-") for key in leftovers["keys"])
               for fov in FOVS), leftovers["keys"]
    assert "Failed to serialize" not in cluster.logs()
    assert "ran FOVs" in (output / "run.log").read_text()


def test_a_killed_cluster_worker_shows_as_a_restart_in_the_report_and_the_log(
        cluster, movie, plugins, reference, tmp_path) -> None:
    killed: list[int] = []

    def on_event(event) -> None:
        if isinstance(event, FovStarted) and event.fov == 1 and not killed:
            worker = worker_listening_at(cluster, int(event.worker.rsplit(":", 1)[1]))
            killed.append(worker.pid)
            worker.kill()

    output = tmp_path / "out"
    config = config_for(movie, output, plugins, executor="dask", scheduler=cluster.address)
    report = run_workflow(config, on_event=on_event)

    assert killed and report.ok, report.failed
    assert report.restarts.get(1, 0) >= 1 and report.worker_deaths >= 1
    assert "FOV 1 restarted on" in (output / "run.log").read_text()
    assert_fov_complete(output, 1, reference)
    cluster.wait_for_threads(2)  # the nanny has started a new worker process


def test_an_aborted_cluster_run_cancels_its_tasks_and_says_which_may_still_run(
        cluster, movie, plugins, tmp_path) -> None:
    output, token, started = tmp_path / "out", CancelToken(), set()

    def on_event(event) -> None:
        if isinstance(event, FovStarted):
            started.add(event.fov)
            if len(started) == 2:
                token.abort()

    cluster.stall.touch()  # the running FOVs' frames never end: they cannot stop in time
    try:
        config = config_for(movie, output, plugins, executor="dask", scheduler=cluster.address)
        report = run_workflow(config, on_event=on_event, cancel=token)
    finally:
        cluster.stall.unlink()

    assert report.aborted and set(report.abandoned) == started
    assert all("tcp://" in worker for worker in report.abandoned.values())
    assert_report_is_true(report, output)
    notes = {manifest_of(output)["fovs"][fov].get("error") for fov in started}
    assert all(note and note.startswith("may still be running on") for note in notes)
    # Released, the abandoned tasks stop at their next frame and remove their partial files.
    deadline = time.monotonic() + 30
    while partial_files(output) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert partial_files(output) == []


def test_a_second_ctrl_c_on_a_cluster_run_leaves_no_task_writing(cluster, movie, plugins,
                                                                tmp_path) -> None:
    output = tmp_path / "out"
    process = subprocess.Popen(
        [FOVFLOW, "run", movie, "-o", output, "--fl", "1", "--min-length", "4", "--plugins",
         plugins, "--executor", "dask", "--scheduler", cluster.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = output / "run.log", time.monotonic() + 60
    while not (log.exists() and "copy finished" in log.read_text()):
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "cancelled" in stdout and "run finished" in log.read_text()
    assert partial_files(output) == []
    files = snapshot(output)
    time.sleep(2)  # a task still running would write here within its next frames
    assert snapshot(output) == files
    assert cluster.on_scheduler(scheduler_leftovers)["queues"] == []


def test_a_dashboard_address_is_a_one_line_error_at_once(cluster, movie, tmp_path) -> None:
    result = subprocess.run(
        [FOVFLOW, "run", movie, "-o", tmp_path / "out", "--executor", "dask", "--scheduler",
         f"tcp://127.0.0.1:{cluster.dashboard}"], capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "web server (the Dask dashboard's?)" in lines[0] and "tcp://host:8786" in lines[0]


def test_workers_of_another_fovflow_version_are_refused_naming_them(
        cluster, movie, plugins, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(dask_executor, "__version__", "0.0.1")  # the caller, not the workers
    config = config_for(movie, tmp_path / "out", plugins, executor="dask",
                        scheduler=cluster.address)
    with pytest.raises(FovflowError, match=r"must run fovflow 0\.0\.1, .*tcp://127\.0\.0\.1"):
        run_workflow(config)
    assert not (tmp_path / "out").exists()


def test_a_worker_that_joins_mid_run_gets_work(cluster, movie, plugins, tmp_path) -> None:
    running: set[int] = set()
    most = [0]
    late: list[subprocess.Popen[bytes]] = []

    def on_event(event) -> None:
        if isinstance(event, FovStarted):
            running.add(event.fov)
            most[0] = max(most[0], len(running))
            if not late:  # a worker joins after the run has connected and started
                late.append(cluster.start_worker("late"))
                cluster.wait_for_threads(2)
        elif isinstance(event, FovFinished):
            running.discard(event.fov)

    with Client(cluster.address) as client:
        client.retire_workers(list(client.nthreads())[1:], close_workers=True)  # one left
        client.wait_for_workers(1)
    config = config_for(movie, tmp_path / "out", plugins, executor="dask",
                        scheduler=cluster.address)
    report = run_workflow(config, on_event=on_event)

    assert report.ok
    assert most[0] >= 2, "the FOVs ran one at a time: the late worker got no work"


def worker_listening_at(cluster: Cluster, port: int) -> psutil.Process:
    """The Dask worker process (a child of a `dask worker` command) serving `port`."""
    for command in cluster.processes[1:]:
        for child in psutil.Process(command.pid).children(recursive=True):
            if any(c.laddr.port == port for c in child.net_connections("tcp")
                   if c.status == psutil.CONN_LISTEN):
                return child
    raise AssertionError(f"no worker process listens at port {port}")


def snapshot(folder: Path) -> set[tuple[str, int, int]]:
    return {(str(path), path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*") if path.is_file()}
