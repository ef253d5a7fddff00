"""`fovflow run` as a user runs it: progress, summary, exit status, clean Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from fovflow.io.synthetic import SimulationConfig, write_simulation

FOVFLOW = Path(sys.executable).with_name("fovflow")


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    config = SimulationConfig(n_fovs=3, n_frames=10, height=96, width=96, seed=2)
    return write_simulation(tmp_path_factory.mktemp("cli_run") / "sim.ome.tif", config).image


def fovflow(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FOVFLOW, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_run_processes_every_fov_then_a_rerun_skips_them(movie, tmp_path) -> None:
    first = fovflow("run", movie, "-o", tmp_path, "--fl", "1", "--workers", "2",
                    "--min-length", "3")
    assert first.returncode == 0, first.stderr
    assert "processed" in first.stdout and "0-2" in first.stdout
    assert all((tmp_path / f"fov_{f:03d}" / "traces_ch_1.csv").exists() for f in range(3))
    again = fovflow("run", movie, "-o", tmp_path, "--fl", "1", "--min-length", "3",
                    "--executor", "serial")
    assert again.returncode == 0 and "already complete" in again.stdout


def test_a_failed_fov_gives_exit_status_1_and_names_the_error(movie, tmp_path) -> None:
    (tmp_path / "fov_001").write_text("not a folder")
    result = fovflow("run", movie, "-o", tmp_path, "--fl", "1", "--executor", "thread")
    assert result.returncode == 1
    assert "FOV 1 failed" in result.stderr
    assert "failed" in result.stdout and "processed" in result.stdout


def test_config_file_with_command_line_overrides(movie, tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"input: {movie}\noutput: {tmp_path / 'out'}\nfl_channels: [1]\n"
                      "executor: serial\nfovs: '0'\nextraction: {min_length: 3}\n")
    result = fovflow("run", movie, "--config", config, "--fovs", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("fov_*")) == ["fov_002"]


def test_malformed_config_file_is_a_one_line_error(movie, tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("input: [unclosed\noutput: out\n")
    result = fovflow("run", movie, "--config", config)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "not valid YAML" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--fl", "5"), "fluorescence channel 5 is out of range"),
     (("--method", "cellpos"), "unknown segmentation method 'cellpos'"),
     (("--diameter", "0"), "diameter must be auto, a positive number"),
     (("--diameter", "10cm"), "diameter must be auto"),
     (("--diameter", "4000"), "larger than the frames"),
     (("--fovs", "2-1"), "reversed range"),
     (("--executor", "cloud"), "unknown executor")],
)
def test_bad_run_options_are_one_line_errors(movie, tmp_path, args, message) -> None:
    result = fovflow("run", movie, "-o", tmp_path / "out", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]


def test_ctrl_c_cancels_cleanly_and_exits_130(tmp_path) -> None:
    config = SimulationConfig(n_fovs=4, n_frames=80, height=192, width=192, seed=3)
    movie = write_simulation(tmp_path / "long.ome.tif", config).image
    out = tmp_path / "out"
    process = subprocess.Popen([FOVFLOW, "run", movie, "-o", out, "--fl", "1", "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "run.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.exists() and "copy finished" in log.read_text():
            break
        time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 5
    assert process.returncode == 130, stderr
    assert "cancelled" in stdout
    assert not list(out.rglob("*.partial"))
    assert "Traceback" not in stderr


# --- Z stacks, FOVs of different sizes, real ND2 files (issue 21) ---------------------------

@pytest.fixture(scope="module")
def z_stack(tmp_path_factory) -> Path:
    """2 FOVs x 6 frames x 2 channels x 3 Z planes of the simulated movie (plane 1 in focus)."""
    from fovflow.io.synthetic import simulate_fov

    config = SimulationConfig(n_fovs=2, n_frames=6, height=96, width=96, seed=3)
    path = tmp_path_factory.mktemp("cli_z") / "z.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as writer:
        for fov in range(2):
            truth = simulate_fov(config, fov)
            movie = np.stack([truth.phase, truth.fluorescence[0]], axis=1)  # T, C, Y, X
            planes = np.stack([movie // 2, movie, movie // 3], axis=2)  # T, C, Z, Y, X
            writer.write(planes, metadata={"axes": "TCZYX", "TimeIncrement": 600.0,
                                           "TimeIncrementUnit": "s"})
    return path


def test_a_z_stack_without_z_is_a_one_line_error_naming_the_choices(z_stack, tmp_path) -> None:
    result = fovflow("run", z_stack, "-o", tmp_path / "out", "--fl", "1")
    assert result.returncode == 2
    assert "has 3 Z planes" in result.stderr and "--z max" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_z_max_runs_a_z_stack_and_another_z_redoes_the_work(z_stack, tmp_path) -> None:
    from fovflow.io.layout import open_stack, raw_stack

    first = fovflow("run", z_stack, "-o", tmp_path, "--fl", "1", "--z", "max",
                    "--executor", "serial", "--min-length", "3")
    assert first.returncode == 0, first.stderr
    copied = np.asarray(open_stack(tmp_path, 1, raw_stack(1)))
    with tifffile.TiffFile(z_stack) as tif:
        planes = tif.series[1].asarray()  # T, C, Z, Y, X
    assert np.array_equal(copied, planes[:, 1].max(axis=1))
    again = fovflow("run", z_stack, "-o", tmp_path, "--fl", "1", "--z", "2",
                    "--executor", "serial", "--min-length", "3")
    assert again.returncode == 0 and "already complete" not in again.stdout
    copied = np.asarray(open_stack(tmp_path, 1, raw_stack(1)))
    assert np.array_equal(copied, planes[:, 1, 2])


def test_z_from_the_config_file(z_stack, tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"input: {z_stack}\noutput: {tmp_path / 'out'}\nz: mean\nfovs: '0'\n"
                      "executor: serial\nextraction: {min_length: 3}\n")
    result = fovflow("run", z_stack, "--config", config)
    assert result.returncode == 0, result.stderr
    assert "z: mean" in (tmp_path / "out" / "run_config.yaml").read_text()


def test_fovs_of_different_sizes_are_each_processed_at_their_size(tmp_path) -> None:
    from fovflow.io.layout import LABELS, open_stack
    from fovflow.io.synthetic import simulate_fov

    config = SimulationConfig(n_fovs=2, n_frames=4, height=96, width=96, seed=4)
    path = tmp_path / "sizes.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as writer:
        for fov, (height, width) in enumerate([(96, 96), (80, 88)]):
            phase = simulate_fov(config, fov).phase[:, :height, :width]
            writer.write(phase[:, None], metadata={"axes": "TCYX", "TimeIncrement": 600.0,
                                                   "TimeIncrementUnit": "s"})
    result = fovflow("run", path, "-o", tmp_path / "out", "--executor", "serial",
                     "--min-length", "2")
    assert result.returncode == 0, result.stderr
    labels = open_stack(tmp_path / "out", 1, LABELS)
    assert labels.shape == (4, 80, 88)


ND2_TIME_LAPSE = Path(__file__).parents[1] / "data" / "nd2" / "example-timelapse.nd2"


def test_a_fluorescence_only_nd2_time_lapse_runs_with_its_one_channel(tmp_path) -> None:
    pytest.importorskip("bioio_nd2", reason="needs the nd2 extra (bioio-nd2)")
    result = fovflow("run", ND2_TIME_LAPSE, "-o", tmp_path, "--method", "fluorescence",
                     "--executor", "serial")
    assert result.returncode == 0, result.stderr
    traces = pd.read_csv(tmp_path / "fov_000" / "traces_ch_0.csv")
    assert traces["cell"].nunique() >= 1 and traces["frame"].max() == 52
    assert traces["time"].min() == pytest.approx(4.227, abs=0.01)  # seconds, from the file
