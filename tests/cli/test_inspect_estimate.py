"""`fovflow inspect FILE --estimate`: a method and a cell diameter per channel, and the command."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cli_assertions import assert_one_line_error, fovflow
from fovflow.io.synthetic import SimulationConfig, simulate_fov, write_simulation

# Frames 200 minutes apart: the reporters are dark in frame 0 and bright from frame 1 on.
NAMED = SimulationConfig(n_fovs=2, n_frames=4, height=256, width=256, n_fluorescence=2,
                         frame_interval_s=20 * 600.0, seed=3)


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Channels Phase, GFP, mCherry; pixel size 0.65 µm."""
    return write_simulation(tmp_path_factory.mktemp("named") / "named.ome.tif", NAMED).image


@pytest.fixture(scope="module")
def nuclei(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Channels Nuclei, GFP: no phase contrast."""
    config = SimulationConfig(kind="nuclei", n_fovs=1, n_frames=3, height=192, width=192,
                              frame_interval_s=20 * 600.0, seed=1)
    return write_simulation(tmp_path_factory.mktemp("nuclei") / "nuclei.ome.tif", config).image


@pytest.fixture(scope="module")
def unnamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Phase contrast and a fluorescence channel under names that say nothing, no pixel size;
    the fluorescence channel holds only noise in frame 0."""
    fov = simulate_fov(NAMED, 0)
    data = np.stack([fov.phase, fov.fluorescence[0]], axis=1)  # TCYX
    path = tmp_path_factory.mktemp("unnamed") / "unnamed.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(data, metadata={"axes": "TCYX", "Channel": {"Name": ["C0", "C1"]}})
    return path


def _estimate(*args: object) -> dict:
    result = fovflow("inspect", *args, "--estimate", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_names_decide_and_the_command_segments_phase_and_measures_the_reporters(named) -> None:
    data = _estimate(named)
    assert data["n_channels"] == 3 and data["channel_names"] == ["Phase", "GFP", "mCherry"]
    estimate = data["estimate"]
    assert estimate["fov"] == 0 and estimate["frames"] == [0, 2, 3]
    channels = estimate["channels"]
    assert [c["method"] for c in channels] == ["phase", "fluorescence", "fluorescence"]
    assert all(c["decided_by"] == "name" and c["pixels_method"] == c["method"] for c in channels)
    assert estimate["command"] == shlex.join(
        ["fovflow", "run", str(named), "-o", "OUT", "--segment-channel", "0", "--method",
         "phase", "--fl", "1,2"])


def test_the_diameter_is_in_pixels_and_in_microns_near_the_simulated_size(named) -> None:
    phase = _estimate(named)["estimate"]["channels"][0]
    true_diameter = 2 * NAMED.effective_cell_radius_px
    assert 0.6 * true_diameter < phase["diameter_px"] < 1.4 * true_diameter
    assert phase["diameter_um"] == pytest.approx(phase["diameter_px"] * 0.65)


def test_pixels_decide_when_the_names_say_nothing(unnamed) -> None:
    estimate = _estimate(unnamed)["estimate"]
    assert [(c["method"], c["decided_by"]) for c in estimate["channels"]] == [
        ("phase", "pixels"), ("fluorescence", "pixels")]
    assert all(c["diameter_px"] > 0 and c["diameter_um"] is None for c in estimate["channels"])
    assert (estimate["segment_channel"], estimate["fl_channels"]) == (0, [1])


def test_without_phase_contrast_the_nuclear_marker_is_segmented(nuclei) -> None:
    estimate = _estimate(nuclei)["estimate"]
    assert estimate["command"].endswith("--segment-channel 0 --method fluorescence --fl 1")


def test_a_name_overrules_the_pixels_and_the_table_says_so(tmp_path: Path) -> None:
    path = tmp_path / "mislabelled.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(simulate_fov(NAMED, 0).phase[:, None],
                     metadata={"axes": "TCYX", "Channel": {"Name": ["GFP"]}})
    result = fovflow("inspect", path, "--estimate")
    assert result.exit_code == 0, result.stderr
    assert "fluorescence" in result.stdout and "name (pixels look phase)" in result.stdout
    assert "--method learned" not in result.stdout  # the phase-contrast kinds' hint


def test_a_reporter_dark_in_every_frame_read_has_no_diameter(tmp_path: Path) -> None:
    path = tmp_path / "dark.ome.tif"
    fov = simulate_fov(SimulationConfig(n_fovs=1, n_frames=2, height=128, width=128), 0)
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(np.stack([fov.phase, fov.fluorescence[0]], axis=1),
                     metadata={"axes": "TCYX", "Channel": {"Name": ["Phase", "GFP"]}})
    reporter = _estimate(path)["estimate"]["channels"][1]
    assert reporter["diameter_px"] is None and reporter["no_diameter"] == "nothing but noise"


def test_the_table_shows_each_channel_and_the_command_on_a_line_of_its_own(named) -> None:
    result = fovflow("inspect", named, "--estimate", "--fov", "1")
    assert result.exit_code == 0, result.stderr
    for fragment in ("estimate from FOV 1, frames 0, 2, 3", "Phase", "GFP", "mCherry", "name",
                     " µm)", "--method bacteria", "--method learned", "suggested command:"):
        assert fragment in result.stdout
    command = result.stdout.strip().splitlines()[-1]
    assert command.startswith("fovflow run ") and command.endswith("--fl 1,2")


def test_the_suggested_command_runs(named, tmp_path: Path) -> None:
    command = shlex.split(_estimate(named)["estimate"]["command"])
    out = tmp_path / "run"
    args = [str(out) if arg == "OUT" else arg for arg in command[1:]]
    result = fovflow(*args, "--fovs", "0", "--executor", "serial", "--min-length", "2")
    assert result.exit_code == 0, result.stderr
    assert (out / "fov_000" / "traces_ch_2.csv").exists()


@pytest.mark.parametrize("fov", ["2", "-1"])
def test_a_fov_outside_the_file_is_a_one_line_error(named, fov: str) -> None:
    assert_one_line_error(fovflow("inspect", named, "--estimate", "--fov", fov),
                          f"FOV {fov} is out of range", "2 FOVs")


def test_fov_without_estimate_is_a_one_line_error(named) -> None:
    assert_one_line_error(fovflow("inspect", named, "--fov", "1"), "--fov", "--estimate")


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    assert_one_line_error(fovflow("inspect", tmp_path / "absent.ome.tif", "--estimate"),
                          "no such file")
