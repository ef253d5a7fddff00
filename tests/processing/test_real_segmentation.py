"""Real phase-contrast frames with instance truth (tests/data/segmentation): the defaults'
quality, held at what benchmarks/RESULTS.md measured, so a change that loses real cells fails.

The figures are far from the issue's 0.85 for spread mammalian cells: these tests guard what
the classical method reaches, they do not claim it is enough.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fovflow.evaluation.scores import score_labels
from fovflow.processing.segmentation import estimate_diameter, segment_cells

DATA = Path(__file__).parent.parent / "data" / "segmentation"


def _recording(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATA / f"{name}.npz") as data:
        images = data["images"] if "images" in data else data["image"][np.newaxis]
        labels = data["labels"] if data["labels"].ndim == 3 else data["labels"][np.newaxis]
    return images, labels


def _median_cell_diameter(labels: np.ndarray) -> float:
    """Median equivalent-circle diameter of the true cells, frame by frame."""
    areas = np.concatenate([np.bincount(frame.ravel())[1:] for frame in labels])
    return float(np.median(np.sqrt(4 * areas[areas > 0] / np.pi)))


# (fixture, least recall, least precision). Measured with the defaults: Usiigaci's corner
# 0.593 / 0.615 (27 cells), C2C12 0.456 / 0.461 (103 cells in 10 frames), the Omnipose colony
# 0.818 / 0.828 (159 rods); the bounds leave about one cell (C2C12, colony: four) of room.
@pytest.mark.parametrize(("name", "recall", "precision"), [
    ("usiigaci_set1_corner", 0.55, 0.57),
    ("c2c12_laptrack", 0.42, 0.42),
    ("omnipose_ec_5I_t141xy5c1", 0.79, 0.80),
])
def test_real_phase_contrast_cells_are_found_as_well_as_measured(
    name: str, recall: float, precision: float
) -> None:
    images, truth = _recording(name)
    scores, _ = score_labels(truth, segment_cells(images, method="phase", diameter="auto"))
    assert scores.recall >= recall and scores.precision >= precision


@pytest.mark.parametrize("name", ["usiigaci_set1_corner", "omnipose_ec_5I_t141xy5c1"])
def test_the_estimated_diameter_is_near_the_real_cells(name: str) -> None:
    # Measured: 74.8 px for cells of 66.7 px (Usiigaci), 14.8 px for rods of 15.7 px (the
    # colony, through the clump rule: without it the colony's width, 186 px).
    images, truth = _recording(name)
    ratio = estimate_diameter(images, method="phase") / _median_cell_diameter(truth)
    assert 0.8 <= ratio <= 1.25
