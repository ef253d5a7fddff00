"""`fovflow inspect --estimate`: per channel, a segmentation method and a cell diameter, read
from a few frames of one FOV, and the `fovflow run` command line that uses them."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from fovflow.io.microscopy import Dataset
from fovflow.processing.segmentation import NoCellsError, estimate_diameter
from fovflow.processing.suggest import (
    holds_signal,
    method_from_name,
    suggest_channels,
    suggest_method,
)

_FRAMES = 3  # frames read per channel: the first, the middle and the last


@dataclass(frozen=True)
class ChannelEstimate:
    """What one channel looks like: `method` is the name's when telling, else the pixels'."""

    channel: int
    name: str
    method: str
    decided_by: str  # "name" or "pixels"
    pixels_method: str
    diameter_px: float | None  # None when no cell could be measured
    diameter_um: float | None  # None also when the file records no pixel size
    no_diameter: str | None  # why there is no diameter: "nothing but noise", "no cells found"


@dataclass(frozen=True)
class Estimate:
    """The channels of one FOV and the run command that segments and measures them."""

    fov: int
    frames: tuple[int, ...]
    channels: tuple[ChannelEstimate, ...]
    segment_channel: int
    fl_channels: tuple[int, ...]
    command: str

    def as_dict(self) -> dict[str, Any]:
        """Plain types only (for JSON)."""
        return asdict(self)


def estimate_channels(dataset: Dataset, *, fov: int = 0) -> Estimate:
    """Suggest a method and a diameter for every channel of `dataset`, from FOV `fov`.

    Raises
    ------
    IndexOutOfRangeError
        If `fov` is not in the file.
    CorruptFileError
        If a frame cannot be read.
    """
    meta = dataset.metadata
    frames = _picks(meta.n_frames)
    channels = tuple(
        _estimate_channel(channel, name, np.stack([dataset.frame(fov, channel, t) for t in frames]),
                          meta.pixel_size_um)
        for channel, name in enumerate(meta.channel_names)
    )
    segment, measured = suggest_channels([c.method for c in channels],
                                         [c.name for c in channels])
    command = shlex.join(["fovflow", "run", str(meta.path), "-o", "OUT",
                          "--segment-channel", str(segment),
                          "--method", channels[segment].method,
                          "--fl", ",".join(map(str, measured))])
    return Estimate(fov=fov, frames=frames, channels=channels, segment_channel=segment,
                    fl_channels=measured, command=command)


def print_estimate(estimate: Estimate, console: Console) -> None:
    """A table of the channels, then the suggested command line on a line of its own."""
    frames = ", ".join(map(str, estimate.frames))
    table = Table(title=f"estimate from FOV {estimate.fov}, frames {frames}",
                  title_justify="left")
    for column in ("channel", "name", "method", "decided by", "cell diameter"):
        table.add_column(column)
    for c in estimate.channels:
        decided = c.decided_by
        if c.pixels_method != c.method:
            decided += f" (pixels look {c.pixels_method})"
        table.add_row(str(c.channel), c.name, c.method, decided, _describe_diameter(c))
    console.print(table)
    if estimate.channels[estimate.segment_channel].method == "phase":
        console.print(_PHASE_KINDS, highlight=False)
    console.print("suggested command:")
    console.print(estimate.command, markup=False, highlight=False, soft_wrap=True)


# The pixels tell phase contrast from fluorescence, not which cells: the methods made for two
# kinds find far more of them (benchmarks/RESULTS.md, "Where segmentation stands").
_PHASE_KINDS = ("phase contrast: for rod-shaped bacteria use --method bacteria (its diameter "
                "is the rods' width); for spread mammalian cells --method learned (slower, "
                "finds whole cells with their flat rims)")


def _estimate_channel(channel: int, name: str, stack: np.ndarray,
                      pixel_size_um: float | None) -> ChannelEstimate:
    # Frames of noise alone (a reporter not yet expressed) neither vote nor give a size.
    shown = stack[[holds_signal(frame) for frame in stack]]
    # One vote per frame; a tie goes to the last frame (a reporter brightens over time).
    votes = [suggest_method(frame) for frame in shown] or ["fluorescence"]
    counts = Counter(votes)
    pixels = max(counts, key=lambda method: (counts[method], method == votes[-1]))
    named = method_from_name(name)
    method = named or pixels
    diameter, why = None, "nothing but noise"
    if len(shown):
        try:
            diameter = estimate_diameter(shown, method=method)
        except NoCellsError:
            why = "no cells found"
    microns = diameter * pixel_size_um if diameter is not None and pixel_size_um else None
    return ChannelEstimate(channel=channel, name=name, method=method,
                           decided_by="name" if named else "pixels", pixels_method=pixels,
                           diameter_px=diameter, diameter_um=microns,
                           no_diameter=None if diameter is not None else why)


def _picks(n_frames: int) -> tuple[int, ...]:
    """Up to `_FRAMES` frame indices spread evenly from the first to the last."""
    count = min(n_frames, _FRAMES)
    return tuple(sorted({round(i * (n_frames - 1) / max(1, count - 1)) for i in range(count)}))


def _describe_diameter(c: ChannelEstimate) -> str:
    if c.diameter_px is None:
        return str(c.no_diameter)
    if c.diameter_um is None:
        return f"{c.diameter_px:.0f} px"
    return f"{c.diameter_px:.0f} px ({c.diameter_um:.1f} µm)"
