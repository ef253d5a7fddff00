"""Every step reports progress once per frame and stops at once when progress raises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from processing_reference import LazyStack

from fovflow.errors import Cancelled
from fovflow.processing.background import correct_background
from fovflow.processing.extraction import extract_features
from fovflow.processing.segmentation import segment_cells
from fovflow.processing.tracking import track_cells

N_FRAMES = 6
_rng = np.random.default_rng(0)
_IMAGES = _rng.integers(100, 2000, (N_FRAMES, 48, 48)).astype(np.uint16)
_MASKS = np.zeros((N_FRAMES, 48, 48), bool)
_MASKS[:, 10:30, 10:30] = True

STEPS: dict[str, Callable[..., object]] = {
    "segment": lambda stack, **kw: segment_cells(stack, diameter=10, **kw),
    "correct": lambda stack, **kw: correct_background(stack, LazyStack(_MASKS), **kw),
    "track": lambda stack, **kw: track_cells(stack, **kw),
    "extract": lambda stack, **kw: extract_features(stack, LazyStack(_IMAGES), **kw),
}
INPUTS = {"segment": _IMAGES, "correct": _IMAGES, "track": _MASKS,
          "extract": _MASKS.astype(np.uint16)}


@pytest.mark.parametrize("step", STEPS)
def test_progress_is_reported_once_per_frame(step: str) -> None:
    calls: list[tuple[int, int]] = []
    STEPS[step](LazyStack(INPUTS[step]), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(t, N_FRAMES) for t in range(1, N_FRAMES + 1)]


@pytest.mark.parametrize("step", STEPS)
def test_cancelled_raised_by_progress_stops_the_step_at_once(step: str) -> None:
    stack = LazyStack(INPUTS[step])
    calls: list[int] = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        STEPS[step](stack, progress=progress)
    assert calls == [1, 2]
    assert stack.read == [0, 1]
