"""What a processing run does: `WorkflowConfig`, a plain value saved with the run.

A configuration checks, as it is made, what it can judge alone: types, ranges and the syntax
of its values (no I/O, no plugins, no algorithm runs), so making one is cheap. What depends on
the world outside it (plugins, the steps' own checks, the input file, the run folder) is
checked once, before a run, by `fovflow.workflow.prepare.prepare_run`.

Step parameters are overrides of the processing functions' own keyword defaults, so a default
lives in exactly one place (the algorithm's signature). `step_parameters()` gives the effective
values, which the manifest hashes to decide what a rerun can skip.
"""

from __future__ import annotations

import inspect
import numbers
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from fovflow.errors import ConfigError, yaml_problem
from fovflow.execution import ExecutorSpec, usable_cores
from fovflow.io.layout import CORRECTED_CHOICES
from fovflow.io.microscopy import DatasetMetadata, z_selection
from fovflow.io.store import write_text_atomically
from fovflow.processing.background import correct_background
from fovflow.processing.extraction import DEFAULT_FEATURES, extract_features
from fovflow.processing.segmentation import METHODS, method_defaults, segment_cells, suited_tracking
from fovflow.processing.tracking import track_cells
from fovflow.ranges import format_ranges, parse_ranges

# Keyword parameters of each step's algorithm that a user may set (progress/out are ours).
STEP_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "segmentation": segment_cells,
    "background": correct_background,
    "tracking": track_cells,
    "extraction": extract_features,
}
# Keys of earlier versions: segment_channel was pc_channel before fluorescence could be
# segmented, max_in_flight was batch_size.
_OLD_NAMES = {"pc_channel": "segment_channel", "batch_size": "max_in_flight"}
# Set by the engine itself, not by a user.
_NOT_PARAMETERS = {"progress", "out", "features", "times", "fov"}


@dataclass(frozen=True)
class WorkflowConfig:
    """Everything a run needs. Relative paths are taken from the working directory and kept
    absolute, so workers started elsewhere (a Dask cluster) write and read the same files.

    Raises `ConfigError` on a value of the wrong type or out of range; names that plugins may
    define (features, segmentation methods and their parameters) are checked by
    `fovflow.workflow.prepare`."""

    input: Path
    output: Path
    segment_channel: int = 0
    fl_channels: tuple[int, ...] | None = None  # None: chosen from the file (`for_file`)
    fovs: str = "all"
    z: int | str | None = None  # Z stacks: a plane index, "max" or "mean" (per frame)
    features: tuple[str, ...] = DEFAULT_FEATURES
    plugins: tuple[str, ...] = ()  # folders of plugin files (besides $FOVFLOW_PLUGINS)
    segmentation: Mapping[str, Any] = field(default_factory=dict)
    background: Mapping[str, Any] = field(default_factory=dict)
    tracking: Mapping[str, Any] = field(default_factory=dict)
    extraction: Mapping[str, Any] = field(default_factory=dict)
    # "copy": the raw channels into the run folder; "read": from the input, not copied.
    copy: str = "copy"
    # "model": the corrected fluorescence as its background's knots, corrected when read;
    # "pixels": the corrected pixels (float32 of float16's precision).
    corrected: str = "model"
    # How FOVs run in parallel: the knobs of `fovflow.execution.knobs`.
    n_workers: int = field(default_factory=usable_cores)
    max_in_flight: int | None = None  # `batch_size` in configurations written before
    executor: str = "process"
    scheduler: str | None = None

    def __post_init__(self) -> None:
        # Normalise once, here: values come from Python, the command line and YAML files.
        set_ = object.__setattr__
        set_(self, "input", _path(self.input, "input"))
        set_(self, "output", _path(self.output, "output"))
        set_(self, "segment_channel", _whole(self.segment_channel, "segment_channel"))
        if self.fl_channels is not None:
            set_(self, "fl_channels", _channels(self.fl_channels))
        set_(self, "features", _names(self.features, "features"))
        set_(self, "plugins", tuple(str(_path(folder, "plugins"))
                                    for folder in _names(self.plugins, "plugins")))
        set_(self, "fovs", _selection(self.fovs))
        set_(self, "z", z_selection(self.z))
        if self.copy not in ("copy", "read"):
            raise ConfigError(f"copy must be 'copy' or 'read', got {self.copy!r}")
        if self.corrected not in CORRECTED_CHOICES:
            raise ConfigError(f"corrected must be 'model' or 'pixels', got {self.corrected!r}")
        execution = self.execution  # checks the executor and its knobs
        set_(self, "n_workers", execution.workers)
        set_(self, "max_in_flight", execution.max_in_flight)
        if self.fl_channels is not None and not self.fl_channels:
            raise ConfigError("choose at least one fluorescence channel (--fl)")
        if self.fl_channels and len(set(self.fl_channels)) != len(self.fl_channels):
            raise ConfigError(f"fluorescence channels {list(self.fl_channels)} repeat a channel")
        for step in STEP_FUNCTIONS:  # their names and values are the steps' to judge
            if not isinstance(getattr(self, step), Mapping):
                raise ConfigError(f"{step} parameters must be a mapping of name: value")
        if self.fovs.strip().lower() != "all":
            try:
                parse_ranges(self.fovs)
            except ConfigError as exc:
                raise ConfigError(f"FOVs: {exc}") from None

    @property
    def execution(self) -> ExecutorSpec:
        """The executor this run builds unless given one."""
        return ExecutorSpec(self.executor, self.n_workers, self.max_in_flight, self.scheduler)

    def step_parameters(self) -> dict[str, dict[str, Any]]:
        """Effective parameters of every step: the algorithms' defaults with the overrides
        (`effective_parameters`)."""
        return effective_parameters({step: getattr(self, step) for step in STEP_FUNCTIONS})

    def selected_fovs(self, metadata: DatasetMetadata) -> list[int]:
        """The FOV indices to process, checked against the file."""
        try:
            return parse_ranges(self.fovs, limit=metadata.n_fovs)
        except ConfigError as exc:
            raise ConfigError(f"FOVs: {exc} in {metadata.path.name}") from None

    def for_file(self, metadata: DatasetMetadata) -> WorkflowConfig:
        """This configuration with its measured channels chosen when it leaves them open:
        every channel but the segmented one, or the segmented one when the file has no other
        (a nuclear marker alone, a single fluorescence channel)."""
        if self.fl_channels is not None:
            return self
        others = tuple(c for c in range(metadata.n_channels) if c != self.segment_channel)
        return replace(self, fl_channels=others or (self.segment_channel,))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(input=str(self.input), output=str(self.output),
                    fl_channels=None if self.fl_channels is None else list(self.fl_channels),
                    features=list(self.features),
                    plugins=list(self.plugins))
        for name in ("segmentation", "background", "tracking", "extraction"):
            data[name] = dict(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowConfig:
        data = {_OLD_NAMES.get(key, key): value for key, value in data.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted((key for key in data if key not in known), key=str)
        if unknown:
            raise ConfigError(f"unknown configuration keys {unknown}; known: {sorted(known)}")
        missing = [key for key in ("input", "output") if key not in data]
        if missing:
            raise ConfigError(f"the configuration needs {' and '.join(missing)}")
        try:
            return cls(**data)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid configuration: {exc}") from exc

    def save(self, path: Path) -> None:
        write_text_atomically(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> WorkflowConfig:
        """Read a YAML config; `overrides` (e.g. from the command line) win over the file."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not a YAML text file (not UTF-8)") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML ({yaml_problem(exc)})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of configuration keys")
        merged = {**data, **overrides}
        for step in STEP_FUNCTIONS:  # an option sets one parameter, not all of the step's
            if isinstance(data.get(step), Mapping) and isinstance(overrides.get(step), Mapping):
                merged[step] = {**data[step], **overrides[step]}
        return cls.from_dict(merged)

    def with_overrides(self, **changes: Any) -> WorkflowConfig:
        return replace(self, **changes)


def effective_parameters(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every step's parameters: its algorithm's defaults with `overrides` (by step), each
    checked to be one of the algorithm's parameters and like its default.

    Segmentation's are its ``method`` and ``diameter`` followed by that method's own.
    Tracking's defaults are those that suit the method's labels where they differ from
    `track_cells`' own (`fovflow.processing.segmentation.suited_tracking`). Names come from
    the registries, so a plugin's method or feature needs its plugins loaded first.
    """
    segmentation = _segmentation_parameters(overrides.get("segmentation", {}))
    suited = {"tracking": suited_tracking(segmentation["method"], segmentation)}
    unknown = sorted(set(suited["tracking"]) - set(_defaults_of(track_cells)))
    if unknown:  # a plugin's table: said here, not as a user's mistake
        raise ConfigError(f"the {segmentation['method']} method's tracking defaults name "
                          f"unknown tracking parameters {unknown}")
    parameters = {step: _merge(step, {**_defaults_of(function), **suited.get(step, {})},
                               overrides.get(step, {}), optional=_optional(function))
                  for step, function in STEP_FUNCTIONS.items() if step != "segmentation"}
    return {"segmentation": segmentation, **parameters}


def _segmentation_parameters(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``method`` and ``diameter`` (checked), then the method's parameters with overrides."""
    method = overrides.get("method", "phase")
    if method not in METHODS:
        raise ConfigError(f"unknown segmentation method {method!r}; choose "
                          f"{', '.join(sorted(METHODS))} (or add one with a plugin)")
    diameter = _diameter(overrides.get("diameter", "auto"))
    own = {name: value for name, value in overrides.items() if name not in ("method", "diameter")}
    return {"method": method, "diameter": diameter,
            **_merge("segmentation", method_defaults(method), own,
                     _names_or_numbers(METHODS[method]), _optional(METHODS[method]))}


def _optional(function: Callable[..., Any]) -> set[str]:
    """Parameters annotated ``... | None`` (or ``Optional[...]``): None (YAML ``null``) is one
    of their values, e.g. phase's ``working_diameter: null`` (split at full resolution)."""
    return {name for name, p in inspect.signature(function).parameters.items()
            if "None" in str(p.annotation) or "Optional[" in str(p.annotation)}


def _names_or_numbers(function: Callable[..., Any]) -> set[str]:
    """Parameters with a name as default that take a number too (annotated ``str | float``,
    e.g. the fluorescence threshold)."""
    return {name for name, p in inspect.signature(function).parameters.items()
            if isinstance(p.default, str) and "float" in str(p.annotation)}


def _diameter(value: Any) -> float | str:
    """``auto``, a number of pixels, or microns as text such as ``"12um"`` or ``"12 µm"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        number = text.removesuffix("um").removesuffix("µm").strip()
        if number != text and _positive(number):
            return f"{float(number):g}um"
    elif not isinstance(value, bool) and isinstance(value, int | float) and value > 0:
        return float(value)
    raise ConfigError(f"diameter must be auto, a positive number of pixels or microns like "
                      f"12um, not {value!r}")


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def diameter_px(diameter: float | str, metadata: DatasetMetadata) -> float | str:
    """The diameter in pixels of the file (``auto`` stays ``auto``), checked to fit a frame."""
    if diameter == "auto":
        return diameter
    if isinstance(diameter, str):  # microns
        if not metadata.pixel_size_um:
            raise ConfigError(f"diameter {diameter} is in microns, but {metadata.path.name} "
                              "records no pixel size; give it in pixels")
        diameter = float(diameter.removesuffix("um")) / metadata.pixel_size_um
    if diameter > max(metadata.height, metadata.width):
        raise ConfigError(f"diameter {diameter:g} px is larger than the frames of "
                          f"{metadata.path.name} ({metadata.width}x{metadata.height})")
    return diameter


def _defaults_of(function: Callable[..., Any]) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _NOT_PARAMETERS}


def _merge(step: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any],
           numbers_too: Collection[str] = (), optional: Collection[str] = ()) -> dict[str, Any]:
    """The defaults with the overrides, each like its default (or a number, for the names in
    `numbers_too`; or None, for those in `optional`)."""
    unknown = sorted((name for name in overrides if name not in defaults), key=str)
    if unknown:
        raise ConfigError(f"unknown {step} parameters {unknown}; known: {sorted(defaults)}")
    merged = dict(defaults)
    for name, value in overrides.items():
        default = defaults[name]
        number = name in numbers_too and _same_kind(0.0, value)
        none = value is None and name in optional
        if default is not None and not _same_kind(default, value) and not (number or none):
            raise ConfigError(f"{step} parameter {name} must be like {default!r}, not {value!r}")
        merged[name] = value
    return merged


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int):  # window, sizes, counts: 3.5 is no window
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def _path(value: Any, key: str) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise ConfigError(f"{key} must be a path, not {value!r}")
    try:
        return Path(value).expanduser().absolute()  # workers may run in another folder
    except RuntimeError as exc:  # "~someone/..." for an unknown user
        raise ConfigError(f"{key} {str(value)!r}: {exc}") from None


def _whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{key} must be a whole number, not {value!r}")
    return int(value)


def _channels(value: Any) -> tuple[int, ...]:
    """``1``, ``"1,2"`` or ``[1, 2]`` (YAML and the command line write all three)."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return tuple(parse_ranges(value))
        except ConfigError as exc:
            raise ConfigError(f"fl_channels: {exc}") from None
    if not isinstance(value, list | tuple):
        raise ConfigError(f"fl_channels must be channel indices like [1, 2], not {value!r}")
    return tuple(_whole(channel, "every fl_channels entry") for channel in value)


def _names(value: Any, key: str) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]``."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{key} must be a list of names, not {value!r}")
    return tuple(item.strip() for item in items if item.strip())


def _selection(value: Any) -> str:
    """FOVs as text: ``"all"``, ``"0-3,5"``; a number or a YAML list is written as such text."""
    if isinstance(value, str):
        return value
    return format_ranges(parse_ranges(value))
