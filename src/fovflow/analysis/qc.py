"""Quality-control numbers of a run, computed from arrays and tables (no I/O).

Per FOV: cells per frame, track lengths, the good tracks and their share of the cell-frames,
divisions (when the traces have lineage) and flagged frames: empty, a cell count or an image
statistic (mean intensity, focus as the variance of the Laplacian) far off the FOV's own trend,
or most cells losing their track at once (a stage jump tracking could not undo). "Off the
trend" is a robust z-score of the value against a running median of its neighbours, scaled by
the median absolute deviation.
`io.run_contents` reads what these functions take; `analysis.qc_page` draws and writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

Z_LIMIT = 5.0  # robust z-score beyond which a frame is off its FOV's trend
TREND_WINDOW = 7  # frames in the running median (odd)
LOST_LIMIT = 0.5  # fraction of the previous frame's cells whose track ends at once
JUMP_PX = 10.0  # a stage shift between two frames this large is reported, even if undone
MIN_R_SQUARED = 0.9  # a fit passes from this R² on
# Good tracks holding less than this share of the cell-frames are a problem of the FOV. A share
# of the data, not of the tracks: a few frames' fragments of one dim cell are many short tracks,
# and must not hide that every other cell was followed through the movie.
MIN_GOOD_FRACTION = 0.5


@dataclass(frozen=True)
class FrameStatistics:
    """Per frame of a phase-contrast stack: mean intensity and focus (variance of the Laplacian)."""

    mean: NDArray[np.float64]
    focus: NDArray[np.float64]


@dataclass(frozen=True)
class FrameFlag:
    """A frame that looks wrong, and why (one short reason per finding)."""

    frame: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class FovQc:
    """Everything the report says about one FOV."""

    fov: int
    status: str
    error: str | None
    cells_per_frame: NDArray[np.int64]
    track_lengths: NDArray[np.int64]
    good_tracks: int
    good_fraction: float  # of the cell-frames (rows of the traces), in good tracks
    divisions: int | None  # None: the traces have no lineage
    flags: tuple[FrameFlag, ...]
    step_seconds: Mapping[str, float] = field(default_factory=dict)
    log_problems: tuple[str, ...] = ()

    @property
    def problems(self) -> list[str]:
        """What a reader should look at, most serious first; empty when the FOV looks fine."""
        found = []
        if self.status != "done":
            found.append(f"status {self.status}" + (f": {self.error}" if self.error else ""))
        if self.cells_per_frame.size and not self.cells_per_frame.any():
            found.append("no cells")
        elif self.track_lengths.size and self.good_fraction < MIN_GOOD_FRACTION:
            found.append(f"good tracks hold only {self.good_fraction:.0%} of the cell-frames")
        if self.flags:
            found.append(f"{len(self.flags)} flagged frame(s)")
        found.extend(self.log_problems)
        return found


@dataclass(frozen=True)
class FitQc:
    """One fitted table: how many fits converged and how many pass `MIN_R_SQUARED`."""

    name: str
    n_cells: int
    success_fraction: float
    r_squared_pass_fraction: float
    median_r_squared: float


def measure_frames(frames: Sequence[NDArray[np.generic]]) -> FrameStatistics:
    """Mean intensity and focus (variance of the Laplacian) of every frame.

    Notes
    -----
    O(pixels) per frame (one 3x3 Laplacian with OpenCV).
    """
    means, focus = [], []
    for frame in frames:
        image = np.asarray(frame, np.float32)
        means.append(float(image.mean()))
        focus.append(float(cv2.Laplacian(image, cv2.CV_32F).var()))
    return FrameStatistics(np.array(means), np.array(focus))


def robust_z(values: NDArray[np.floating] | NDArray[np.integer], *, min_scale: float,
             window: int = TREND_WINDOW) -> NDArray[np.float64]:
    """How far each value lies from the running median of its neighbours, in robust sigmas.

    The scale is 1.4826 x the median absolute deviation from the running median (sigma for
    normal noise), at least `min_scale`: a flat series (a constant cell count) would otherwise
    make any change infinitely far off.
    """
    series = np.asarray(values, np.float64)
    if series.size == 0:
        return series
    trend = ndimage.median_filter(series, size=min(window, series.size), mode="nearest")
    residual = series - trend
    scale = max(1.4826 * float(np.median(np.abs(residual))), min_scale)
    return residual / scale


def cells_per_frame(traces: pd.DataFrame, n_frames: int) -> NDArray[np.int64]:
    """Tracked cells in each of `n_frames` frames (a traces table: one row per cell and frame)."""
    return np.bincount(traces["frame"].to_numpy(np.int64), minlength=n_frames)[:n_frames]


def track_lengths(traces: pd.DataFrame) -> NDArray[np.int64]:
    """Frames each tracked cell is present in."""
    return traces.groupby("cell").size().to_numpy(np.int64)


def good_tracks(traces: pd.DataFrame) -> int:
    """Tracked cells marked good."""
    return int(_good_cells(traces).sum())


def good_fraction(traces: pd.DataFrame) -> float:
    """Fraction of the cell-frames (rows) that belong to good tracks (0 without cells)."""
    good = _good_cells(traces)
    return float(traces["cell"].isin(good.index[good]).mean()) if len(traces) else 0.0


def _good_cells(traces: pd.DataFrame) -> pd.Series:
    """Per cell, whether it is good: a cell is good if any of its rows says so (a table
    edited by hand may mark rows of one cell differently)."""
    return traces.groupby("cell")["good"].any()


def count_divisions(traces: pd.DataFrame) -> int:
    """Cells that divided: distinct non-zero parents of the traced cells."""
    parents = traces["parent"].to_numpy(np.int64)
    return int(np.unique(parents[parents > 0]).size)


def lost_track_fraction(traces: pd.DataFrame, n_frames: int) -> NDArray[np.float64]:
    """Per frame, the fraction of the previous frame's cells not tracked into it (0 at frame 0)."""
    frames = traces["frame"].to_numpy(np.int64)
    cells = traces["cell"].to_numpy(np.int64)
    stride = int(cells.max(initial=0)) + 1
    keys = frames * stride + cells
    continued = np.isin(keys + stride, keys)  # the same cell is in the next frame
    before = np.bincount(frames, minlength=n_frames)[:n_frames]
    kept = np.bincount(frames[continued] + 1, minlength=n_frames + 1)[:n_frames]
    lost = np.zeros(n_frames)
    previous = before[:-1]
    lost[1:] = np.where(previous > 0, 1 - kept[1:] / np.maximum(previous, 1), 0.0)
    return lost


def flag_frames(counts: NDArray[np.integer], statistics: FrameStatistics,
                lost: NDArray[np.floating], *, shifts: NDArray[np.floating] | None = None,
                z_limit: float = Z_LIMIT, lost_limit: float = LOST_LIMIT,
                jump_px: float = JUMP_PX) -> tuple[FrameFlag, ...]:
    """The frames that look wrong, each with its reasons.

    A frame is flagged when it has no cells while the FOV has some, when its cell count, mean
    intensity or focus is more than `z_limit` robust sigmas from the running median (see
    `robust_z`; a sigma is at least 1 cell or 10 % of the median count, 2 % of the median
    intensity, 5 % of the median focus), or when more than `lost_limit` of the previous
    frame's cells (3 at least) lose their track in it, or when the stage moved by more than
    `jump_px` since the previous frame (`shifts`: (T, 2) dy, dx that tracking undid).
    """
    counts = np.asarray(counts)
    typical = float(np.median(counts)) if counts.size else 0.0
    checks = {
        "cell count": robust_z(counts, min_scale=max(1.0, 0.1 * typical)),
        "mean intensity": robust_z(statistics.mean, min_scale=_share(statistics.mean, 0.02)),
        # Focus follows the cells in view (their texture): only a large change is a problem.
        "focus": robust_z(statistics.focus, min_scale=_share(statistics.focus, 0.05)),
    }
    jumps = np.hypot(*np.asarray(shifts, np.float64).T) if shifts is not None else np.zeros(0)
    flags = []
    for frame in range(counts.size):
        reasons = []
        if counts[frame] == 0 and counts.any():
            reasons.append("no cells")
        for name, z in checks.items():
            if frame < z.size and abs(z[frame]) > z_limit:
                reasons.append(f"{name} off trend ({'high' if z[frame] > 0 else 'low'}, "
                               f"z {z[frame]:+.0f})")
        if frame and counts[frame - 1] >= 3 and lost[frame] > lost_limit:
            reasons.append(f"{lost[frame]:.0%} of cells lost their track (stage jump?)")
        if frame < jumps.size and jumps[frame] > jump_px:
            reasons.append(f"stage moved {jumps[frame]:.0f} px (tracking undid it)")
        if reasons:
            flags.append(FrameFlag(frame, tuple(reasons)))
    return tuple(flags)


def assess_fov(fov: int, *, status: str, traces: pd.DataFrame | None, has_lineage: bool,
               statistics: FrameStatistics | None, n_frames: int, error: str | None = None,
               shifts: NDArray[np.floating] | None = None,
               step_seconds: Mapping[str, float] | None = None,
               log_problems: Sequence[str] = ()) -> FovQc:
    """The QC of one FOV from its traces (None: not extracted yet) and frame statistics (None:
    no phase-contrast stack) and stage shifts (None: not recorded)."""
    if traces is None:
        traces = pd.DataFrame({"frame": [], "cell": [], "good": [], "parent": []})
    counts = cells_per_frame(traces, n_frames)
    if statistics is None:
        statistics = FrameStatistics(np.zeros(0), np.zeros(0))
    flags = flag_frames(counts, statistics, lost_track_fraction(traces, n_frames),
                        shifts=shifts)
    return FovQc(fov=fov, status=status, error=error, cells_per_frame=counts,
                 track_lengths=track_lengths(traces), good_tracks=good_tracks(traces),
                 good_fraction=good_fraction(traces),
                 divisions=count_divisions(traces) if has_lineage else None, flags=flags,
                 step_seconds=dict(step_seconds or {}), log_problems=tuple(log_problems))


def _share(values: NDArray[np.float64], fraction: float) -> float:
    """`fraction` of the values' median (a positive scale even for an all-zero series)."""
    return max(fraction * abs(float(np.median(values))), 1e-9) if values.size else 1.0


def summarise_fits(name: str, fitted: pd.DataFrame, *,
                   min_r_squared: float = MIN_R_SQUARED) -> FitQc:
    """Converged fits and R² pass rate of a fitted table (a failed fit does not pass)."""
    success = fitted["success"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    r_squared = pd.to_numeric(fitted["r_squared"], errors="coerce").to_numpy(np.float64)
    passed = success & (np.nan_to_num(r_squared, nan=-np.inf) >= min_r_squared)
    n_cells = len(fitted)
    return FitQc(name=name, n_cells=n_cells,
                 success_fraction=float(success.mean()) if n_cells else 0.0,
                 r_squared_pass_fraction=float(passed.mean()) if n_cells else 0.0,
                 median_r_squared=float(np.nanmedian(r_squared[success]))
                 if success.any() else float("nan"))


def problems_first(fovs: Sequence[FovQc]) -> list[FovQc]:
    """FOVs ordered for reading: failed first, then by how many problems, then by number."""
    return sorted(fovs, key=lambda qc: (qc.status == "done", -len(qc.problems), qc.fov))
