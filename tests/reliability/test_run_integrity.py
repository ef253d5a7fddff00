"""Run integrity on one machine (issue 15, item 8): every way a run ends is reported truly, one
folder takes one run at a time, a moved input resumes, a damaged output is redone.

After each ending (done, failed, cancelled, aborted by a second Ctrl-C, SIGTERM) the summary is
printed, ``run.log`` ends with "run finished", the manifest calls no FOV "running", nothing
``.partial`` and no lock is left, and no worker process lives on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from reliability_helpers import (
    FOVS,
    FRAME_DELAY,
    assert_fov_complete,
    config_for,
    manifest_of,
    partial_files,
    rerun,
)

from fovflow.errors import FovflowError
from fovflow.io.layout import LABELS_NAME, LOCK_NAME, fov_dir
from fovflow.workflow.events import FovFinished, StepFinished
from fovflow.workflow.run import run_workflow

FOVFLOW = Path(sys.executable).with_name("fovflow")
HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from fovflow.io.store import locked_run_folder
with locked_run_folder(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def start_cli(movie: Path, output: Path, plugins: Path, frame_delay: float,
              ) -> subprocess.Popen[str]:
    command = [FOVFLOW, "run", movie, "-o", output, "--fl", "1", "--workers", "2",
               "--min-length", "4", "--plugins", plugins]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, FRAME_DELAY: str(frame_delay)})


def wait_for_log(process: subprocess.Popen[str], log: Path, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count(text) >= count):
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.05)


def assert_ended_truthfully(output: Path, stdout: str, workers: list[psutil.Process]) -> None:
    """The summary was printed, the log and the manifest are complete, nothing is left over."""
    assert "run folder" in stdout and "details in" in stdout, stdout
    last_lines = (output / "run.log").read_text().splitlines()[-8:]
    assert any("run finished" in line for line in last_lines), last_lines
    statuses = {record.get("status") for record in manifest_of(output)["fovs"].values()}
    assert "running" not in statuses, statuses
    assert partial_files(output) == []
    assert not (output / LOCK_NAME).exists()
    _, alive = psutil.wait_procs(workers, timeout=1)
    assert not [w for w in alive if w.status() != psutil.STATUS_ZOMBIE], alive


def worker_processes(process: subprocess.Popen[str]) -> list[psutil.Process]:
    children = psutil.Process(process.pid).children(recursive=True)
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


# -- every way out ------------------------------------------------------------------------------

def test_sigterm_aborts_with_a_summary_a_true_manifest_and_exit_143(
        movie, plugins, reference, tmp_path) -> None:
    output = tmp_path / "out"
    process = start_cli(movie, output, plugins, frame_delay=0.05)
    wait_for_log(process, output / "run.log", "copy finished")
    workers = worker_processes(process)

    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 143, stderr
    assert "cancelled" in stdout and "aborted" in stdout
    assert "Traceback" not in stderr
    assert_ended_truthfully(output, stdout, workers)
    assert "run finished (aborted)" in (output / "run.log").read_text()
    again = rerun(config_for(movie, output, plugins))
    assert again.ok
    for fov in FOVS:
        assert_fov_complete(output, fov, reference)


def test_a_second_ctrl_c_stops_workers_stuck_in_a_frame_and_still_reports(
        movie, plugins, reference, tmp_path) -> None:
    output = tmp_path / "out"
    process = start_cli(movie, output, plugins, frame_delay=60)  # a frame that never ends
    wait_for_log(process, output / "run.log", "copy started", count=2)
    workers = worker_processes(process)

    process.send_signal(signal.SIGINT)  # cancel: the stuck frames never get to check it
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)  # abort: their workers are stopped
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "cancelled" in stdout and "3" in stdout
    assert_ended_truthfully(output, stdout, workers)
    statuses = {fov: record["status"] for fov, record in manifest_of(output)["fovs"].items()}
    assert set(statuses.values()) == {"cancelled"}
    assert "did not stop at its next frame" in (output / "run.log").read_text()


def test_done_and_failed_runs_also_end_truthfully(movie, plugins, tmp_path) -> None:
    (tmp_path / "fov_001").mkdir(parents=True)
    (tmp_path / "fov_001" / "pc.zarr.partial").write_text("left by a crash")
    (tmp_path / "fov_002").write_text("not a folder")  # FOV 2 fails
    result = subprocess.run([FOVFLOW, "run", movie, "-o", tmp_path, "--fl", "1",
                             "--executor", "thread", "--min-length", "4"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert_ended_truthfully(tmp_path, result.stdout, [])
    (tmp_path / "fov_002").unlink()
    result = subprocess.run([FOVFLOW, "run", movie, "-o", tmp_path, "--fl", "1",
                             "--executor", "thread", "--min-length", "4"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert_ended_truthfully(tmp_path, result.stdout, [])


# -- one run per folder -------------------------------------------------------------------------

@pytest.fixture
def lock_holder(tmp_path: Path):
    """A process holding the run folder's lock, as a running `fovflow run` does."""
    output = tmp_path / "out"
    output.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, output],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield output, holder
    finally:
        holder.kill()
        holder.wait(10)


def test_a_second_run_into_a_busy_folder_is_one_line_naming_the_running_one(
        movie, plugins, lock_holder) -> None:
    output, holder = lock_holder
    result = subprocess.run([FOVFLOW, "run", movie, "-o", output, "--fl", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another fovflow run" in lines[0], result.stderr
    assert f"pid {holder.pid}" in lines[0]
    assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME]  # nothing else touched


def test_the_lock_of_a_run_killed_with_sigkill_is_taken_over(movie, plugins,
                                                             lock_holder) -> None:
    output, holder = lock_holder
    holder.kill()
    holder.wait(10)
    assert (output / LOCK_NAME).exists()  # a dead run's lock file stays behind

    report = run_workflow(config_for(movie, output, plugins, executor="serial"))

    assert report.ok
    log = (output / "run.log").read_text()
    assert "took over the lock of a run that ended without releasing it" in log
    assert f"pid {holder.pid}" in log
    assert not (output / LOCK_NAME).exists()


def test_a_run_in_this_process_holding_the_folder_refuses_another(movie, plugins,
                                                                  tmp_path) -> None:
    second: list[Exception] = []

    def on_event(event) -> None:
        if isinstance(event, StepFinished) and not second:
            try:
                run_workflow(config_for(movie, tmp_path, plugins, executor="serial"))
            except FovflowError as exc:
                second.append(exc)

    report = run_workflow(config_for(movie, tmp_path, plugins, executor="serial",
                                     fovs="0"), on_event=on_event)
    assert report.ok and second and "in use by another fovflow run" in str(second[0])


# -- resuming -----------------------------------------------------------------------------------

def test_a_byte_identical_input_copied_elsewhere_resumes_with_nothing_redone(
        movie, plugins, reference, tmp_path) -> None:
    output = tmp_path / "out"
    shutil.copytree(reference, output)
    moved = shutil.copy(movie, tmp_path / "moved.ome.tif")  # a new path and a new mtime

    events: list = []
    report = run_workflow(config_for(moved, output, plugins, executor="serial"),
                          on_event=events.append)

    assert not [e for e in events if isinstance(e, StepFinished)]
    assert report.ok and report.skipped == FOVS and report.processed == ()
    assert manifest_of(output)["input"]["path"] == str(moved)
    assert "was moved to" in (output / "run.log").read_text()


def test_a_hand_edited_traces_file_of_the_same_size_is_redone(movie, plugins, reference,
                                                             tmp_path) -> None:
    output = tmp_path / "out"
    shutil.copytree(reference, output)
    traces = fov_dir(output, 1) / "traces_ch_1.csv"
    text = traces.read_text()
    digit = next(i for i, c in enumerate(text) if c.isdigit() and i > text.index("\n"))
    traces.write_text(text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1:])
    chunk = next((fov_dir(output, 2) / LABELS_NAME).rglob("c/*/*/*"))
    chunk.write_bytes(chunk.read_bytes()[:-1])  # a truncated chunk of another FOV

    events: list = []
    report = run_workflow(config_for(movie, output, plugins, executor="serial"),
                          on_event=events.append)

    assert report.ok and report.skipped == (0,) and report.processed == (1, 2)
    redone = {(e.fov, e.step) for e in events if isinstance(e, StepFinished)}
    assert redone == {(1, "extraction"), (2, "tracking"), (2, "extraction")}
    assert traces.read_bytes() == (fov_dir(reference, 1) / "traces_ch_1.csv").read_bytes()
    assert [e.fov for e in events if isinstance(e, FovFinished) and e.skipped] == [0]
