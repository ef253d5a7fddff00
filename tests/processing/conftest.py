"""Simulated data with ground truth shared by the processing tests."""

from __future__ import annotations

import numpy as np
import pytest

from fovflow.io.synthetic import SimulatedFov, SimulationConfig, simulate_fov
from fovflow.processing.segmentation import segment_cells


@pytest.fixture(scope="session")
def simulated() -> SimulatedFov:
    """40 frames of a 512x512 FOV (about 20 cells, some appearing late) with ground truth."""
    return simulate_fov(SimulationConfig(n_frames=40, height=512, width=512, seed=0), fov=0)


@pytest.fixture(scope="session")
def simulated_masks(simulated: SimulatedFov) -> np.ndarray:
    """The first version's phase-contrast foreground (mode threshold, no splitting)."""
    return segment_cells(simulated.phase, method="phase", diameter=60, threshold="mode",
                         split="none") > 0
