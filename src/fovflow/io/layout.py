"""The run folder's layout: every name in it, the manifest's header, opening a FOV's stacks.

::

    out/
      processing_results.yaml   manifest: input, config, time unit, per-FOV step status and stamps
      run_config.yaml           the configuration the run was started with
      run.log                   appended by every run
      run.lock                  only while a run writes here: who it is (pid, host, command)
      report.html               the QC page (``fovflow report``, or at the end of a run)
      samples/                  merged sample tables (``fovflow merge``)
      fov_000/
        image.ome.zarr          OME-Zarr image (T, C, Y, X): the segmented channel, then the
                                fluorescence channels, as copied from the input (with
                                ``copy: read``: a group naming them in the input instead)
          labels/cells          OME-Zarr label image (T, Y, X): the tracked cells
        fl_background.ome.zarr  OME-Zarr image (T, C, rows, columns) float64: the knots of
                                each frame's background surface, the background-corrected
                                fluorescence's model (``corrected: model``, the default;
                                `fovflow.io.background_model`), corrected when read
        fl_corrected.ome.zarr   instead, with ``corrected: pixels``: OME-Zarr image
                                (T, C, Y, X) float32, background-corrected, rounded to
                                `CORRECTED_MANTISSA_BITS` bits of mantissa
        seg.zarr                segmentation before tracking (T, Y, X), plain Zarr
        lineage.csv  shifts.csv  traces_ch_1.csv (and traces_ch_1.parquet with pyarrow)

This module is the only place that spells these names: a new output is added here (its name
and, in `step_outputs`, the step that writes it) and every reader finds it through the
functions below. A FOV's (T, Y, X) stacks have short names that do not depend on the files
holding them: `PHASE`, `MASKS`, `LABELS`, `raw_stack(c)` and `corrected_stack(c)` (stored
pixels, or computed from the raw stack and its model). Run folders of fovflow before OME-Zarr
(one ``<stack>.zarr`` per stack) are read as well.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Zarr is imported by the functions that open stacks: the CLI starts faster
    from fovflow.io.frames import Frames
    from fovflow.io.metadata import DatasetMetadata
    from fovflow.io.microscopy import FrameStack

MANIFEST_NAME = "processing_results.yaml"
MANIFEST_FORMAT = 1
CONFIG_NAME = "run_config.yaml"
LOG_NAME = "run.log"
LOCK_NAME = "run.lock"
REPORT_NAME = "report.html"
SAMPLES_DIR = "samples"
PARTIAL = ".partial"  # suffix of an output being written (see `fovflow.io.store.staged`)
IMAGE_NAME = "image.ome.zarr"
CORRECTED_NAME = "fl_corrected.ome.zarr"
BACKGROUND_NAME = "fl_background.ome.zarr"
CORRECTED_CHOICES = ("model", "pixels")  # how the background step stores its result
LABELS_GROUP = "labels"  # inside an image; a step's output of its own, not the image's
LABELS_NAME = f"{IMAGE_NAME}/{LABELS_GROUP}/cells"
PARTIAL_PATTERNS = (f"*{PARTIAL}", f"*/{LABELS_GROUP}/*{PARTIAL}")  # inside a FOV folder
# Parquet beside each CSV table when pyarrow is installed (an optional extra).
WRITES_PARQUET = find_spec("pyarrow") is not None

# The corrected fluorescence keeps float16's precision in float32 (relative error <= 2**-11
# per pixel): 0.58x the bytes of full float32; traces' median relative error 3e-6
# (benchmarks/RESULTS.md, "End to end").
CORRECTED_MANTISSA_BITS = 10

LINEAGE_NAME = "lineage.csv"
SHIFTS_NAME = "shifts.csv"
TRACES_FILE = re.compile(r"traces_ch_(\d+)\.csv\Z")
FOV_FOLDER = re.compile(r"fov_(\d+)\Z")

PHASE = "pc"  # the segmented channel as copied from the input
MASKS = "seg"  # segmentation: instance labels per frame, before tracking
MASKS_NAME = f"{MASKS}.zarr"
LABELS = "labels"  # tracked labels: one id per cell across frames
_LEGACY_STACK_FILE = re.compile(r"(pc|fl_ch_\d+|fl_corrected_ch_\d+)\.zarr\Z")


def raw_stack(channel: int) -> str:
    """The name of fluorescence channel `channel` as copied from the input."""
    return f"fl_ch_{channel}"


def corrected_stack(channel: int) -> str:
    """The name of fluorescence channel `channel` after background correction."""
    return f"fl_corrected_ch_{channel}"


def traces_name(channel: int) -> str:
    """The traces table of fluorescence channel `channel` (inside the FOV folder)."""
    return f"traces_ch_{channel}.csv"


def parquet_name(table: str) -> str:
    """The Parquet twin of the CSV table `table`."""
    return table.removesuffix(".csv") + ".parquet"


def fov_name(fov: int) -> str:
    """``fov_003``: the FOV's folder, and its name in messages and task keys."""
    return f"fov_{fov:03d}"


def fov_dir(output: Path, fov: int) -> Path:
    return Path(output) / fov_name(fov)


def fov_folders(run_dir: Path) -> dict[int, Path]:
    """The run folder's FOV folders by FOV number (none if `run_dir` does not exist)."""
    if not Path(run_dir).is_dir():
        return {}
    found = {int(match[1]): path for path in Path(run_dir).iterdir()
             if path.is_dir() and (match := FOV_FOLDER.match(path.name))}
    return dict(sorted(found.items()))


def trace_files(run_dir: Path, fov: int) -> dict[int, Path]:
    """The FOV's traces tables by fluorescence channel, in channel order."""
    folder = fov_dir(run_dir, fov)
    if not folder.is_dir():
        return {}
    found = {int(match[1]): path for path in folder.iterdir()
             if (match := TRACES_FILE.match(path.name))}
    return dict(sorted(found.items()))


def step_outputs(step: str, fl_channels: Sequence[int], *,
                 corrected: str = "model") -> list[str]:
    """File names (inside the FOV folder) that `step` writes; the background step's depend on
    how the corrected fluorescence is stored (`CORRECTED_CHOICES`)."""
    if step == "copy":
        return [IMAGE_NAME]
    if step == "segmentation":
        return [MASKS_NAME]
    if step == "background":
        return [corrected_store(corrected)]
    if step == "tracking":
        return [LABELS_NAME, LINEAGE_NAME, SHIFTS_NAME]
    if step == "extraction":
        tables = [traces_name(c) for c in fl_channels]
        return tables + ([parquet_name(name) for name in tables] if WRITES_PARQUET else [])
    raise ValueError(f"unknown step {step!r}")


def corrected_store(corrected: str) -> str:
    """The file holding the corrected fluorescence stored as `corrected` (`CORRECTED_CHOICES`)."""
    return BACKGROUND_NAME if corrected == "model" else CORRECTED_NAME


def manifest_header(metadata: DatasetMetadata, *, version: str, fingerprint: str,
                    segment_channel: int, fl_channels: Sequence[int],
                    config: Mapping[str, Any]) -> dict[str, Any]:
    """What the manifest records of a run besides its FOVs: the input, channels and config."""
    return {
        "fovflow_version": version,
        "input": {"path": str(metadata.path), "fingerprint": fingerprint,
                  "format": metadata.format, "n_fovs": metadata.n_fovs,
                  "n_frames": metadata.n_frames, "channel_names": list(metadata.channel_names)},
        "time_unit": metadata.time_unit,
        "channels": {"segment": segment_channel, "fl": list(fl_channels)},
        "config": dict(config),
    }


def open_stack(run_dir: Path, fov: int, name: str) -> Frames | FrameStack | None:
    """The FOV's (T, Y, X) stack `name` (`PHASE`, `LABELS`, ``raw_stack(1)``...), or None if
    it is not written (yet); a raw channel of a run that read its input without copying it is
    read from the input (None if the input is gone or changed, see `fovflow.io.ngff`), and a
    corrected channel stored as its model is computed from its raw channel when read (None
    without the raw channel)."""
    from fovflow.io import ngff
    from fovflow.io.background_model import open_background_model
    from fovflow.io.frames import open_frames

    folder = fov_dir(run_dir, fov)
    if name == LABELS:
        found = ngff.open_labels(folder / LABELS_NAME)
    else:
        found = (ngff.open_channel(folder / IMAGE_NAME, name,
                                   inputs=functools.partial(_recorded_input, run_dir))
                 or ngff.open_channel(folder / CORRECTED_NAME, name))
    if found is None and (model := open_background_model(folder / BACKGROUND_NAME, name)):
        raw = open_stack(run_dir, fov, model.raw)
        return None if raw is None else model.correct(raw)
    plain = folder / f"{name}.zarr"  # MASKS_NAME, and every stack of fovflow before OME-Zarr
    if found is None and plain.is_dir():
        return open_frames(plain)
    return found


def _recorded_input(run_dir: Path) -> list[Path]:
    """The input the manifest records (the last run's path: an input that has moved since
    the raw channels' record was written), if any."""
    import yaml

    try:
        return [Path(yaml.safe_load((Path(run_dir) / MANIFEST_NAME).read_text())["input"]["path"])]
    except (OSError, yaml.YAMLError, TypeError, KeyError):
        return []


def image_stacks(run_dir: Path, fov: int) -> list[str]:
    """Names of the FOV's image stacks (`PHASE` first, then raw and corrected fluorescence;
    a corrected one stored as its model only while its raw channel is there)."""
    from fovflow.io import ngff
    from fovflow.io.background_model import model_stacks

    folder = fov_dir(run_dir, fov)
    if not folder.is_dir():
        return []
    elsewhere = functools.partial(_recorded_input, run_dir)
    names = {*ngff.image_stacks(folder / IMAGE_NAME, inputs=elsewhere),
             *ngff.image_stacks(folder / CORRECTED_NAME),
             *(path.name.removesuffix(".zarr") for path in folder.iterdir()
               if _LEGACY_STACK_FILE.match(path.name))}
    names |= {corrected for corrected, raw in model_stacks(folder / BACKGROUND_NAME).items()
              if raw in names}
    return sorted(names, key=lambda name: (name != PHASE, name))


def stack_scale(run_dir: Path, fov: int) -> tuple[float, float, float]:
    """The (T, Y, X) scale of the FOV's stacks: seconds per frame and µm per pixel as its
    OME-Zarr images record them (the labels' or the corrected image's when the channels were
    not copied); (1, 1, 1) for a run folder from before OME-Zarr."""
    from fovflow.io import ngff

    folder = fov_dir(run_dir, fov)
    for image in (IMAGE_NAME, LABELS_NAME, CORRECTED_NAME):
        scale = ngff.read_scale(folder / image) if (folder / image).is_dir() else None
        if scale is not None:
            t, *_, y, x = scale  # (T, C, Y, X) or (T, Y, X)
            return (t, y, x)
    return (1.0, 1.0, 1.0)
