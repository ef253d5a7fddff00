"""The `fovflow` command through its real entry point, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_assertions import assert_one_line_error
from fovflow import __version__

FOVFLOW = Path(sys.executable).with_name("fovflow")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FOVFLOW, *map(str, args)], capture_output=True, text=True, timeout=120)



def test_console_script_is_installed() -> None:
    assert FOVFLOW.exists()


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fovflow {__version__}"


def test_python_dash_m_runs_the_same_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "fovflow", "--version"],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"fovflow {__version__}"


def test_simulate_then_inspect_as_json(tmp_path: Path) -> None:
    out = tmp_path / "sim.ome.tif"
    result = run("simulate", out, "--fovs", "2", "--frames", "5", "--size", "64",
                 "--fluorescence", "2", "--interval", "5", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert out.exists() and (tmp_path / "sim.truth" / "traces.csv").exists()
    meta = json.loads(run("inspect", out, "--json").stdout)
    assert (meta["n_fovs"], meta["n_frames"], meta["n_channels"]) == (2, 5, 3)
    assert meta["channel_names"] == ["Phase", "GFP", "mCherry"]
    assert meta["times"][1] == [0.0, 300.0, 600.0, 900.0, 1200.0]
    assert meta["time_unit"] == "s"


def test_inspect_prints_a_table(small_image: Path) -> None:
    result = run("inspect", small_image)
    assert result.returncode == 0
    for fragment in ("FOVs", "3", "0: Phase", "96 x 128 px", "0.65 µm", "every 10 min"):
        assert fragment in result.stdout


def test_simulate_refuses_to_overwrite(small_image: Path) -> None:
    before = small_image.stat().st_mtime_ns
    assert_one_line_error(run("simulate", small_image, "--frames", "2", "--size", "32"),
                          "already exists", "--force")
    assert small_image.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda d: d / "absent.ome.tif", ("no such file",)),
        (lambda d: d, ("is a folder",)),
        (lambda d: _write(d / "x.png", b"png"), ("unsupported file type",)),
        (lambda d: _write(d / "x.ome.tif", b""), ("empty",)),
        (lambda d: _write(d / "x.ome.tif", b"II*\0garbage" * 50), ("cannot be read",)),
    ],
    ids=["missing", "folder", "extension", "empty", "corrupt"],
)
def test_bad_input_is_one_line_and_exit_status_2(tmp_path: Path, make, fragments) -> None:
    assert_one_line_error(run("inspect", make(tmp_path)), *fragments)


def test_bad_simulation_option_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run("simulate", tmp_path / "s.ome.tif", "--model", "linear"),
                          "model must be one of")


def test_verbose_shows_the_traceback(tmp_path: Path) -> None:
    result = run("--verbose", "inspect", tmp_path / "absent.ome.tif")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "MissingFileError" in result.stderr


def test_usage_errors_exit_2_without_traceback() -> None:
    result = run("simulate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Missing argument" in result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
