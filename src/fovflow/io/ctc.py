"""Label stacks of runs and simulated ground truth, and their export to the Cell Tracking
Challenge (CTC) format, with their lineage.

A CTC result folder (``01_RES``) holds ``maskTTT.tif`` per frame (uint16 labels, 0 =
background) and ``res_track.txt`` with a line ``L B E P`` per track: label, first and last
frame, parent label (0: none). A ground-truth folder (``01_GT``) holds ``TRA/man_trackTTT.tif``
with ``TRA/man_track.txt`` and ``SEG/man_segTTT.tif``. Frame numbers have 3 digits, or as many
as the last frame needs. CTC tracks are contiguous in time, so a cell absent from some frames
in the middle of its track is exported as one track per contiguous part, each with its own
label (the first part keeps the cell's id) and the part before it as parent (the CTC way of
closing a gap). The first part of a daughter has its mother's last part as parent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tifffile
from numpy.typing import NDArray

from fovflow.errors import FovflowError, IndexOutOfRangeError, MissingFileError, TableError
from fovflow.io.frames import Frames, open_frames
from fovflow.io.layout import LABELS, PARTIAL, fov_folders, open_stack
from fovflow.io.lineage import read_lineage, run_lineage
from fovflow.processing._stacks import Stack, iter_frames
from fovflow.processing.lineage import Lineage

__all__ = ["CtcTracks", "SmallCellsRemoved", "ctc_tracks", "export_run_ctc", "export_truth_ctc",
           "read_truth_traces", "require_fovs", "run_fovs", "run_labels", "truth_fovs",
           "truth_labels", "truth_lineage", "write_ctc_result", "write_ctc_truth"]

_MAX_LABEL = np.iinfo(np.uint16).max
TRUTH_TRACE_COLUMNS = ("fov", "cell", "frame", "area")


@dataclass(frozen=True)
class CtcTracks:
    """Contiguous track segments of a label stack: one row per CTC track.

    ``label`` is the CTC label of the segment, ``cell`` the id it has in the stack,
    ``begin``/``end`` its first and last frame (inclusive) and ``parent`` the label of the
    segment it continues or divided from (0: none).
    """

    label: NDArray[np.int64]
    cell: NDArray[np.int64]
    begin: NDArray[np.int64]
    end: NDArray[np.int64]
    parent: NDArray[np.int64]

    def lines(self) -> str:
        """``res_track.txt`` / ``man_track.txt`` text: ``L B E P`` per track, by label."""
        order = np.argsort(self.label)
        return "".join(f"{self.label[i]} {self.begin[i]} {self.end[i]} {self.parent[i]}\n"
                       for i in order)

    def relabelled(self, t: int, frame: NDArray[np.integer[Any]]) -> NDArray[np.uint16]:
        """Frame `t` of the stack with each cell's CTC label for that frame."""
        lookup = np.arange(max(int(frame.max(initial=0)), int(self.cell.max(initial=0))) + 1)
        moved = (self.label != self.cell) & (self.begin <= t) & (self.end >= t)
        lookup[self.cell[moved]] = self.label[moved]
        return lookup[frame].astype(np.uint16)


def ctc_tracks(labels: Stack, lineage: Lineage | None = None) -> CtcTracks:
    """The contiguous track segments of a label stack, with CTC labels and parents.

    A cell present in frames 0-4 and 8-9 becomes two tracks: its id for 0-4, and a new label
    (above every id of the stack) for 8-9, whose parent is the first. A cell whose `lineage`
    names a parent in the stack gets the parent's last segment as parent.

    Raises
    ------
    FovflowError
        If a label does not fit in the 16 bits CTC allows.

    Notes
    -----
    One pass over the frames (O(pixels)); memory holds only the ids present per frame.
    """
    frames, cells = [], []
    for t, (frame,) in iter_frames(("labels", labels, "iu")):
        ids = np.flatnonzero(np.bincount(frame.ravel())[1:]) + 1
        frames.append(np.full(len(ids), t, np.int64))
        cells.append(ids.astype(np.int64))
    frame_of, cell_of = np.concatenate(frames), np.concatenate(cells)
    order = np.lexsort((frame_of, cell_of))
    frame_of, cell_of = frame_of[order], cell_of[order]
    new_cell = np.ones(len(cell_of), bool)
    new_cell[1:] = cell_of[1:] != cell_of[:-1]
    starts = new_cell.copy()
    starts[1:] |= frame_of[1:] != frame_of[:-1] + 1
    ends = np.ones(len(cell_of), bool)
    ends[:-1] = starts[1:]
    first_part = new_cell[starts]
    label = cell_of[starts].copy()
    extra = int((~first_part).sum())
    label[~first_part] = int(cell_of.max(initial=0)) + 1 + np.arange(extra)
    if len(label) and label.max() > _MAX_LABEL:
        raise FovflowError(f"{len(label)} tracks with labels up to {label.max()} do not fit in "
                           f"the 16-bit labels of the Cell Tracking Challenge format")
    cell = cell_of[starts]
    parent = np.zeros(len(label), np.int64)
    parent[1:][~first_part[1:]] = label[:-1][~first_part[1:]]  # the part before, same cell
    if lineage is not None:
        last_label = dict(zip(cell.tolist(), label.tolist(), strict=True))  # last part wins
        mother = lineage.parents()
        for index in np.flatnonzero(first_part):
            parent[index] = last_label.get(mother.get(int(cell[index]), 0), 0)
    return CtcTracks(label, cell, frame_of[starts], frame_of[ends], parent)


def write_ctc_result(labels: Stack, out_dir: str | os.PathLike[str], *,
                     lineage: Lineage | None = None) -> CtcTracks:
    """Write a label stack as a CTC result folder (``maskTTT.tif``, ``res_track.txt``).

    Parents come from `lineage` (`ctc_tracks`); without it tracks have none but the links
    across their own gaps.

    The folder is written under a temporary name and renamed when complete.

    Raises
    ------
    FovflowError
        If `out_dir` exists and is not empty, or a label does not fit in 16 bits.
    """
    return _write_ctc(labels, lineage, Path(out_dir), "res_track.txt", "mask")


def write_ctc_truth(labels: Stack, out_dir: str | os.PathLike[str], *,
                    lineage: Lineage | None = None) -> CtcTracks:
    """Write a true label stack as a CTC ground-truth folder (``TRA/`` and ``SEG/``).

    Every frame gets a tracking mask (``TRA/man_trackTTT.tif``, listed in ``man_track.txt``)
    and a segmentation mask (``SEG/man_segTTT.tif``) with the same labels.

    Raises
    ------
    FovflowError
        If `out_dir` exists and is not empty, or a label does not fit in 16 bits.
    """
    return _write_ctc(labels, lineage, Path(out_dir), "TRA/man_track.txt", "TRA/man_track",
                      "SEG/man_seg")


def export_run_ctc(run_dir: str | os.PathLike[str], fov: int,
                   out_dir: str | os.PathLike[str]) -> CtcTracks:
    """Write FOV `fov` of a run folder as a CTC result folder (see `write_ctc_result`), with
    its lineage (none for runs made before lineage)."""
    return write_ctc_result(run_labels(run_dir, fov), out_dir, lineage=run_lineage(run_dir, fov))


def export_truth_ctc(truth_dir: str | os.PathLike[str], fov: int, out_dir: str | os.PathLike[str],
                     *, min_area: int = 0) -> CtcTracks:
    """Write FOV `fov` of simulated ground truth (``sim.truth/``) as a CTC ground-truth folder.

    Cells smaller than `min_area` pixels in a frame (e.g. slivers at the frame border) are left
    out of that frame; 0 keeps every cell.
    """
    labels: Stack = truth_labels(truth_dir, fov)
    if min_area > 0:
        labels = SmallCellsRemoved(labels, min_area)
    return write_ctc_truth(labels, out_dir, lineage=truth_lineage(truth_dir, fov))


class SmallCellsRemoved:
    """A label stack read through a filter that sets cells below `min_area` pixels to 0."""

    def __init__(self, labels: Stack, min_area: int) -> None:
        self.labels = labels
        self.min_area = min_area

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, t: int) -> NDArray[Any]:
        frame = np.asarray(self.labels[t])
        small = np.bincount(frame.ravel()) < self.min_area
        small[0] = False
        return np.where(small[frame], 0, frame)


def run_fovs(run_dir: str | os.PathLike[str]) -> list[int]:
    """The FOVs of a run folder that have a tracked label stack.

    Raises
    ------
    MissingFileError
        If the folder does not exist or holds no label stack.
    """
    run_dir = Path(run_dir)
    return _found(run_dir, [fov for fov in fov_folders(run_dir)
                            if open_stack(run_dir, fov, LABELS) is not None],
                  "a run folder of `fovflow run` with tracked labels")


def truth_fovs(truth_dir: str | os.PathLike[str]) -> list[int]:
    """The FOVs of simulated ground truth (``labels_fov_NNN.zarr``).

    Raises
    ------
    MissingFileError
        If the folder does not exist or holds no label stack.
    """
    truth_dir = Path(truth_dir)
    return _found(truth_dir, sorted(int(n) for path in truth_dir.glob("labels_fov_*.zarr")
                                    if (n := path.name[11:-5]).isdigit()),
                  "the sim.truth folder written by `fovflow simulate`")


def run_labels(run_dir: str | os.PathLike[str], fov: int) -> Frames:
    """The tracked label stack of FOV `fov` of a run folder."""
    require_fovs([fov], run_fovs(run_dir), f"run {run_dir}")
    labels = open_stack(Path(run_dir), fov, LABELS)
    assert labels is not None  # run_fovs lists only FOVs with labels
    return labels


def truth_labels(truth_dir: str | os.PathLike[str], fov: int) -> Frames:
    """The true label stack of FOV `fov` of simulated ground truth."""
    require_fovs([fov], truth_fovs(truth_dir), f"ground truth {truth_dir}")
    return open_frames(Path(truth_dir) / f"labels_fov_{fov:03d}.zarr")


def truth_lineage(truth_dir: str | os.PathLike[str], fov: int) -> Lineage | None:
    """The true lineage of FOV `fov` (``lineage_fov_NNN.csv``), or None for ground truth
    simulated before divisions existed."""
    path = Path(truth_dir) / f"lineage_fov_{fov:03d}.csv"
    return read_lineage(path) if path.is_file() else None


def read_truth_traces(truth_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The true per-cell, per-frame values of simulated ground truth (``traces.csv``).

    Raises
    ------
    TableError
        If the file is missing, unreadable or lacks a column.
    """
    path = Path(truth_dir) / "traces.csv"
    if not path.is_file():
        raise TableError(f"{path}: no such file; the ground truth of `fovflow simulate` has it")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: not a readable CSV table: {exc}") from None
    missing = [c for c in TRUTH_TRACE_COLUMNS if c not in table.columns]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def _found(folder: Path, fovs: list[int], expected: str) -> list[int]:
    """`fovs`, the FOVs with a label stack found in `folder`, if there are any."""
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder; expected {expected}")
    if not fovs:
        raise MissingFileError(f"{folder} holds no label stacks; expected {expected}")
    return fovs


def require_fovs(fovs: list[int], available: list[int], where: str) -> None:
    """Raise `IndexOutOfRangeError` naming the first of `fovs` not in `available`."""
    for fov in fovs:
        if fov not in available:
            listed = ", ".join(map(str, available))
            raise IndexOutOfRangeError(f"FOV {fov} is not in the {where} (it has FOV {listed})")


def _write_ctc(labels: Stack, lineage: Lineage | None, out_dir: Path, track_file: str,
               *mask_prefixes: str) -> CtcTracks:
    """A new folder with ``<prefix>TTT.tif`` per frame and prefix, and the track file."""
    with _new_folder(out_dir) as folder:
        tracks = ctc_tracks(labels, lineage)
        prefixes = [folder / prefix for prefix in mask_prefixes]
        for prefix in prefixes:
            prefix.parent.mkdir(exist_ok=True)
        width = max(3, len(str(len(labels) - 1)))
        for t, (frame,) in iter_frames(("labels", labels, "iu")):
            mask = tracks.relabelled(t, frame)
            for prefix in prefixes:
                tifffile.imwrite(prefix.with_name(f"{prefix.name}{t:0{width}d}.tif"), mask)
        (folder / track_file).write_text(tracks.lines())
    return tracks


@contextlib.contextmanager
def _new_folder(path: Path) -> Iterator[Path]:
    """A fresh folder, written as ``<name>.partial`` and renamed to `path` when complete."""
    if path.exists() and not path.is_dir():
        raise FovflowError(f"{path} is a file; the result is a folder: give a new or empty "
                           "folder's path")
    if path.is_dir() and any(path.iterdir()):
        raise FovflowError(f"{path} already exists and is not empty; choose another folder or "
                           "remove it")
    partial = path.with_name(path.name + PARTIAL)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if path.exists():
        path.rmdir()  # empty, as checked above
    os.replace(partial, path)
