"""What every fault-injection test checks after a run, and the test-side fault injector.

The checks, after any interrupted or faulty run:

- the `RunReport` is true: every selected FOV is in exactly one of processed / skipped / failed /
  cancelled, and the manifest records the same status (and error) for each;
- every step the manifest records as done has complete outputs, equal to those of an
  uninterrupted reference run (zarr arrays readable with all frames, traces CSVs byte-identical);
- no ``*.partial`` file or folder is left anywhere in the run folder;
- no worker process of the run is alive once `run_workflow` has returned.

Faults inside worker processes come from `FAULT_PLUGIN`, a plugin file the tests write into a
plugin folder. It registers no feature; in a worker process (never in the test process) it
wraps the step runners and the low-level writes, and does nothing unless an environment variable
asks for a fault (workers inherit the environment when the run starts them).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import yaml
import zarr

from fovflow.execution import make_executor
from fovflow.io.layout import MANIFEST_NAME, fov_dir, step_outputs
from fovflow.io.ngff import ARRAY
from fovflow.io.synthetic import SimulationConfig
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import RunReport, run_workflow
from fovflow.workflow.steps import STEPS

# 3 FOVs x 10 frames x (phase + 1 fluorescence) of 112x112 px with 2-3 cells each: a serial
# run takes about a second.
SIM = SimulationConfig(n_fovs=3, n_frames=10, height=112, width=112, cell_radius_px=20,
                       cells_per_megapixel=250, seed=11)
FOVS = (0, 1, 2)
FL_CHANNELS = (1,)

FRAME_DELAY = "RELIABILITY_FRAME_DELAY"  # seconds each frame of every step takes longer
RAISE_AT = "RELIABILITY_RAISE_AT"  # "fov:step:frame": that frame raises RuntimeError
DISK_FULL_WHEN = "RELIABILITY_DISK_FULL_WHEN"  # while this file exists, writes fail (ENOSPC)
STALL_WHEN = "RELIABILITY_STALL_WHEN"  # while this file exists, frames do not end

FAULT_PLUGIN = '''
"""Test-side fault injection for tests/reliability; inert unless its variables are set."""

import errno
import multiprocessing
import os
import time

FEATURES = {}  # a plugin must define FEATURES or MODELS; this one adds none


def _disk_full(path):
    marker = os.environ.get("RELIABILITY_DISK_FULL_WHEN")
    if marker and os.path.exists(marker):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _faulty(name, runner):
    def run(task, folder, parameters, progress):
        delay = float(os.environ.get("RELIABILITY_FRAME_DELAY") or 0)
        fov, step, frame = (os.environ.get("RELIABILITY_RAISE_AT") or "-1:-:-1").split(":")
        fail = int(fov) == task.fov and step == name

        def report(done, total):
            time.sleep(delay)
            stall = os.environ.get("RELIABILITY_STALL_WHEN")
            while stall and os.path.exists(stall):
                time.sleep(0.05)
            if fail and done == int(frame):
                raise RuntimeError(f"injected fault in FOV {fov}, {step}, frame {frame}")
            progress(done, total)

        return runner(task, folder, parameters, report)
    return run


def _install():
    import pandas as pd
    import zarr.storage._local as zarr_local
    from fovflow.workflow import steps

    if getattr(steps, "_reliability_faults", False):
        return
    steps._reliability_faults = True
    put, to_csv = zarr_local._put, pd.DataFrame.to_csv

    def full_put(path, value, exclusive=False):
        _disk_full(path)
        return put(path, value, exclusive=exclusive)

    def full_to_csv(self, path_or_buf=None, *args, **kwargs):
        _disk_full(path_or_buf)
        return to_csv(self, path_or_buf, *args, **kwargs)

    zarr_local._put, pd.DataFrame.to_csv = full_put, full_to_csv
    for name, runner in list(steps._STEP_RUNNERS.items()):
        steps._STEP_RUNNERS[name] = _faulty(name, runner)


if multiprocessing.parent_process() is not None:  # worker processes only
    _install()
'''


def write_fault_plugin(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reliability_faults.py").write_text(FAULT_PLUGIN)
    return folder


def config_for(movie: Path, output: Path, plugins: Path, **changes: Any) -> WorkflowConfig:
    """The one configuration every test runs (only the executor and output differ)."""
    settings: dict[str, Any] = {"n_workers": 2, "fl_channels": FL_CHANNELS,
                                "extraction": {"min_length": 4}, "plugins": (str(plugins),),
                                **changes}
    return WorkflowConfig(input=movie, output=output, **settings)


# -- processes ----------------------------------------------------------------------------------

def live_children() -> set[int]:
    """Pids of this process's live descendants, but multiprocessing's resource tracker (a
    helper that lives as long as the test process, not a worker of any run)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if "resource_tracker" in " ".join(child.cmdline()):
                continue
        except psutil.NoSuchProcess:
            continue
        pids.add(child.pid)
    return pids


def worker_pids() -> list[int]:
    """Live spawned worker processes (process executor or Dask) of this process."""
    pids = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.is_running():
                pids.append(child.pid)
        except psutil.NoSuchProcess:
            continue
    return sorted(pids)


def assert_no_orphans(before: set[int], *, grace_s: float = 0.0) -> None:
    """No process started since `before` is still alive (after at most `grace_s`)."""
    new = live_children() - before
    if new and grace_s:
        _, alive = psutil.wait_procs([psutil.Process(pid) for pid in new if psutil.pid_exists(pid)],
                                     timeout=grace_s)
        new = {process.pid for process in alive}
    assert not new, f"processes of the run outlived it: {_describe(new)}"


def _describe(pids: Iterable[int]) -> list[str]:
    described = []
    for pid in pids:
        try:
            described.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:120]}")
        except psutil.NoSuchProcess:
            described.append(f"{pid} (gone)")
    return described


# -- the run folder -----------------------------------------------------------------------------

def manifest_of(output: Path) -> dict[str, Any]:
    return yaml.safe_load((output / MANIFEST_NAME).read_text())


def partial_files(output: Path) -> list[Path]:
    """Every ``*.partial`` file and folder under `output`. Tasks still stopping remove theirs
    while this looks: os.walk skips a folder gone before it is listed, where rglob raised."""
    return sorted(Path(folder) / name for folder, folders, files in os.walk(output)
                  for name in folders + files if name.endswith(".partial"))


def assert_report_is_true(report: RunReport, output: Path, fovs: Iterable[int] = FOVS) -> None:
    """Every FOV in exactly one outcome, and the manifest says the same."""
    fovs = tuple(fovs)
    groups = [set(report.processed), set(report.skipped), set(report.failed),
              set(report.cancelled)]
    assert sum(len(group) for group in groups) == len(fovs), f"a FOV counted twice: {report}"
    assert set().union(*groups) == set(fovs) == set(report.selected)
    assert report.ok == (not report.failed and not report.cancelled)
    records = manifest_of(output)["fovs"]
    for fov in report.processed:
        assert records[fov]["status"] == "done"
        assert list(records[fov]["steps"]) == list(STEPS), f"FOV {fov} is not complete"
    for fov, error in report.failed.items():
        assert records[fov]["status"] == "failed" and records[fov]["error"] == error
    for fov in report.cancelled:
        assert records[fov]["status"] == "cancelled"


def assert_recorded_outputs_match(output: Path, reference: Path) -> int:
    """Every step the manifest records as done has whole outputs equal to the reference's.

    Returns how many steps were checked.
    """
    checked = 0
    for fov, record in manifest_of(output)["fovs"].items():
        for step in record.get("steps", {}):
            for name in step_outputs(step, FL_CHANNELS):
                assert_same_output(fov_dir(output, fov) / name, fov_dir(reference, fov) / name)
            checked += 1
    return checked


def assert_same_output(path: Path, reference: Path) -> None:
    """A zarr array with all its frames and equal values, or a byte-identical CSV that parses."""
    assert path.exists(), f"{path} is missing"
    if path.suffix == ".csv":
        assert path.read_bytes() == reference.read_bytes(), f"{path} differs from the reference"
        table = pd.read_csv(path)
        if path.name.startswith("traces_"):  # tracking writes lineage and shift tables too
            assert list(table.columns[:5]) == ["fov", "cell", "frame", "time", "good"]
        return
    if path.suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(reference))
        return
    if (path / ARRAY).is_dir():  # an OME-Zarr image or label image: its one array
        path, reference = path / ARRAY, reference / ARRAY
    array, expected = zarr.open_array(path, mode="r"), _reference_array(reference)
    assert array.shape == expected.shape and array.shape[0] == SIM.n_frames
    assert array.dtype == expected.dtype
    assert np.array_equal(array[:], expected), f"{path} differs from the reference"


@functools.cache
def _reference_array(path: Path) -> np.ndarray:
    """A reference run's array, read once per session (reference runs are never changed)."""
    return np.asarray(zarr.open_array(path, mode="r")[:])


def assert_fov_complete(output: Path, fov: int, reference: Path) -> None:
    for step in STEPS:
        for name in step_outputs(step, FL_CHANNELS):
            assert_same_output(fov_dir(output, fov) / name, fov_dir(reference, fov) / name)


def assert_sound_after_fault(report: RunReport, output: Path, reference: Path,
                             before: set[int], *, grace_s: float = 0.0) -> None:
    """The checks every fault scenario makes right after its interrupted or faulty run."""
    assert_report_is_true(report, output)
    for fov in report.processed:
        assert_fov_complete(output, fov, reference)
    assert_recorded_outputs_match(output, reference)
    assert partial_files(output) == []
    assert_no_orphans(before, grace_s=grace_s)


def assert_rerun_matches(report: RunReport, interrupted: RunReport, output: Path,
                         reference: Path) -> None:
    """A rerun finished exactly the FOVs the interrupted run did not, and equals the reference."""
    assert report.ok, report
    assert set(report.processed) == set(FOVS) - set(interrupted.processed)
    assert set(report.skipped) == set(interrupted.processed)
    for fov in FOVS:
        assert_fov_complete(output, fov, reference)
    assert partial_files(output) == []


def events_by_type(events: Iterable[Any], kind: type) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


def rerun(config: WorkflowConfig) -> RunReport:
    """`config` run again on threads: quicker to start than a process pool, and every executor
    writes identical outputs (tests/workflow/test_run.py). Worker-side faults stay off."""
    with make_executor("thread", n_workers=2) as executor:
        return run_workflow(config, executor=executor)
