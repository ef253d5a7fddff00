"""The engine end to end on simulated data: same results everywhere, resumable, fault-tolerant."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
import zarr

from fovflow.errors import ConfigError, FovflowError
from fovflow.execution import CancelToken, make_executor
from fovflow.io.layout import LABELS, MANIFEST_NAME, PHASE, corrected_stack, open_stack
from fovflow.io.microscopy import open_dataset
from fovflow.io.synthetic import SimulationConfig, simulate_fov, write_simulation
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.events import (
    FovFinished,
    RunFinished,
    RunStarted,
    StepFinished,
    StepProgress,
)
from fovflow.workflow.prepare import check_steps
from fovflow.workflow.run import run_workflow
from fovflow.workflow.steps import STEPS

SIM = SimulationConfig(n_fovs=4, n_frames=12, height=128, width=160, seed=5)
LONG_SIM = SimulationConfig(n_fovs=4, n_frames=60, height=160, width=160, seed=6)


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    return write_simulation(tmp_path_factory.mktemp("engine") / "sim.ome.tif", SIM).image


@pytest.fixture(scope="module")
def long_movie(tmp_path_factory) -> Path:
    return write_simulation(tmp_path_factory.mktemp("engine") / "long.ome.tif", LONG_SIM).image


def config_for(movie: Path, output: Path, **changes) -> WorkflowConfig:
    return WorkflowConfig(input=movie, output=output, n_workers=2,
                          extraction={"min_length": 5}, **changes)


def traces(output: Path, fov: int) -> pd.DataFrame:
    return pd.read_csv(output / f"fov_{fov:03d}" / "traces_ch_1.csv")


def no_partials(output: Path) -> bool:
    return not list(output.rglob("*.partial"))


@pytest.fixture(scope="module")
def serial_run(movie, tmp_path_factory) -> tuple[Path, list]:
    output, events = tmp_path_factory.mktemp("serial") / "out", []
    report = run_workflow(config_for(movie, output, executor="serial"), on_event=events.append)
    assert report.ok and report.processed == (0, 1, 2, 3)
    return output, events


@pytest.mark.parametrize("kind", ["thread", "process", "dask"])
def test_every_executor_writes_identical_traces(serial_run, movie, tmp_path, kind) -> None:
    reference, _ = serial_run
    report = run_workflow(config_for(movie, tmp_path, executor=kind))
    assert report.ok and report.processed == (0, 1, 2, 3)
    for fov in range(4):
        pd.testing.assert_frame_equal(traces(tmp_path, fov), traces(reference, fov))
    assert no_partials(tmp_path)


def test_outputs_follow_the_layout_and_are_chunked_per_frame(serial_run) -> None:
    output, _ = serial_run
    folder = output / "fov_002"
    names = sorted(p.name for p in folder.iterdir() if p.suffix != ".parquet")
    assert names == ["fl_background.ome.zarr", "image.ome.zarr", "lineage.csv", "seg.zarr",
                     "shifts.csv", "traces_ch_1.csv"]
    labels = zarr.open_array(folder / "image.ome.zarr" / "labels" / "cells" / "0", mode="r")
    assert labels.shape == (12, 128, 160) and labels.chunks == (1, 128, 160)
    image = zarr.open_array(folder / "image.ome.zarr" / "0", mode="r")
    assert image.shape == (12, 2, 128, 160) and image.chunks == (1, 1, 128, 160)
    table = traces(output, 2)
    assert list(table.columns[:7]) == ["fov", "cell", "frame", "time", "good", "position_x",
                                       "position_y"]
    assert set(table["time"]) <= {600.0 * t for t in range(12)}
    manifest = yaml.safe_load((output / MANIFEST_NAME).read_text())
    assert manifest["time_unit"] == "s"
    assert manifest["fovs"][2]["status"] == "done"
    assert list(manifest["fovs"][2]["steps"]) == list(STEPS)


def test_events_arrive_in_order_per_fov_and_end_each_step(serial_run) -> None:
    _, events = serial_run
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    for fov in range(4):
        mine = [e for e in events if getattr(e, "fov", None) == fov]
        assert isinstance(mine[-1], FovFinished) and mine[-1].ok
        finished = [e.step for e in mine if isinstance(e, StepFinished)]
        assert finished == list(STEPS)
        for step in STEPS:
            progress = [e for e in mine if isinstance(e, StepProgress) and e.step == step]
            assert [e.done for e in progress] == sorted(e.done for e in progress)
            assert progress[-1].done == progress[-1].total


def test_rerun_skips_everything_that_is_complete(serial_run, movie) -> None:
    output, _ = serial_run
    before = (output / "fov_001" / "traces_ch_1.csv").stat().st_mtime_ns
    events: list = []
    report = run_workflow(config_for(movie, output, executor="serial"), on_event=events.append)
    assert report.skipped == (0, 1, 2, 3) and report.processed == ()
    assert not [e for e in events if isinstance(e, StepProgress)]
    assert (output / "fov_001" / "traces_ch_1.csv").stat().st_mtime_ns == before


def test_changed_tracking_parameter_redoes_tracking_and_extraction_only(movie, tmp_path) -> None:
    run_workflow(config_for(movie, tmp_path, executor="serial"))
    events: list = []
    report = run_workflow(config_for(movie, tmp_path, executor="serial",
                                     tracking={"min_iou": 0.3}), on_event=events.append)
    assert report.processed == (0, 1, 2, 3)
    redone = {(e.fov, e.step) for e in events if isinstance(e, StepFinished)}
    assert redone == {(fov, step) for fov in range(4) for step in ("tracking", "extraction")}


def test_missing_output_redoes_its_step_and_everything_after(movie, tmp_path) -> None:
    run_workflow(config_for(movie, tmp_path, executor="serial"))
    import shutil

    shutil.rmtree(tmp_path / "fov_003" / "seg.zarr")
    events: list = []
    run_workflow(config_for(movie, tmp_path, executor="serial"), on_event=events.append)
    redone = [e.step for e in events if isinstance(e, StepFinished)]
    assert redone == ["segmentation", "background", "tracking", "extraction"]
    assert all(e.fov == 3 for e in events if isinstance(e, StepFinished))


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_cancel_mid_run_is_fast_leaves_no_partial_files_and_resumes(long_movie, tmp_path,
                                                                    kind) -> None:
    token, marks = CancelToken(), {}

    def on_event(event) -> None:
        if isinstance(event, StepFinished) and event.step == "copy" and "cancel" not in marks:
            marks["cancel"] = time.perf_counter()
            token.cancel()

    config = config_for(long_movie, tmp_path, executor=kind)
    report = run_workflow(config, on_event=on_event, cancel=token)
    latency = time.perf_counter() - marks["cancel"]
    assert latency < 2.0, f"run took {latency:.2f} s to return after cancel"
    assert report.cancelled and not report.failed and not report.ok
    assert set(report.cancelled) | set(report.processed) == {0, 1, 2, 3}
    assert no_partials(tmp_path)
    manifest = yaml.safe_load((tmp_path / MANIFEST_NAME).read_text())
    assert {manifest["fovs"][f]["status"] for f in report.cancelled} <= {"cancelled"}
    copied = [f for f in report.cancelled if "copy" in manifest["fovs"][f]["steps"]]
    assert copied  # the FOV whose copy finished keeps it

    events: list = []
    resumed = run_workflow(config, on_event=events.append)
    assert resumed.ok and set(resumed.processed) == set(report.cancelled)
    copies = {e.fov for e in events if isinstance(e, StepFinished) and e.step == "copy"}
    assert not copies & set(copied)


def test_a_failing_fov_is_reported_and_the_others_finish(movie, tmp_path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "fov_002").write_text("a file where the FOV folder should be")
    report = run_workflow(config_for(movie, tmp_path, executor="process"))
    assert report.processed == (0, 1, 3)
    assert list(report.failed) == [2] and "fov_002" in report.failed[2]
    manifest = yaml.safe_load((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["fovs"][2]["status"] == "failed"
    assert "Traceback" in (tmp_path / "run.log").read_text()


def test_killed_worker_fails_only_its_fov_and_a_rerun_completes(long_movie, tmp_path) -> None:
    killed: list[int] = []

    def on_event(event) -> None:
        if isinstance(event, StepProgress) and event.step == "segmentation" and not killed:
            victim = multiprocessing.active_children()[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    config = config_for(long_movie, tmp_path, executor="process")
    with make_executor("process", n_workers=2) as executor:
        report = run_workflow(config, executor=executor, on_event=on_event)
    assert len(report.failed) == 1 and len(report.processed) == 3
    assert "killed by signal 9" in next(iter(report.failed.values()))
    assert no_partials(tmp_path)
    assert run_workflow(config).processed == tuple(report.failed)


def test_worker_logs_are_forwarded_to_the_run_log(movie, tmp_path) -> None:
    run_workflow(config_for(movie, tmp_path, executor="process", fovs="1"))
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert any("fovflow-worker" in line and "FOV 1: tracking finished" in line for line in lines)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"segmentation": {"method": "cellpos"}}, "unknown segmentation method 'cellpos'"),
     ({"segmentation": {"diameter": 0}}, "diameter must be auto, a positive number"),
     ({"segmentation": {"diameter": "-3um"}}, "diameter must be auto"),
     ({"segmentation": {"diameter": 5000}}, "larger than the frames"),
     ({"segmentation": {"method": "fluorescence", "threshold": "otsuu"}},
      "invalid segmentation parameters: unknown threshold"),
     ({"fl_channels": (4,)}, "fluorescence channel 4 is out of range"),
     ({"fovs": "0-9"}, "index 9"),
     ({"fovs": "1,x"}, "'x'"),
     ({"segmentation": {"windw": 5}}, "unknown segmentation parameters"),
     ({"tracking": {"min_iou": "high"}}, "min_iou"),
     ({"segmentation": {"window": 4}}, "invalid segmentation parameters: window"),
     ({"background": {"weight": 1.5}}, "invalid background parameters: weight"),
     ({"features": ("intensity_totl",)}, "unknown features"),
     ({"executor": "gpu"}, "unknown executor"),
     ({"scheduler": "tcp://localhost:8786"}, "dask executor"),
     ({"executor": "dask", "scheduler": "http://localhost:8787/status"},
      "web address .* give the scheduler's, like tcp://host:8786")],
)
def test_bad_configuration_is_a_clear_error(movie, tmp_path, changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        run_workflow(config_for(movie, tmp_path / "out", **changes))
    assert not (tmp_path / "out").exists()


def test_a_full_disk_at_the_start_is_one_clear_error_and_leaves_nothing_partial(
        movie, tmp_path, monkeypatch) -> None:
    def full(self, data: str, *args, **kwargs) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(FovflowError, match=r"cannot write to the run folder .*No space left"):
        run_workflow(WorkflowConfig(input=movie, output=tmp_path / "out", executor="serial"))
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_output_folder_of_another_input_is_refused(movie, long_movie, tmp_path) -> None:
    run_workflow(config_for(movie, tmp_path, executor="serial", fovs="0"))
    with pytest.raises(ConfigError, match="holds a run of"):
        run_workflow(config_for(long_movie, tmp_path, executor="serial", fovs="0"))


def test_unwritable_output_is_refused(movie, tmp_path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        with pytest.raises(ConfigError, match="inside a file"):
            run_workflow(config_for(movie, blocker / "out"))
        return
    tmp_path.chmod(0o500)
    with pytest.raises(ConfigError, match="not writable"):
        run_workflow(config_for(movie, tmp_path / "out"))


def test_config_round_trips_through_yaml(movie, tmp_path) -> None:
    config = config_for(movie, tmp_path / "out", fl_channels=(1,), fovs="0-2",
                        segmentation={"n_sigma": 2.5})
    config.save(tmp_path / "run.yaml")
    assert WorkflowConfig.load(tmp_path / "run.yaml") == config
    assert WorkflowConfig.load(tmp_path / "run.yaml", fovs="3").fovs == "3"
    (tmp_path / "bad.yaml").write_text("input: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        WorkflowConfig.load(tmp_path / "bad.yaml")
    (tmp_path / "odd.yaml").write_text("input: a.ome.tif\noutput: out\ncolour: red\n")
    with pytest.raises(ConfigError, match="unknown configuration keys"):
        WorkflowConfig.load(tmp_path / "odd.yaml")


FEATURE_PLUGIN = '''
import numpy as np
from scipy import ndimage

def intensity_max(cells):
    return np.asarray(ndimage.maximum(cells.intensity_frame, cells.label_frame, cells.ids))

FEATURES = {"intensity_max": intensity_max}
'''


def test_plugin_features_are_extracted_in_worker_processes(movie, tmp_path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "brightest.py").write_text(FEATURE_PLUGIN)
    config = config_for(movie, tmp_path / "out", executor="process", fovs="1",
                        features=("intensity_total", "intensity_max"), plugins=(str(plugins),))
    assert run_workflow(config).ok
    table = traces(tmp_path / "out", 1)
    assert list(table.columns[-2:]) == ["intensity_total", "intensity_max"]
    labels = open_stack(tmp_path / "out", 1, LABELS)
    corrected = open_stack(tmp_path / "out", 1, corrected_stack(1))
    row = table.iloc[len(table) // 2]
    frame = int(row["frame"])
    pixels = corrected[frame][labels[frame] == row["cell"]]
    assert row["intensity_max"] == pytest.approx(float(pixels.max()), rel=1e-5)


def test_unknown_feature_is_a_clear_error(movie, tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown features"):
        check_steps(config_for(movie, tmp_path, features=("intensity_max_missing",)))


def test_metadata_the_caller_already_read_is_used_as_is(movie, tmp_path, monkeypatch) -> None:
    from fovflow.io.microscopy import open_dataset
    from fovflow.workflow import prepare

    metadata = open_dataset(movie).metadata

    def fail(path):
        raise AssertionError("the file was opened again")

    monkeypatch.setattr(prepare, "open_dataset", fail)
    report = run_workflow(config_for(movie, tmp_path, executor="serial", fovs="0"),
                          metadata=metadata)
    assert report.processed == (0,)


def test_a_file_with_one_channel_is_segmented_and_measured_by_default(tmp_path) -> None:
    nuclei = simulate_fov(SimulationConfig(kind="nuclei", n_fovs=1, n_frames=4, height=128,
                                           width=128, seed=2), fov=0)
    movie = tmp_path / "nuclei.ome.tif"
    with tifffile.TiffWriter(movie, ome=True) as writer:
        writer.write(nuclei.phase[:, None], metadata={"axes": "TCYX", "Channel": {"Name": ["H2B"]}})
    config = WorkflowConfig(input=movie, output=tmp_path / "out", executor="serial",
                            segmentation={"method": "fluorescence"}, extraction={"min_length": 1})
    report = run_workflow(config)
    assert report.ok
    traces = pd.read_csv(tmp_path / "out" / "fov_000" / "traces_ch_0.csv")
    assert traces["cell"].nunique() >= 0.8 * (len(np.unique(nuclei.labels[0])) - 1)
    saved = yaml.safe_load((tmp_path / "out" / "run_config.yaml").read_text())
    assert saved["fl_channels"] == [0]


def test_left_open_the_measured_channels_are_all_but_the_segmented_one(movie) -> None:
    with open_dataset(movie) as dataset:
        metadata = dataset.metadata
    config = WorkflowConfig(input=movie, output="out", segment_channel=1)
    assert config.fl_channels is None
    assert config.for_file(metadata).fl_channels == tuple(
        c for c in range(metadata.n_channels) if c != 1)
    assert config.with_overrides(fl_channels=(1,)).for_file(metadata).fl_channels == (1,)


@pytest.mark.parametrize("executor", ["serial", "thread"])
def test_an_input_replaced_by_another_of_the_same_shape_is_read_anew(tmp_path, executor) -> None:
    # Workers keep the file open between FOVs and runs; a replaced file must not be read
    # through the old handle (it was: the second run copied the first movie's pixels).
    first, second = (write_simulation(tmp_path / f"{name}.ome.tif",
                                      SimulationConfig(n_fovs=1, n_frames=3, height=64,
                                                       width=64, seed=seed)).image
                     for name, seed in (("first", 1), ("second", 2)))
    movie = tmp_path / "movie.ome.tif"
    config = WorkflowConfig(input=movie, output=tmp_path / "out", executor=executor,
                            n_workers=1, extraction={"min_length": 1})
    for source in (first, second):
        staging = tmp_path / "incoming.ome.tif"
        staging.write_bytes(source.read_bytes())
        os.replace(staging, movie)  # a new file under the old name, as a copy or a move makes
        assert run_workflow(config).ok
        copied = np.asarray(open_stack(tmp_path / "out", 0, PHASE))
        np.testing.assert_array_equal(copied, tifffile.imread(source, series=0)[:, 0])


def test_relative_paths_are_made_absolute_before_they_reach_a_worker(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    config = WorkflowConfig(input="movie.ome.tif", output="out", plugins=("mine",))
    assert config.input == tmp_path / "movie.ome.tif"
    assert config.output == tmp_path / "out"
    assert config.plugins == (str(tmp_path / "mine"),)
    monkeypatch.chdir("/")  # as a worker in another folder sees it
    assert WorkflowConfig.from_dict(config.to_dict()).output == tmp_path / "out"
