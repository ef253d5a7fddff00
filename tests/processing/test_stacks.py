"""`map_frames`: the frame-by-frame loop of the steps that turn frames into frames."""

from __future__ import annotations

import numpy as np
import pytest
from processing_reference import LazyStack

from fovflow.processing._stacks import map_frames


def test_map_frames_writes_each_frame_of_the_function_into_out_and_reports_progress() -> None:
    first = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    second = np.full((3, 4, 5), 2, np.uint8)
    out = np.zeros((3, 4, 5), np.float32)
    calls: list[tuple[int, int]] = []
    stack = LazyStack(first)
    result = map_frames(lambda a, b: a.astype(np.float32) * b, ("first", stack, "u"),
                        ("second", second, "u"), out=out, dtype=np.float64,
                        progress=lambda done, total: calls.append((done, total)))
    assert result is out  # `out` wins over `dtype`
    np.testing.assert_array_equal(out, first * 2.0)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert stack.read == [0, 1, 2]  # one frame at a time


def test_map_frames_makes_a_new_array_of_dtype_and_checks_out() -> None:
    frames = np.ones((2, 3, 3), np.uint8)
    made = map_frames(lambda frame: frame + 1, ("frames", frames, "u"), out=None,
                      dtype=np.int32, progress=None)
    assert made.dtype == np.int32 and made.shape == (2, 3, 3) and (made == 2).all()
    with pytest.raises(ValueError, match=r"out has shape \(2, 3, 4\), expected \(2, 3, 3\)"):
        map_frames(lambda frame: frame, ("frames", frames, "u"),
                   out=np.zeros((2, 3, 4), np.uint8), dtype=np.uint8, progress=None)
