"""Session data for the fault-injection tests: a small movie, the fault plugin, a reference run."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import SIM, config_for, write_fault_plugin

from fovflow.io.synthetic import write_simulation
from fovflow.workflow.run import run_workflow


@pytest.fixture(scope="session")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_simulation(tmp_path_factory.mktemp("reliability") / "sim.ome.tif", SIM).image


@pytest.fixture(scope="session")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fault_plugin(tmp_path_factory.mktemp("fault_plugin"))


@pytest.fixture(scope="session")
def reference_events(movie: Path, plugins: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """An uninterrupted serial run of the shared configuration, and its events."""
    output, events = tmp_path_factory.mktemp("reference") / "out", []
    report = run_workflow(config_for(movie, output, plugins, executor="serial"),
                          on_event=events.append)
    assert report.ok and report.processed == (0, 1, 2)
    return output, events


@pytest.fixture(scope="session")
def reference(reference_events: tuple[Path, list]) -> Path:
    return reference_events[0]
