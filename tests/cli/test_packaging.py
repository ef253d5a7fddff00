"""The package builds as a wheel that installs and runs on its own (issue 20, item 1).

The wheel is built from a copy of the clone's packaging files (``pyproject.toml``, README,
LICENSE, ``src/``) the way a user or an index upload builds it (``pip wheel``, isolated build),
then installed without dependencies into a new virtual environment whose only other path is
this environment's site-packages (for numpy and the rest, not for fovflow: that editable
install's ``.pth`` files are not read from there). So ``fovflow`` runs from the wheel's files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGING_FILES = ("pyproject.toml", "README.md", "LICENSE")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in PACKAGING_FILES:
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "--wheel-dir", dist, source], capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, built.stderr
    (found,) = dist.glob("fovflow-*-py3-none-any.whl")
    return found


def test_the_wheel_holds_every_module_and_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in names
                        if n.endswith(".dist-info/METADATA"))
    modules = {path.relative_to(ROOT / "src").as_posix()
               for path in (ROOT / "src" / "fovflow").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert not any(name.startswith("tests/") for name in names)
    assert "fovflow = fovflow.cli.main:app" in entry_points
    for field in ("Name: fovflow", "License-Expression: BSD-3-Clause", "Requires-Python: >=3.11",
                  "Description-Content-Type: text/markdown", "Provides-Extra: gui"):
        assert field in metadata
    assert any(name.endswith("licenses/LICENSE") for name in names)


@pytest.mark.slow
def test_the_wheel_installs_in_a_new_environment_and_fovflow_runs(wheel: Path,
                                                                   tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", environment], check=True,
                   timeout=120)
    python = environment / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    Path(site_packages, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install",
                                "--no-deps", "--no-index", "--quiet", wheel],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    where = subprocess.run([python, "-c", "import fovflow; print(fovflow.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site_packages)
    fovflow = environment / "bin" / "fovflow"
    result = subprocess.run([fovflow, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "simulate" in result.stdout and "run" in result.stdout
    movie = tmp_path / "sim.ome.tif"
    simulated = subprocess.run([fovflow, "simulate", movie, "--n-fovs", "1", "--frames", "2",
                                "--size", "64"], capture_output=True, text=True, timeout=120)
    assert simulated.returncode == 0, simulated.stderr
    version = subprocess.run([fovflow, "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.split() == ["fovflow", wheel.name.split("-")[1]]
