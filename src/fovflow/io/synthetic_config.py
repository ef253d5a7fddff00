"""What a simulation renders: its configuration, the kinds of cells and one rendered frame.

`fovflow.io.synthetic` re-exports everything here; import it from there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from fovflow import kinetics
from fovflow.errors import ConfigError

PHASE_CHANNEL_NAME = "Phase"
NUCLEI_CHANNEL_NAME = "Nuclei"
FLUORESCENCE_CHANNEL_NAMES = ("GFP", "mCherry", "CFP", "YFP")


@dataclass(frozen=True)
class CellKind:
    """The default size and density of one kind of simulated cells, and its channel 0.

    Attributes
    ----------
    name
        The value of `SimulationConfig.kind`.
    cell_radius_px
        Default `SimulationConfig.cell_radius_px`; for rods it is half their width.
    cells_per_megapixel
        Default `SimulationConfig.cells_per_megapixel`, at the default radius.
    crowding_follows_radius
        Whether the default density scales with ``(default radius / radius)²``, so that cells
        of another size cover the same share of the frame.
    first_channel
        Name of channel 0: phase contrast, or the nuclear marker.
    """

    name: str
    cell_radius_px: float
    cells_per_megapixel: float
    crowding_follows_radius: bool = True
    first_channel: str = PHASE_CHANNEL_NAME


CELL_KINDS: dict[str, CellKind] = {
    kind.name: kind
    for kind in (
        # well separated textured cells in phase contrast: the simulator's original scene
        CellKind("isolated", 35.0, 60.0, crowding_follows_radius=False),
        # touching mammalian-like cells of varied, irregular shape in phase contrast
        CellKind("crowded", 30.0, 800.0),
        # rods packed side by side in microcolonies, phase contrast
        CellKind("bacteria", 5.0, 3500.0),
        # fluorescent nuclei of widely spread brightness; no phase-contrast channel
        CellKind("nuclei", 12.0, 650.0, first_channel=NUCLEI_CHANNEL_NAME),
        # small round cells, bright with a dark rim in phase contrast
        CellKind("small", 5.0, 300.0),
    )
}


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Defaults give a small, quick data set like the demo's.

    `kind` is one of `CELL_KINDS`. `cell_radius_px` and `cells_per_megapixel` left as None take
    the defaults of the kind; `effective_cell_radius_px` and `effective_cells_per_megapixel` say
    what is used (and ``simulation.yaml`` records them). With `cell_cycle_h`, cells divide
    about once per cell-cycle time (not for ``isolated``); with `stage_jump_frame`, every cell
    moves by a cell's diameter in one direction from that frame on.
    """

    n_fovs: int = 4
    n_frames: int = 60
    height: int = 512
    width: int = 512
    n_fluorescence: int = 1
    model: str = "maturation"
    frame_interval_s: float = 600.0
    pixel_size_um: float = 0.65
    cell_radius_px: float | None = None
    cells_per_megapixel: float | None = None
    late_fraction: float = 0.15
    seed: int = 0
    kind: str = "isolated"
    cell_cycle_h: float | None = None  # None: cells never divide
    stage_jump_frame: int | None = None  # the stage jumps by a cell's diameter before it

    def __post_init__(self) -> None:
        if self.kind not in CELL_KINDS:
            raise ConfigError(f"kind must be one of {', '.join(CELL_KINDS)}, not {self.kind!r}")
        if not 4 <= self.effective_cell_radius_px <= 500:
            raise ConfigError("cell_radius_px must be between 4 and 500")
        checks = [
            (self.n_fovs >= 1, "n_fovs must be at least 1"),
            (self.n_frames >= 1, "n_frames must be at least 1"),
            (self.height >= 32 and self.width >= 32, "height and width must be at least 32 pixels"),
            (self.height * self.width <= 8192**2, "frames above 8192x8192 are not supported"),
            (1 <= self.n_fluorescence <= len(FLUORESCENCE_CHANNEL_NAMES),
             f"n_fluorescence must be between 1 and {len(FLUORESCENCE_CHANNEL_NAMES)}"),
            (self.model in kinetics.MODELS,
             f"model must be one of {', '.join(kinetics.MODELS)}, not {self.model!r}"),
            (self.frame_interval_s > 0, "frame_interval_s must be positive"),
            (self.effective_cells_per_megapixel >= 0, "cells_per_megapixel must not be negative"),
            (0 <= self.late_fraction <= 1, "late_fraction must be between 0 and 1"),
            (self.cell_cycle_h is None or self.cell_cycle_h > 0,
             "cell_cycle_h (--divisions) must be positive hours"),
            (self.cell_cycle_h is None or self.kind != "isolated",
             "divisions are simulated for the kinds crowded, bacteria, nuclei and small, not "
             "isolated; choose one with --kind"),
            (self.stage_jump_frame is None or 1 <= self.stage_jump_frame < self.n_frames,
             "stage_jump_frame (--stage-jump) must be a frame after the first"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def effective_cell_radius_px(self) -> float:
        """`cell_radius_px`, or the default of the kind when it is None."""
        if self.cell_radius_px is None:
            return CELL_KINDS[self.kind].cell_radius_px
        return float(self.cell_radius_px)

    @property
    def effective_cells_per_megapixel(self) -> float:
        """`cells_per_megapixel`, or the default of the kind (at this radius) when it is None."""
        if self.cells_per_megapixel is not None:
            return float(self.cells_per_megapixel)
        kind = CELL_KINDS[self.kind]
        if not kind.crowding_follows_radius:
            return kind.cells_per_megapixel
        return kind.cells_per_megapixel * (kind.cell_radius_px / self.effective_cell_radius_px) ** 2

    @property
    def channel_names(self) -> tuple[str, ...]:
        return (CELL_KINDS[self.kind].first_channel,
                *FLUORESCENCE_CHANNEL_NAMES[: self.n_fluorescence])

    @property
    def times_s(self) -> NDArray[np.float64]:
        return np.arange(self.n_frames) * self.frame_interval_s

    def as_record(self) -> dict[str, object]:
        """Every field, with the sizes the kind's defaults resolved (for ``simulation.yaml``)."""
        record = asdict(self)
        record["cell_radius_px"] = self.effective_cell_radius_px
        record["cells_per_megapixel"] = self.effective_cells_per_megapixel
        for name in ("cell_cycle_h", "stage_jump_frame"):  # recorded only when used, so
            if record[name] is None:  # simulation.yaml stays as it was without them
                del record[name]
        return record


@dataclass(frozen=True)
class SimulatedFrame:
    """One rendered time point of one FOV.

    `phase` is channel 0: phase contrast, or the nuclear marker for kind ``nuclei``.
    """

    phase: NDArray[np.uint16]
    fluorescence: tuple[NDArray[np.uint16], ...]
    labels: NDArray[np.uint16]
    truth: list[dict[str, float | int | str]]
