"""OME-Zarr (NGFF 0.5) images and label images, written frame by frame.

An image is a group with one array ``0`` of (T, C, Y, X), chunked one frame of one channel per
chunk (fovflow's `Frames` layout, so each step streams its frames as before); tracked labels
are the label image ``labels/cells`` under it, (T, Y, X). Beside the NGFF keys,
``attributes.fovflow.stacks`` names each channel the way `fovflow.io.layout` does (``pc``,
``fl_ch_1``...), and ``attributes.fovflow.aliases`` gives further names of a stored channel (a
channel both segmented and measured is stored once: ``{"pc": "fl_ch_0"}``).

Zarr writes the groups and arrays; the NGFF attributes (axes with their units, the scale of
time and pixels, channel names, the image-label record: 0.5's ``ome`` key) are the few JSON
keys below. They are not written through ome-zarr-py: importing it loads xarray, pandas and
pydantic models: 130 MB and 0.6 s more in every worker, twice what the steps import
(benchmarks/RESULTS.md, OME-Zarr outputs). The tests read every image back with ome-zarr-py
and validate it against the specification with ome-zarr-models.

A coarse grid over the frames (the background's knots, `fovflow.io.background_model`) is an
image of its own, written whole (`create_grid_image`), whose scale and translation place its
samples on the frames.

A run that reads its input instead of copying it (``copy: read``) writes, in place of the
copied image, a group that records where the channels are (`create_source`): the input's
path and fingerprint, the FOV and channels; it holds the labels image all the same, and
`open_channel` reads those channels from the input, as long as it is there unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from fovflow.errors import FovflowError
from fovflow.io.frames import Frames, frame_array_options
from fovflow.io.metadata import DatasetMetadata

if TYPE_CHECKING:
    from fovflow.io.microscopy import Dataset, FrameStack

log = logging.getLogger(__name__)
# Where else a source group's input may be, asked only if it is not where it was recorded.
Elsewhere = Callable[[], Sequence[Path]]

ARRAY = "0"  # the full-resolution (and only) level
FOVFLOW_KEY = "fovflow"  # fovflow's own attributes beside the NGFF ones
NGFF_VERSION = "0.5"


@dataclass(frozen=True)
class Scale:
    """The physical size of one frame step and one pixel (None: not recorded, 1 is used)."""

    frame_interval_s: float | None
    pixel_size_um: float | None

    @classmethod
    def of_fov(cls, metadata: DatasetMetadata, fov: int) -> Scale:
        """The median time between frames of `fov` and the pixel size the input records."""
        times = np.asarray(metadata.times[fov], dtype=float)
        interval = (float(np.median(np.diff(times)))
                    if metadata.has_times and len(times) > 1 else None)
        return cls(interval if interval else None, metadata.pixel_size_um)

    def axes(self, *, channels: bool) -> list[dict[str, str]]:
        time = {"name": "t", "type": "time", **({"unit": "second"}
                                                 if self.frame_interval_s else {})}
        space = {"type": "space", **({"unit": "micrometer"} if self.pixel_size_um else {})}
        return [time, *([{"name": "c", "type": "channel"}] if channels else []),
                {"name": "y", **space}, {"name": "x", **space}]

    def factors(self, *, channels: bool) -> list[float]:
        pixel = self.pixel_size_um or 1.0
        return [self.frame_interval_s or 1.0, *([1.0] if channels else []), pixel, pixel]


def create_image(path: Path, *, stacks: Sequence[str], channel_names: Sequence[str],
                 n_frames: int, frame_shape: tuple[int, int], dtype: Any,
                 scale: Scale, mantissa_bits: int | None = None,
                 aliases: Mapping[str, str] | None = None) -> dict[str, Frames]:
    """A new OME-Zarr image at `path` with one channel per name in `stacks` (shown as
    `channel_names`); returns each channel as a stack of frames to write, by stack name.
    `aliases` maps further names to names in `stacks` (the readers open them as those).

    With `mantissa_bits`, float frames are stored rounded to that precision (see `Frames`);
    the image records it as ``attributes.fovflow.mantissa_bits``."""
    axes = scale.axes(channels=True)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.attrs.update({
        "ome": {"version": NGFF_VERSION,
                "multiscales": [_multiscale(path.name.split(".")[0], axes,
                                            scale.factors(channels=True))],
                "omero": {"channels": [{"label": name, "active": True}
                                       for name in channel_names]}},
        FOVFLOW_KEY: {"stacks": list(stacks),
                      **({"aliases": dict(aliases)} if aliases else {}),
                      **({"mantissa_bits": mantissa_bits} if mantissa_bits is not None else {})}})
    array = group.create_array(ARRAY, **frame_array_options(
        (n_frames, len(stacks), *frame_shape), dtype), dimension_names=_names(axes))
    return {name: Frames(array, channel, mantissa_bits=mantissa_bits)
            for channel, name in enumerate(stacks)}


def create_grid_image(path: Path, *, data: np.ndarray, channel_names: Sequence[str],
                      scale: Scale, spacing: int, attributes: Mapping[str, Any]) -> None:
    """An OME-Zarr image at `path` of a coarse grid over the frames, written whole: `data` is
    (T, C, rows, columns), its samples `spacing` pixels of the frame apart, the first one at
    the frame's corner (a translation of half a pixel: NGFF places pixels by their centres),
    so that a viewer lays it over the frames. One chunk per channel; `attributes` are
    fovflow's own (``attributes.fovflow``)."""
    axes = scale.axes(channels=True)
    t, c, y, x = scale.factors(channels=True)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.attrs.update({
        "ome": {"version": NGFF_VERSION,
                "multiscales": [_multiscale(path.name.split(".")[0], axes,
                                            [t, c, y * spacing, x * spacing],
                                            translation=[0.0, 0.0, -y / 2, -x / 2])],
                "omero": {"channels": [{"label": name, "active": True}
                                       for name in channel_names]}},
        FOVFLOW_KEY: dict(attributes)})
    array = group.create_array(ARRAY, shape=data.shape, chunks=(len(data), 1, *data.shape[2:]),
                               dtype=data.dtype, dimension_names=_names(axes))
    array[...] = data


def read_grid_image(path: Path) -> tuple[dict[str, Any], zarr.Array] | None:
    """fovflow's attributes and the array of the image `create_grid_image` wrote at `path`;
    None if there is none."""
    if not (path / ARRAY / "zarr.json").is_file():
        return None
    return _own_attributes(path), zarr.open_array(path / ARRAY, mode="r")


def create_source(path: Path, *, stacks: Sequence[str], source: Mapping[str, Any]) -> None:
    """A group at `path` naming channels of the input instead of holding them: `source` is
    ``{"input": path, "fingerprint": ..., "fov": ..., "channels": [...], "z": ...}``, one
    channel per name in `stacks`. Label images go under it as under an image."""
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.attrs[FOVFLOW_KEY] = {"stacks": list(stacks), "source": dict(source)}


def create_labels(path: Path, *, n_frames: int, frame_shape: tuple[int, int], dtype: Any,
                  scale: Scale) -> Frames:
    """A new label image at `path` (``<image>/labels/<name>``, or a temporary name beside it)
    listed in the image's ``labels`` group; returns its (T, Y, X) stack of frames to write."""
    name = path.name.split(".")[0]  # the final name, also while written under `.partial`
    labels_group = zarr.open_group(path.parent, mode="a", zarr_format=3)
    listed = labels_group.attrs.get("ome", {}).get("labels", [])
    labels_group.attrs["ome"] = {"version": NGFF_VERSION, "labels": sorted({*listed, name})}
    axes = scale.axes(channels=False)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.attrs["ome"] = {
        "version": NGFF_VERSION,
        "multiscales": [_multiscale(name, axes, scale.factors(channels=False))],
        "image-label": {"version": NGFF_VERSION, "source": {"image": "../../"}}}
    array = group.create_array(ARRAY, **frame_array_options((n_frames, *frame_shape), dtype),
                               dimension_names=_names(axes))
    return Frames(array)


def image_stacks(path: Path, *, inputs: Elsewhere = tuple) -> list[str]:
    """The stack names of the channels of the fovflow OME-Zarr image at `path` ([] if none;
    for a source group, [] while its input is missing or changed: see `open_channel`)."""
    own = _own_attributes(path)
    if "source" in own and _source_dataset(own["source"], inputs) is None:
        return []
    return [*own.get("stacks", []), *own.get("aliases", {})]


def open_channel(path: Path, stack: str, *,
                 inputs: Elsewhere = tuple) -> Frames | FrameStack | None:
    """The channel of the image at `path` that holds `stack`, or None if it holds no such.

    A source group's channel (`create_source`) is read from the input it records, or else
    from the first file `inputs()` names (e.g. where the run's input has moved to since) with
    the recorded fingerprint; None if there is no such file."""
    own = _own_attributes(path)
    stacks = list(own.get("stacks", []))
    stack = own.get("aliases", {}).get(stack, stack)
    if stack not in stacks:
        return None
    index = stacks.index(stack)
    if "source" in own:
        source = own["source"]
        dataset = _source_dataset(source, inputs)
        return None if dataset is None else dataset.stack(source["fov"],
                                                          source["channels"][index])
    return Frames(zarr.open_array(path / ARRAY, mode="r"), index)


def _own_attributes(path: Path) -> dict[str, Any]:
    if not (path / "zarr.json").is_file():
        return {}
    return dict(zarr.open_group(path, mode="r").attrs.get(FOVFLOW_KEY, {}))


def _source_dataset(source: Mapping[str, Any], inputs: Elsewhere) -> Dataset | None:
    """The input a source group names (or the first of `inputs()` with its fingerprint),
    opened; None if none is there with the same content."""
    from fovflow.io.fingerprint import input_fingerprint
    from fovflow.io.microscopy import Dataset, open_dataset

    recorded = Path(source["input"])

    def candidates() -> Iterator[Path]:  # `inputs` is asked only if the recorded one fails
        yield recorded
        yield from (path for path in inputs() if path != recorded)

    problems = []
    for path in candidates():
        try:
            if input_fingerprint(path) != source["fingerprint"]:
                raise FovflowError("another content")
            with open_dataset(path) as dataset:
                return Dataset(dataset.metadata.with_z(source.get("z")))
        except (OSError, FovflowError) as exc:
            problems.append(f"{path}: {exc}")
    log.warning("the raw channels of this run are read from its input (copy: read), which is "
                "not there as it was (%s); put it back, or run again with copy: copy",
                "; ".join(problems))
    return None


def open_labels(path: Path) -> Frames | None:
    """The (T, Y, X) stack of the label image at `path`, or None if it is not written."""
    return Frames(zarr.open_array(path / ARRAY, mode="r")) if (path / ARRAY).is_dir() else None


def read_scale(path: Path) -> list[float] | None:
    """The scale of the image or label image at `path`, one factor per axis (None for a
    group without one: `create_source`'s)."""
    ome = zarr.open_group(path, mode="r").attrs.get("ome", {})
    if "multiscales" not in ome:
        return None
    transforms = ome["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    return [float(v) for v in next(t["scale"] for t in transforms if t["type"] == "scale")]


def _multiscale(name: str, axes: list[dict[str, str]], factors: list[float], *,
                translation: list[float] | None = None) -> dict[str, Any]:
    transforms: list[dict[str, Any]] = [{"type": "scale", "scale": factors}]
    if translation is not None:
        transforms.append({"type": "translation", "translation": translation})
    return {"name": name, "axes": axes, "datasets": [
        {"path": ARRAY, "coordinateTransformations": transforms}]}


def _names(axes: list[dict[str, str]]) -> tuple[str, ...]:
    """The arrays' dimension names, which NGFF 0.5 requires to be the axes' names."""
    return tuple(axis["name"] for axis in axes)
