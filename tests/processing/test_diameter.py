"""Specification of `estimate_diameter` on fluorescence: whole spread cells are measured by their
size, not by their protrusions' width, and touching nuclei by theirs, not by their clumps'.

The simulator has no whole-cell fluorescence kind, so the frames are drawn here: cells like the
mesenchymal stem cells of the Cell Tracking Challenge's Fluo-C2DL-MSC (a thick body, long thin
protrusions, on which `auto` once measured 24 px for cells of 77 px), and clumps of nuclei.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.measure import regionprops

from fovflow.evaluation.scores import Scores, score_labels
from fovflow.io.synthetic import SimulationConfig, simulate_fov
from fovflow.processing.segmentation import estimate_diameter, segment_cells

SIZE, SPACING = 384, 128  # a 3 x 3 grid of cells, one per 128 px square
SEEDS = (0, 1, 2)


def spread_cells(seed: int, *, n_frames: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Frames and truth labels of fluorescent whole cells that spread out: an elliptic body
    with two to four thin protrusions tapering to their tips, bright over the body and dim
    along the protrusions, with a grain of brightness and camera noise; the cells drift 1.5 px
    a frame. Protrusions hold about half of a cell's area."""
    rng = np.random.default_rng(seed)
    cells = []
    for cy in range(SPACING // 2, SIZE, SPACING):
        for cx in range(SPACING // 2, SIZE, SPACING):
            angles = rng.uniform(0, 2 * np.pi) + np.sort(rng.uniform(0, 2 * np.pi,
                                                                     rng.integers(2, 5)))
            cells.append((np.array([cx, cy]) + rng.uniform(-8, 8, 2),  # centre
                          rng.uniform([13, 8], [18, 12]), rng.uniform(0, 180),  # body
                          [(angle, rng.uniform(35, 55), rng.uniform(2.5, 5)) for angle in angles],
                          rng.uniform(250, 500)))  # brightness
    yy, xx = np.mgrid[:SIZE, :SIZE]
    frames, labels = [], []
    for t in range(n_frames):
        label = np.zeros((SIZE, SIZE), np.int32)
        brightness = np.zeros((SIZE, SIZE))
        for cell, (centre, axes, tilt, arms, peak) in enumerate(cells, start=1):
            centre = centre + 1.5 * t
            cv2.ellipse(label, tuple(np.round(centre).astype(int)), tuple(axes.astype(int)),
                        tilt, 0, 360, cell, -1)
            for angle, length, half_width in arms:
                along = np.array([np.cos(angle), np.sin(angle)])
                across = np.array([-along[1], along[0]])
                tip = centre + (axes[1] + length) * along
                arm = [centre + half_width * across, tip + across, tip - across,
                       centre - half_width * across]
                cv2.fillPoly(label, [np.round(arm).astype(np.int32)], cell)
            inside = label == cell
            fading = np.exp(-np.hypot(xx[inside] - centre[0], yy[inside] - centre[1]) / 40)
            brightness[inside] = peak * (0.15 + 0.85 * fading)
        grain = cv2.GaussianBlur(rng.normal(0, 1, (SIZE, SIZE)), (0, 0), 2.0)
        image = (100 + cv2.GaussianBlur(brightness * np.exp(0.35 * grain / grain.std()), (0, 0),
                                        1.0)
                 + rng.normal(0, 20, (SIZE, SIZE)))
        frames.append(image.clip(0).astype(np.uint16))
        labels.append(label)
    return np.stack(frames), np.stack(labels)


def clumped_nuclei(diameter: int = 24) -> np.ndarray:
    """One frame of clumps of three touching round nuclei of `diameter`, in a row or a
    triangle (alternately), one clump per 96 px square, on a dark noisy background."""
    rng = np.random.default_rng(3)
    frame = np.zeros((SIZE, SIZE), np.float64)
    for index, (cy, cx) in enumerate((y, x) for y in range(48, SIZE, 96)
                                     for x in range(48, SIZE, 96)):
        offsets = ([(-diameter, 0), (0, 0), (diameter, 0)] if index % 2 else
                   [(-diameter // 2, -diameter // 3), (diameter // 2, -diameter // 3),
                    (0, 2 * diameter // 3)])
        for dx, dy in offsets:
            cv2.circle(frame, (cx + dx, cy + dy), diameter // 2 - 1, rng.uniform(200, 400), -1)
    frame = 100 + cv2.GaussianBlur(frame, (0, 0), 1.0) + rng.normal(0, 15, frame.shape)
    return frame.clip(0).astype(np.uint16)[None]


def true_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter of the true cells."""
    return float(np.median([2 * np.sqrt(cell.area / np.pi) for frame in labels
                            for cell in regionprops(frame)]))


@pytest.mark.parametrize("seed", SEEDS)
def test_spread_cells_are_measured_by_their_size_not_their_protrusions_width(seed: int) -> None:
    frames, labels = spread_cells(seed)
    ratio = estimate_diameter(frames, method="fluorescence") / true_diameter(labels)
    # Measured 1.27, 1.22, 1.19 x the truth (the foreground takes in the protrusions' blur);
    # the granulometry alone measured the protrusions: 0.40, 0.34, 0.47 x.
    assert 0.9 <= ratio <= 1.35, f"estimate {ratio:.2f} x the truth"


def test_spread_cells_are_segmented_whole_with_the_estimated_diameter() -> None:
    total = Scores()
    for seed in SEEDS:
        frames, labels = spread_cells(seed)
        total += score_labels(labels, segment_cells(frames, method="fluorescence"))[0]
    # Measured: recall 0.99, precision 0.95. At the protrusions' width the cells were cut into
    # pieces: recall 1.00, precision 0.70.
    assert total.recall >= 0.95 and total.precision >= 0.9, (total.recall, total.precision)


def test_touching_nuclei_are_measured_as_nuclei_not_as_their_clumps() -> None:
    # The clumps' pieces measure 1.9 x a nucleus (45.5 px); their widths, 25.0 px, do not.
    estimate = estimate_diameter(clumped_nuclei(24), method="fluorescence")
    assert 0.85 * 24 <= estimate <= 1.2 * 24, f"estimate {estimate:.1f} px"


@pytest.mark.parametrize("seed", [2, 3])
def test_uneven_light_does_not_change_the_nuclei_diameter(seed: int) -> None:
    fov = simulate_fov(SimulationConfig(kind="nuclei", n_frames=4, height=384, width=384,
                                        seed=seed), 0)
    ramp = np.linspace(0.15, 1.85, fov.phase.shape[2])  # 12x brighter at one edge
    uneven = np.round(fov.phase * ramp).clip(0, 65535).astype(fov.phase.dtype)
    even_estimate = estimate_diameter(fov.phase, method="fluorescence")
    uneven_estimate = estimate_diameter(uneven, method="fluorescence")
    # Measured 23.7 -> 23.5 px and 23.0 -> 22.9 px (cells 22.6 and 21.8 px). One threshold
    # over the frame (the granulometry alone) measured 22.6 -> 20.2 and 22.2 -> 20.3 px.
    assert uneven_estimate == pytest.approx(even_estimate, rel=0.04)
    assert 0.9 <= uneven_estimate / true_diameter(fov.labels) <= 1.12
