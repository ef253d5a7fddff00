"""The corrected fluorescence stored as its background model, corrected when read.

By default (``corrected: model``) the background step stores, per frame and fluorescence
channel, the knots of the background surface it subtracts (the tile medians of
`fovflow.processing.background`: 25 numbers for a 512x512 frame) instead of the corrected
pixels: an OME-Zarr image (T, C, rows, columns) of float64 whose scale and translation lay the
knots over the frames, so an NGFF viewer shows the background at low resolution (evenly
spaced: the interior knots sit on their tiles' centres, the edge ones, whose tiles are half
tiles, are drawn at the frame's edges, a quarter tile outside their own centres). Its
``attributes.fovflow.background`` records what a reader needs to correct the raw channel:
which corrected stack each channel gives, from which raw stack, the weight and tile size.

`CorrectedFrames` reads the raw frame and subtracts the surface through its knots: the float32
that `correct_background` computes, bit for bit (the same functions), so a reader sees the
corrected fluorescence exactly, where stored pixels (``corrected: pixels``) are rounded to
`fovflow.io.layout.CORRECTED_MANTISSA_BITS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from fovflow.io.ngff import Scale, create_grid_image, read_grid_image
from fovflow.processing._stacks import Stack
from fovflow.processing.background import subtract_background

_KEY = "background"  # inside attributes.fovflow


class RawStack(Stack, Protocol):
    """The raw frames a model corrects: `Frames`, `FrameStack` or a numpy array."""

    @property
    def shape(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class BackgroundModel:
    """One channel's background model: the knots of every frame and how to subtract them."""

    raw: str  # the stack it corrects (``fl_ch_1``), see `fovflow.io.layout`
    knots: NDArray[np.float64]  # (T, rows, columns)
    weight: float
    tile_size: int

    def correct(self, raw: RawStack) -> CorrectedFrames:
        """The corrected stack of `raw`, the frames of stack `self.raw`."""
        return CorrectedFrames(raw, self)


class CorrectedFrames:
    """(T, Y, X) float32 corrected fluorescence, computed frame by frame when read:
    ``stack[t]``, ``len(stack)``, iteration and ``np.asarray(stack)`` (every frame: small
    data only)."""

    def __init__(self, raw: RawStack, model: BackgroundModel) -> None:
        if len(raw) != len(model.knots):
            raise ValueError(f"{model.raw} has {len(raw)} frames, its background model "
                             f"{len(model.knots)}")
        self.raw, self.model = raw, model
        self.shape: tuple[int, ...] = tuple(raw.shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> NDArray[np.float32]:
        if not isinstance(t, int | np.integer):
            raise TypeError("CorrectedFrames takes one integer frame index")
        return subtract_background(np.asarray(self.raw[t]), self.model.knots[t],
                                   weight=self.model.weight, tile_size=self.model.tile_size)

    def __iter__(self) -> Iterator[NDArray[np.float32]]:
        return (self[t] for t in range(len(self)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        if copy is False:
            raise ValueError("the corrected frames are computed when read: no array to share")
        out = np.empty(self.shape, np.float32)
        for t, frame in enumerate(self):
            out[t] = frame
        return out if dtype is None else out.astype(dtype)


def write_background_model(path: Path, *, knots: NDArray[np.float64],
                           corrected: Sequence[str], raw: Sequence[str],
                           channel_names: Sequence[str], scale: Scale,
                           parameters: Mapping[str, Any]) -> None:
    """The models of the channels `raw` (giving the stacks `corrected`) as an OME-Zarr image at
    `path`: `knots` is (T, C, rows, columns), `parameters` the background step's (its
    ``weight`` and ``tile_size`` are recorded)."""
    tile_size = int(parameters["tile_size"])
    create_grid_image(path, data=np.asarray(knots, np.float64), channel_names=channel_names,
                      scale=scale, spacing=tile_size // 2, attributes={_KEY: {
                          "stacks": list(corrected), "raw": list(raw),
                          "weight": float(parameters["weight"]), "tile_size": tile_size}})


def model_stacks(path: Path) -> dict[str, str]:
    """The corrected stacks the model image at `path` gives, each with its raw stack ({} if
    there is no model there)."""
    found = read_grid_image(path)
    if found is None or _KEY not in found[0]:
        return {}
    own = found[0][_KEY]
    return dict(zip(own["stacks"], own["raw"], strict=True))


def open_background_model(path: Path, stack: str) -> BackgroundModel | None:
    """The model of the corrected stack `stack` in the image at `path`, or None if it holds
    no such."""
    found = read_grid_image(path)
    if found is None or stack not in found[0].get(_KEY, {}).get("stacks", []):
        return None
    own, array = found[0][_KEY], found[1]
    channel = own["stacks"].index(stack)
    return BackgroundModel(own["raw"][channel], np.asarray(array[:, channel]),
                           float(own["weight"]), int(own["tile_size"]))
