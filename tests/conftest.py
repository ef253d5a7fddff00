"""Shared fixtures: small simulated data sets written once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from fovflow.io.synthetic import SimulationConfig, SimulationFiles, write_simulation

# CI must not fail at random: there every property test draws the same examples (a fixed
# seed); locally each run explores new ones. HYPOTHESIS_PROFILE=ci reproduces CI's draw.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "explore"))

SMALL = SimulationConfig(n_fovs=3, n_frames=8, height=96, width=128, n_fluorescence=2, seed=7)


@pytest.fixture(scope="session")
def small_config() -> SimulationConfig:
    return SMALL


@pytest.fixture(scope="session")
def small_files(tmp_path_factory: pytest.TempPathFactory) -> SimulationFiles:
    """3 FOVs x 8 frames x 3 channels of 96x128 px, written as a multi-scene OME-TIFF."""
    return write_simulation(tmp_path_factory.mktemp("sim") / "small.ome.tif", SMALL)


@pytest.fixture(scope="session")
def small_image(small_files: SimulationFiles) -> Path:
    return small_files.image
