"""What a processing run does: `WorkflowConfig`, validated up front, saved with the run.

Step parameters are overrides of the processing functions' own keyword defaults, so a default
lives in exactly one place (the algorithm's signature). `step_parameters()` gives the effective
values, which the manifest hashes to decide what a rerun can skip.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fovflow.errors import ConfigError
from fovflow.io.microscopy import DatasetMetadata
from fovflow.plugins import load_feature_plugins
from fovflow.processing.background import correct_background
from fovflow.processing.extraction import DEFAULT_FEATURES, FEATURES, extract_features
from fovflow.processing.segmentation import segment_phase_contrast
from fovflow.processing.tracking import track_cells
from fovflow.ranges import parse_ranges

EXECUTORS = ("process", "thread", "serial", "dask")
# Keyword parameters of each step's algorithm that a user may set (progress/out are ours).
_STEP_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "segmentation": segment_phase_contrast,
    "background": correct_background,
    "tracking": track_cells,
    "extraction": extract_features,
}
# Set by the engine itself, not by a user.
_NOT_PARAMETERS = {"progress", "out", "features", "times", "fov"}


@dataclass(frozen=True)
class WorkflowConfig:
    """Everything a run needs. Paths may be relative to the working directory."""

    input: Path
    output: Path
    pc_channel: int = 0
    fl_channels: tuple[int, ...] = (1,)
    fovs: str = "all"
    features: tuple[str, ...] = DEFAULT_FEATURES
    plugins: tuple[str, ...] = ()  # folders of plugin files (besides $FOVFLOW_PLUGINS)
    segmentation: Mapping[str, Any] = field(default_factory=dict)
    background: Mapping[str, Any] = field(default_factory=dict)
    tracking: Mapping[str, Any] = field(default_factory=dict)
    extraction: Mapping[str, Any] = field(default_factory=dict)
    n_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    batch_size: int | None = None
    executor: str = "process"
    scheduler: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input", Path(self.input).expanduser())
        object.__setattr__(self, "output", Path(self.output).expanduser())
        object.__setattr__(self, "fl_channels", tuple(int(c) for c in self.fl_channels))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "plugins", tuple(str(folder) for folder in self.plugins))
        object.__setattr__(self, "fovs", str(self.fovs))
        if not self.fl_channels:
            raise ConfigError("choose at least one fluorescence channel (--fl)")
        if len(set(self.fl_channels)) != len(self.fl_channels):
            raise ConfigError(f"fluorescence channels {list(self.fl_channels)} repeat a channel")
        if self.pc_channel in self.fl_channels:
            raise ConfigError(f"channel {self.pc_channel} is both the phase-contrast and a "
                              "fluorescence channel; give each its own channel")
        if self.n_workers < 1:
            raise ConfigError(f"n_workers must be at least 1, not {self.n_workers}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor {self.executor!r}; choose {', '.join(EXECUTORS)}")
        load_feature_plugins(self.plugins)
        unknown = [name for name in self.features if name not in FEATURES]
        if unknown or not self.features:
            raise ConfigError(f"unknown features {unknown or '(none)'}; choose from "
                              f"{', '.join(sorted(FEATURES))}")
        if self.scheduler and self.executor != "dask":
            raise ConfigError("a scheduler address needs the dask executor (--executor dask)")
        _dry_run(self.step_parameters())  # bad step parameters fail here, not in every worker
        if self.fovs.strip().lower() != "all":
            parse_ranges(self.fovs)

    def step_parameters(self) -> dict[str, dict[str, Any]]:
        """Effective parameters of every step: the algorithms' defaults with the overrides."""
        return {name: _merge(name, _defaults_of(function), getattr(self, name))
                for name, function in _STEP_FUNCTIONS.items()}

    def selected_fovs(self, metadata: DatasetMetadata) -> list[int]:
        """The FOV indices to process, checked against the file."""
        return parse_ranges(self.fovs, limit=metadata.n_fovs)

    def validate(self, metadata: DatasetMetadata) -> None:
        """Check channels and FOVs against the file and that the output folder is writable."""
        for role, channel in [("phase-contrast", self.pc_channel),
                              *(("fluorescence", c) for c in self.fl_channels)]:
            if not 0 <= channel < metadata.n_channels:
                names = ", ".join(f"{i}: {n}" for i, n in enumerate(metadata.channel_names))
                raise ConfigError(f"{role} channel {channel} is out of range; {metadata.path.name}"
                                  f" has {metadata.n_channels} channels ({names})")
        self.selected_fovs(metadata)
        _check_writable(self.output)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(input=str(self.input), output=str(self.output),
                    fl_channels=list(self.fl_channels), features=list(self.features),
                    plugins=list(self.plugins))
        for name in ("segmentation", "background", "tracking", "extraction"):
            data[name] = dict(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
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
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path, **overrides: Any) -> WorkflowConfig:
        """Read a YAML config; `overrides` (e.g. from the command line) win over the file."""
        try:
            data = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML ({_yaml_problem(exc)})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of configuration keys")
        return cls.from_dict({**data, **overrides})

    def with_overrides(self, **changes: Any) -> WorkflowConfig:
        return replace(self, **changes)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what is wrong and where (PyYAML's own message spans several lines)."""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _dry_run(parameters: Mapping[str, Mapping[str, Any]]) -> None:
    """Run each step on one blank 32x32 frame so the algorithms check their own parameters."""
    blank = np.zeros((1, 32, 32), np.uint16)
    for step, function in _STEP_FUNCTIONS.items():
        inputs = {"background": (blank, blank), "extraction": (blank, blank)}.get(step, (blank,))
        try:
            function(*inputs, **parameters[step])
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"invalid {step} parameters: {exc}") from exc


def _defaults_of(function: Callable[..., Any]) -> dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _NOT_PARAMETERS}


def _merge(step: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{step} parameters must be a mapping of name: value")
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown {step} parameters {unknown}; known: {sorted(defaults)}")
    merged = dict(defaults)
    for name, value in overrides.items():
        default = defaults[name]
        if default is not None and not _same_kind(default, value):
            raise ConfigError(f"{step} parameter {name} must be like {default!r}, not {value!r}")
        merged[name] = value
    return merged


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def _check_writable(folder: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"output {folder} is inside a file ({existing}); choose a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {existing} is not writable; choose another with -o")
