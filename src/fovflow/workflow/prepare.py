"""`prepare_run`: a configuration checked against everything outside it, once, before a run.

`WorkflowConfig` checks what it can judge alone and does no I/O. Everything else is checked
here, in this order, so that the first mistake is the one reported and nothing is written
before it is: the plugins load and the features are known, every step's parameters work
(`check_steps`: each algorithm runs on one blank frame, so a bad parameter fails here and not
in every worker), then the input's channels, FOVs, Z planes and pixel size fit the
configuration, the output folder is writable and holds no other input's run. The run folder's
manifest is read once, here, and goes with the `PreparedRun` to the run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fovflow.errors import ConfigError
from fovflow.execution import ExecutorSpec
from fovflow.io.manifest import RecordedManifest
from fovflow.io.microscopy import DatasetMetadata, open_dataset
from fovflow.plugins import load_processing_plugins
from fovflow.processing.extraction import FEATURES
from fovflow.workflow.config import STEP_FUNCTIONS, WorkflowConfig, diameter_px

__all__ = ["PreparedRun", "check_steps", "prepare_run"]

_DRY_RUN_DIAMETER = 12.0  # px: fits the dry run's 32x48 frame, and the learned method takes it


@dataclass(frozen=True)
class PreparedRun:
    """A configuration checked against its plugins, steps, input file and run folder: what a
    run of it needs. For one run: the run rewrites the folder it was checked against."""

    config: WorkflowConfig  # its measured channels chosen for the file (`for_file`)
    metadata: DatasetMetadata  # as the workers read the file (a Z stack's plane or projection)
    fovs: tuple[int, ...]  # the FOVs to process
    parameters: dict[str, dict[str, Any]]  # every step's effective parameters
    recorded: RecordedManifest  # the run folder's manifest as it was read

    @property
    def execution(self) -> ExecutorSpec:
        """The executor the run builds unless given one."""
        return self.config.execution


def prepare_run(config: WorkflowConfig, metadata: DatasetMetadata | None = None) -> PreparedRun:
    """Check `config` against its plugins, its steps, the input file and the output folder.

    Parameters
    ----------
    config : WorkflowConfig
    metadata : DatasetMetadata, optional
        The input's metadata if the caller has just read it (a GUI has): saves reading the
        file again. Ignored unless it describes `config.input`.

    Returns
    -------
    PreparedRun
        What `fovflow.workflow.run.run_workflow` runs. Nothing has been written.

    Raises
    ------
    FovflowError
        The first mistake found (`ConfigError`, `PluginError`, an unreadable input file), in
        one line that says what to do.

    Notes
    -----
    Reads the input's metadata (unless given) and the run folder's manifest, once each; the
    steps' dry run takes about a millisecond.
    """
    parameters = check_steps(config)
    if metadata is None or metadata.path != config.input.resolve():
        with open_dataset(config.input) as dataset:
            metadata = dataset.metadata
    config = config.for_file(metadata)
    _check_channels(config, metadata)
    fovs = tuple(config.selected_fovs(metadata))
    read = _as_read(config, metadata, parameters)
    _check_writable(config.output)
    recorded = RecordedManifest.read(config.output, metadata.path)  # before the folder is touched
    return PreparedRun(config, read, fovs, parameters, recorded)


def check_steps(config: WorkflowConfig) -> dict[str, dict[str, Any]]:
    """Load `config`'s plugins, check its features, and run every step once on a blank frame
    with its parameters; return every step's effective parameters.

    No file is read but the plugins: cheap enough for a window to call as a user clicks.

    Raises
    ------
    ConfigError
        For an unknown feature, segmentation method or parameter, or a value a step refuses.
    PluginError
        For a plugin that cannot be loaded.
    """
    load_processing_plugins(config.plugins)
    unknown = [name for name in config.features if name not in FEATURES]
    if unknown or not config.features:
        raise ConfigError(f"unknown features {unknown or '(none)'}; choose from "
                          f"{', '.join(sorted(FEATURES))}")
    parameters = config.step_parameters()
    _dry_run(parameters)
    return parameters


def _dry_run(parameters: Mapping[str, Mapping[str, Any]]) -> None:
    """Run each step on one blank 32x48 frame so the algorithms check their own parameters
    (not square, so a segmentation method that swaps the axes is caught too)."""
    blank = np.zeros((1, 32, 48), np.uint16)
    for step, function in STEP_FUNCTIONS.items():
        inputs = {"background": (blank, blank), "extraction": (blank, blank)}.get(step, (blank,))
        values = dict(parameters[step])
        if step == "segmentation":  # its size is checked against the file, later
            values["diameter"] = _DRY_RUN_DIAMETER
        try:
            function(*inputs, **values)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"invalid {step} parameters: {exc}") from exc
        except Exception as exc:  # a plugin method's own error: report it as the plugin's
            if step != "segmentation":
                raise
            raise ConfigError(f"segmentation method {values.get('method')!r} fails on a blank "
                              f"frame: {type(exc).__name__}: {exc}") from exc


def _check_channels(config: WorkflowConfig, metadata: DatasetMetadata) -> None:
    for role, channel in [("segmented", config.segment_channel),
                          *(("fluorescence", c) for c in config.fl_channels or ())]:
        if not 0 <= channel < metadata.n_channels:
            names = ", ".join(f"{i}: {n}" for i, n in enumerate(metadata.channel_names))
            raise ConfigError(f"{role} channel {channel} is out of range; {metadata.path.name}"
                              f" has {metadata.n_channels} channels ({names})")


def _as_read(config: WorkflowConfig, metadata: DatasetMetadata,
             parameters: Mapping[str, Mapping[str, Any]]) -> DatasetMetadata:
    """The file's metadata as the workers read it (a Z stack's plane or projection), once
    its Z planes and pixel size are checked to fit `config`'s ``z`` and cell diameter."""
    if metadata.n_z > 1 and config.z is None:
        raise ConfigError(f"{metadata.path.name} has {metadata.n_z} Z planes: pick one Z plane"
                          f" with --z 0 to {metadata.n_z - 1}, or project them with --z max "
                          "or --z mean (config key z)")
    read = metadata.with_z(config.z)  # a plane the file does not have fails here
    diameter_px(parameters["segmentation"]["diameter"], read)
    return read


def _check_writable(folder: Path) -> None:
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        raise ConfigError(f"output {folder} is a file, not a folder; choose a folder with -o")
    if not existing.is_dir():
        raise ConfigError(f"output {folder} is inside a file ({existing}); choose a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {existing} is not writable; choose another with -o")
