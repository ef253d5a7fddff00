"""Frame-by-frame access to image stacks, validated once at the boundary of each step.

A *stack* is anything with ``len()`` whose ``stack[t]`` returns a 2-D array: a numpy array, a
``np.memmap``, a zarr array or a lazy reader. Steps read one frame at a time through
`iter_frames`, so a stack never has to fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import DTypeLike, NDArray

from fovflow.progress import Progress


class Stack(Protocol):
    """A sequence of 2-D frames (T, Y, X) that may be read lazily."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


class OutputStack(Stack, Protocol):
    """A writable stack with a shape, such as a numpy array, ``np.memmap`` or zarr array."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    def __setitem__(self, index: int, value: NDArray[Any], /) -> None: ...


def iter_frames(
    *stacks: tuple[str, Stack, str]
) -> Iterator[tuple[int, tuple[NDArray[Any], ...]]]:
    """Yield ``(t, frames)`` over stacks of equal length, checking every frame once.

    Each stack comes as ``(name, stack, kinds)`` where `kinds` lists the allowed numpy dtype
    kinds (e.g. ``"uif"``). Every frame must be 2-D and have the shape of the first frame.
    """
    lengths = {name: len(stack) for name, stack, _ in stacks}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"stacks must have the same number of frames, got {lengths}")
    if not next(iter(lengths.values())):
        raise ValueError(f"{stacks[0][0]} has no frames")
    shape: tuple[int, ...] | None = None
    for t in range(len(stacks[0][1])):
        frames = []
        for name, stack, kinds in stacks:
            frame = np.asarray(stack[t])
            if frame.ndim != 2:
                raise ValueError(f"{name}[{t}] must be a 2-D frame, got shape {frame.shape}")
            if frame.dtype.kind not in kinds:
                raise ValueError(f"{name}[{t}] has dtype {frame.dtype}; {_describe(kinds)}")
            shape = shape or frame.shape
            if frame.shape != shape:
                raise ValueError(f"{name}[{t}] has shape {frame.shape}, expected {shape}")
            frames.append(frame)
        yield t, tuple(frames)


def map_frames(
    function: Callable[..., NDArray[Any]],
    *stacks: tuple[str, Stack, str],
    out: OutputStack | None,
    dtype: DTypeLike,
    progress: Progress | None,
) -> OutputStack:
    """``result[t] = function(*frames_t)`` for every frame of `stacks` (as `iter_frames` reads
    and checks them), into `out` or a new array of `dtype`; ``progress(t + 1, T)`` after each.

    The loop of a step that turns frames into frames one at a time. `out` is checked against
    the frames' shape when the first one is read; `progress` may raise
    `fovflow.errors.Cancelled`, which propagates.
    """
    n_frames = len(stacks[0][1])
    result: OutputStack | None = None
    for t, frames in iter_frames(*stacks):
        if result is None:
            result = output_stack(out, n_frames, frames[0].shape, dtype)
        result[t] = function(*frames)
        if progress is not None:
            progress(t + 1, n_frames)
    assert result is not None  # iter_frames raises on an empty stack
    return result


def output_stack(
    out: OutputStack | None, n_frames: int, shape: tuple[int, ...], dtype: DTypeLike
) -> OutputStack:
    """`out` checked against the expected (T, Y, X) shape, or a new array of `dtype`."""
    if out is None:
        return np.empty((n_frames, *shape), dtype)
    if tuple(out.shape) != (n_frames, *shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {(n_frames, *shape)}")
    return out


def regular_sample(frame: NDArray[Any], count: int = 65536) -> NDArray[Any]:
    """Every k-th pixel of every k-th row, about `count` of them: enough for a histogram
    statistic (a threshold) of a frame, at a fraction of its cost."""
    step = max(1, int((frame.size / count) ** 0.5))
    return frame[::step, ::step]


def log_frame(frame: NDArray[Any]) -> NDArray[np.float32]:
    """``log(1 + max(frame, 0))`` as float32: phase contrast's multiplicative contrast made
    additive, the same for any illumination level."""
    return cv2.log(cv2.add(cv2.max(np.ascontiguousarray(frame, np.float32), 0.0), 1.0))


def check_finite(frame: NDArray[Any], name: str) -> None:
    """Raise if a floating-point frame holds NaN or infinity (integer frames cannot)."""
    if frame.dtype.kind == "f" and not np.isfinite(frame).all():
        raise ValueError(f"{name} contains NaN or infinite values; replace them first")


def _describe(kinds: str) -> str:
    names = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating point"}
    return "expected " + " or ".join(names[kind] for kind in kinds)
