"""Fault injection with real processes: each fault hurts only what it hits, and a rerun heals it.

After every faulty run: the report is true, finished FOVs are whole, nothing ``.partial`` is
left, no worker outlives the run, and a rerun gives outputs identical to an uninterrupted run.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import tifffile
from reliability_helpers import (
    DISK_FULL_WHEN,
    FOVS,
    FRAME_DELAY,
    RAISE_AT,
    SIM,
    assert_fov_complete,
    assert_no_orphans,
    assert_report_is_true,
    assert_rerun_matches,
    assert_sound_after_fault,
    config_for,
    events_by_type,
    live_children,
    manifest_of,
    partial_files,
    rerun,
    worker_pids,
)

from fovflow.execution import ProcessExecutor, make_executor
from fovflow.io.layout import LABELS, PHASE, fov_dir, open_stack
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.events import FovFinished, StepFinished, StepProgress
from fovflow.workflow.run import RunReport, run_workflow
from fovflow.workflow.steps import process_fov

FOVFLOW = Path(sys.executable).with_name("fovflow")
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"


def rerun_with_events(config: WorkflowConfig, events: list) -> RunReport:
    with make_executor("thread", n_workers=2) as executor:
        return run_workflow(config, executor=executor, on_event=events.append)


# -- 1. a worker killed -------------------------------------------------------------------------

def test_worker_killed_mid_fov_fails_only_that_fov_and_rerun_matches(
        movie, plugins, reference, tmp_path, monkeypatch) -> None:
    # About 2.5 s per FOV: the kill lands mid-step even when the caller reads events late.
    monkeypatch.setenv(FRAME_DELAY, "0.05")
    config = config_for(movie, tmp_path, plugins, executor="process")
    before = live_children()
    running: set[int] = set()
    kill: dict[str, object] = {}

    def on_event(event) -> None:
        if isinstance(event, StepProgress):
            running.add(event.fov)
        elif isinstance(event, FovFinished):
            running.discard(event.fov)
        if (isinstance(event, StepProgress) and event.step == "segmentation"
                and event.done < event.total and not kill):
            kill.update(pid=worker_pids()[0], running=set(running),
                        partials=partial_files(tmp_path))
            os.kill(kill["pid"], signal.SIGKILL)

    report = run_workflow(config, on_event=on_event)

    assert kill["partials"], "the kill should hit a FOV while it writes"
    assert len(report.failed) == 1 and len(report.processed) == 2
    [(victim, error)] = report.failed.items()
    assert victim in kill["running"]
    assert f"worker process {kill['pid']} was killed by signal 9" in error
    assert not psutil.pid_exists(kill["pid"]) or psutil.Process(kill["pid"]).status() == "zombie"
    assert_sound_after_fault(report, tmp_path, reference, before)

    assert_rerun_matches(rerun(config), report, tmp_path, reference)
    assert_no_orphans(before)


def test_idle_worker_killed_before_its_first_fov_is_replaced_and_every_fov_completes(
        movie, plugins, reference, tmp_path) -> None:
    config = config_for(movie, tmp_path, plugins, executor="process")
    before = live_children()
    with ProcessExecutor(n_workers=2, preload=(process_fov.__module__,)) as executor:
        executor.start()
        victim = psutil.Process(worker_pids()[0])
        victim.kill()
        while victim.status() != psutil.STATUS_ZOMBIE:  # dead, left for its parent to reap
            time.sleep(0.01)
        report = run_workflow(config, executor=executor)
    assert report.ok and report.processed == FOVS, report
    assert_sound_after_fault(report, tmp_path, reference, before)


# -- 2. an exception in one FOV's step ------------------------------------------------------------

def test_exception_mid_step_fails_only_that_fov_and_rerun_redoes_only_its_missing_steps(
        movie, plugins, reference, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(RAISE_AT, "1:tracking:5")  # FOV 1 raises at frame 5 of 10 of tracking
    config = config_for(movie, tmp_path, plugins, executor="process")
    before = live_children()
    events: list = []

    report = run_workflow(config, on_event=events.append)

    message = "RuntimeError: injected fault in FOV 1, tracking, frame 5"
    assert report.failed == {1: message} and report.processed == (0, 2)
    [ended] = [e for e in events_by_type(events, FovFinished) if e.fov == 1]
    assert ended.error == message and "Traceback" in ended.traceback
    assert list(manifest_of(tmp_path)["fovs"][1]["steps"]) == ["copy", "segmentation",
                                                               "background"]
    assert message in (tmp_path / "run.log").read_text()
    assert_sound_after_fault(report, tmp_path, reference, before)

    monkeypatch.delenv(RAISE_AT)
    events.clear()
    assert_rerun_matches(rerun_with_events(config, events), report, tmp_path, reference)
    redone = [(e.fov, e.step) for e in events_by_type(events, StepFinished)]
    assert redone == [(1, "tracking"), (1, "extraction")]
    assert_no_orphans(before)


# -- 3. the output filesystem fills up ------------------------------------------------------------

def test_disk_full_mid_run_fails_the_fovs_it_hits_cleanly_and_rerun_after_space_returns_matches(
        movie, plugins, reference, tmp_path, monkeypatch) -> None:
    """Worker writes (zarr chunks, CSVs) fail with ENOSPC from the moment a FOV has finished."""
    full = tmp_path / "disk-full"
    monkeypatch.setenv(DISK_FULL_WHEN, str(full))
    monkeypatch.setenv(FRAME_DELAY, "0.01")
    output = tmp_path / "out"
    config = config_for(movie, output, plugins, executor="process")
    before = live_children()

    def on_event(event) -> None:
        if isinstance(event, FovFinished):
            full.touch()

    report = run_workflow(config, on_event=on_event)

    assert report.processed and report.failed and not report.cancelled
    assert 2 in report.failed  # it started after the disk was full
    assert all(NO_SPACE in error for error in report.failed.values()), report.failed
    assert_sound_after_fault(report, output, reference, before)

    full.unlink()  # space returns
    assert_rerun_matches(rerun(config), report, output, reference)
    assert_no_orphans(before)


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 32 MB tmpfs of its own (needs permission to mount; skipped without it)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mount_point],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", mount_point], check=True)


def fill(folder: Path) -> Path:
    """Grow a ballast file until the filesystem of `folder` has no space left."""
    ballast, block = folder / "ballast", b"\0" * (64 << 10)
    with ballast.open("ab", buffering=0) as file:
        try:
            while True:
                file.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def test_really_full_filesystem_fails_fovs_not_the_run_and_rerun_after_space_returns_matches(
        movie, plugins, reference, small_filesystem, monkeypatch) -> None:
    """A real full filesystem: worker writes and the caller's manifest updates fail alike."""
    monkeypatch.setenv(FRAME_DELAY, "0.01")
    output = small_filesystem / "out"
    config = config_for(movie, output, plugins, executor="process")
    before = live_children()
    ballast: list[Path] = []

    def on_event(event) -> None:  # from the first FOV's end on, the disk stays full
        if isinstance(event, FovFinished) or ballast:
            ballast.append(fill(small_filesystem))

    report = run_workflow(config, on_event=on_event)

    assert report.failed and not report.cancelled and 2 in report.failed
    assert all(NO_SPACE in error for error in report.failed.values()), report.failed
    assert partial_files(output) == []
    assert_no_orphans(before)
    for fov in report.processed:
        assert_fov_complete(output, fov, reference)

    ballast[0].unlink()  # space returns
    assert not (output / "processing_results.yaml.partial").exists()
    again = rerun(config)
    assert again.ok and set(again.processed) >= set(report.failed)
    for fov in FOVS:
        assert_fov_complete(output, fov, reference)
    assert partial_files(output) == []


# -- 4. a corrupted input frame -------------------------------------------------------------------

def page_of(tif: tifffile.TiffFile, fov: int, index: int) -> tifffile.TiffPage:
    return tif.pages.get(tif.series[fov].pages[index].index, aspage=True)


def test_unreadable_frame_fails_only_its_fov_clearly_and_a_repaired_file_reruns_identically(
        movie, plugins, reference, tmp_path) -> None:
    damaged = tmp_path / "damaged.ome.tif"
    shutil.copyfile(movie, damaged)
    with tifffile.TiffFile(damaged) as tif:  # FOV 1's pages now claim to be deflate-compressed
        offset, order = page_of(tif, 1, 0).tags["Compression"].valueoffset, tif.byteorder
    with damaged.open("r+b") as file:
        file.seek(offset)
        file.write(struct.pack(order + "H", 8))
    output = tmp_path / "out"
    config = config_for(damaged, output, plugins, executor="process")
    before = live_children()

    report = run_workflow(config)

    assert report.processed == (0, 2) and list(report.failed) == [1]
    assert report.failed[1].startswith(f"CorruptFileError: {damaged}: cannot read FOV 1, ")
    assert "damaged" in report.failed[1]
    assert_sound_after_fault(report, output, reference, before)

    shutil.copyfile(movie, damaged)  # repaired: a new file, so every FOV is redone
    again = rerun(config)
    assert again.ok and again.processed == FOVS
    for fov in FOVS:
        assert_fov_complete(output, fov, reference)
    assert partial_files(output) == []
    assert_no_orphans(before)


def test_garbage_frame_is_processed_without_harming_the_other_fovs(
        movie, plugins, reference, tmp_path) -> None:
    damaged = tmp_path / "noisy.ome.tif"
    shutil.copyfile(movie, damaged)
    with tifffile.TiffFile(damaged) as tif:  # FOV 1, frame 5: both channels' pixels overwritten
        pages = [page_of(tif, 1, 5 * 2 + channel) for channel in (0, 1)]
        spans = [(p.dataoffsets[0], p.databytecounts[0]) for p in pages]
    pixels = SIM.height * SIM.width
    noise = np.random.default_rng(0).integers(0, 2**16, size=pixels, dtype=np.uint16)
    with damaged.open("r+b") as file:
        for offset, size in spans:
            assert size == noise.nbytes
            file.seek(offset)
            file.write(noise.tobytes())
    output = tmp_path / "out"
    before = live_children()

    report = run_workflow(config_for(damaged, output, plugins, executor="thread"))

    assert report.ok and report.processed == FOVS
    assert_report_is_true(report, output)
    for fov in (0, 2):
        assert_fov_complete(output, fov, reference)
    copied = open_stack(output, 1, PHASE)
    assert np.array_equal(copied[5].ravel(), noise)  # FOV 1 holds what the file holds...
    labels = open_stack(output, 1, LABELS)
    assert labels.shape == (SIM.n_frames, SIM.height, SIM.width)  # ...and was processed whole
    assert pd.read_csv(fov_dir(output, 1) / "traces_ch_1.csv")["fov"].eq(1).all()
    assert partial_files(output) == []
    assert_no_orphans(before)


# -- 5. Ctrl-C to the command line ----------------------------------------------------------------

def test_ctrl_c_to_the_cli_leaves_no_worker_no_partial_file_and_rerun_matches(
        movie, plugins, reference, tmp_path) -> None:
    output = tmp_path / "out"
    command = [FOVFLOW, "run", movie, "-o", output, "--fl", "1", "--workers", "2",
               "--min-length", "4", "--plugins", plugins]
    slow = {**os.environ, FRAME_DELAY: "0.05"}  # about 2.5 s per FOV
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=slow)
    log, deadline = output / "run.log", time.monotonic() + 60
    while not (log.exists() and "copy finished" in log.read_text()):
        assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
        time.sleep(0.05)
    workers = psutil.Process(process.pid).children(recursive=True)
    assert len([w for w in workers if "spawn_main" in " ".join(w.cmdline())]) == 2

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    _, alive = psutil.wait_procs(workers, timeout=1)  # a zombie (not reaped by init) has ended
    assert not [w for w in alive if w.status() != psutil.STATUS_ZOMBIE], alive
    assert partial_files(output) == []
    statuses = {fov: record["status"] for fov, record in manifest_of(output)["fovs"].items()}
    assert set(statuses.values()) <= {"done", "cancelled"} and "cancelled" in statuses.values()

    again = rerun(config_for(movie, output, plugins))
    assert again.ok and set(again.skipped) == {f for f, s in statuses.items() if s == "done"}
    for fov in FOVS:
        assert_fov_complete(output, fov, reference)


# -- 7. Dask: a worker of the LocalCluster killed -------------------------------------------------

@pytest.mark.slow
def test_dask_worker_killed_mid_run_the_run_still_completes_identically(
        movie, plugins, reference, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(FRAME_DELAY, "0.02")
    config = config_for(movie, tmp_path, plugins, executor="dask")
    before = live_children()
    killed: list[int] = []

    def on_event(event) -> None:
        if isinstance(event, StepProgress) and event.step == "segmentation" and not killed:
            killed.append(worker_pids()[0])
            os.kill(killed[0], signal.SIGKILL)

    report = run_workflow(config, on_event=on_event)

    assert killed
    assert report.ok and report.processed == FOVS, report.failed
    assert_sound_after_fault(report, tmp_path, reference, before, grace_s=5)
