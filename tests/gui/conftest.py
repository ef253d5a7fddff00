"""GUI test fixtures: an offscreen Qt platform, simulated movies, a finished run, a window."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

from pathlib import Path

import pytest

from fovflow.io.synthetic import SimulationConfig, write_simulation
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow

SIM = SimulationConfig(n_fovs=4, n_frames=12, height=128, width=160, seed=11)
# Long enough that a run is still going when a test cancels it or closes the window.
LONG_SIM = SimulationConfig(n_fovs=4, n_frames=240, height=192, width=192, seed=12)


@pytest.fixture(scope="session")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_simulation(tmp_path_factory.mktemp("gui_sim") / "sim.ome.tif", SIM).image


@pytest.fixture(scope="session")
def long_movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_simulation(tmp_path_factory.mktemp("gui_long") / "long.ome.tif", LONG_SIM).image


@pytest.fixture(scope="session")
def finished_run(movie: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder processed by the engine (serially), shared read-only by tests."""
    output = tmp_path_factory.mktemp("gui_run") / "out"
    report = run_workflow(WorkflowConfig(input=movie, output=output, executor="serial",
                                         n_workers=1, extraction={"min_length": 5}))
    assert report.ok
    return output


@pytest.fixture
def settings_folder(tmp_path: Path) -> Path:
    """Where this test's window keeps its settings (never the user's own)."""
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def window(qtbot, monkeypatch, settings_folder):
    """The main window, shown; after the test, every worker thread must have ended. Closing it
    with unsaved quality marks discards them (pytest-qt closes it before this fixture ends, and
    a question box would wait for ever); a test replaces the answer to test the question."""
    from PySide6.QtWidgets import QMessageBox

    from fovflow.gui.app import MainWindow
    from fovflow.gui.workers import running_handles

    monkeypatch.setattr(QMessageBox, "question", lambda *_: QMessageBox.StandardButton.Discard)

    main = MainWindow()
    qtbot.addWidget(main)
    main.resize(1400, 900)
    main.show()
    yield main
    qtbot.waitUntil(lambda: not running_handles(), timeout=10_000)
    main.close()
    del main
    gc.collect()  # here, in the GUI thread: no Qt object is left for a worker thread's GC
