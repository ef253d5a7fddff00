"""The reader: a run folder or a FOV folder as napari layers (images, labels, tracks).

Per FOV: one image layer per stack (the segmented channel, raw and corrected fluorescence:
stored as its background model, the corrected frames are computed as napari shows them),
the tracked labels, and a Tracks layer of the cells' positions in the traces table with the
lineage graph (daughter -> mother) of ``lineage.csv``; all at the (t, y, x) scale the FOV's
OME-Zarr image records (seconds per frame, µm per pixel). Arrays stay on disk: napari reads
the frames it shows (from the input file for a run that did not copy it, ``copy: read``).
A run folder gives every FOV's layers, the first FOV's shown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from fovflow.io.background_model import CorrectedFrames
from fovflow.io.frames import Frames
from fovflow.io.layout import (
    FOV_FOLDER,
    LABELS,
    MANIFEST_NAME,
    PHASE,
    fov_folders,
    fov_name,
    image_stacks,
    open_stack,
    stack_scale,
    trace_files,
)
from fovflow.io.lineage import run_lineage
from fovflow.io.microscopy import FrameStack
from fovflow.io.tables import read_traces

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """napari's reader hook: `read` if `path` is a fovflow run folder or FOV folder, else None
    (so that napari asks its other readers)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return read if _run_and_fovs(Path(path)) is not None else None


def read(path: str | list[str]) -> list[LayerData]:
    """The layers of the run folder or FOV folder `path` (see the module's docstring)."""
    found = _run_and_fovs(Path(path[0] if isinstance(path, list) else path))
    if found is None:
        raise ValueError(f"{path} is neither a fovflow run folder nor one of its FOV folders")
    run_dir, fovs = found
    return [layer for index, fov in enumerate(fovs)
            for layer in fov_layers(run_dir, fov, visible=index == 0)]


def fov_layers(run_dir: Path, fov: int, *, visible: bool = True) -> list[LayerData]:
    """Image, labels and tracks layers of one FOV, at its scale."""
    scale = stack_scale(run_dir, fov)
    prefix = fov_name(fov)
    layers: list[LayerData] = []
    for name in image_stacks(run_dir, fov):
        frames = open_stack(run_dir, fov, name)
        if frames is not None:
            layers.append((_lazy(frames), {
                "name": f"{prefix} {name}", "scale": scale, "visible": visible,
                "colormap": "gray" if name == PHASE else "green",
                "blending": "translucent" if name == PHASE else "additive"}, "image"))
    labels = open_stack(run_dir, fov, LABELS)
    if labels is not None:
        layers.append((_lazy(labels), {"name": f"{prefix} cells", "scale": scale,
                                       "visible": visible, "opacity": 0.5}, "labels"))
    tracks = fov_tracks(run_dir, fov)
    if tracks is not None:
        data, graph = tracks
        layers.append((data, {"name": f"{prefix} tracks", "scale": scale, "graph": graph,
                              "visible": visible, "tail_length": 10}, "tracks"))
    return layers


def fov_tracks(run_dir: Path, fov: int) -> tuple[np.ndarray, dict[int, list[int]]] | None:
    """napari Tracks data (one row ``track, t, y, x`` per cell and frame, in pixels and frames)
    and graph (each daughter's mother), from the FOV's first traces table and its lineage;
    None if the FOV has no traces yet."""
    tables = list(trace_files(run_dir, fov).values())
    if not tables:
        return None
    traces = read_traces(tables[0]).sort_values(["cell", "frame"])
    data = traces[["cell", "frame", "position_y", "position_x"]].to_numpy(float)
    present = set(traces["cell"].astype(int))
    lineage = run_lineage(run_dir, fov)
    graph = {} if lineage is None else {
        int(track): [int(parent)] for track, parent in zip(lineage.track, lineage.parent,
                                                           strict=True)
        if parent and track in present and parent in present}
    return data, graph


def _lazy(frames: Frames | FrameStack | CorrectedFrames) -> da.Array:
    """The (T, Y, X) stack as a Dask array read frame by frame when napari shows it."""
    if isinstance(frames, Frames):
        array = da.from_zarr(frames.array)
        return array if frames.channel is None else array[:, frames.channel]
    # A channel of the input (not copied into the run), or one corrected when read.
    return da.stack([da.from_delayed(dask.delayed(frames.__getitem__)(t),
                                     shape=frames.shape[1:], dtype=frames.dtype)
                     for t in range(len(frames))])


def _run_and_fovs(path: Path) -> tuple[Path, list[int]] | None:
    """The run folder and its FOVs that `path` (a run folder or a FOV folder) stands for."""
    if (path / MANIFEST_NAME).is_file():
        fovs = [fov for fov in fov_folders(path) if image_stacks(path, fov)]
        return (path, fovs) if fovs else None
    match = FOV_FOLDER.match(path.name)
    if match and path.is_dir() and image_stacks(path.parent, int(match[1])):
        return path.parent, [int(match[1])]
    return None
