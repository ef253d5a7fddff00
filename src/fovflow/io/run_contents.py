"""What a run folder holds, read for its QC report: manifest, run.log, traces, frames, fits.

Reading only, never writing, and never waiting: a run may be writing the folder right now, so
whatever is complete is read (outputs are renamed into place whole, see `io.store`) and the rest
is reported as missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from numpy.typing import NDArray

from fovflow.errors import ConfigError, FovflowError, MissingFileError, TableError, yaml_problem
from fovflow.io.layout import (
    LOCK_NAME,
    LOG_NAME,
    MANIFEST_NAME,
    SAMPLES_DIR,
    SHIFTS_NAME,
    fov_dir,
    fov_folders,
    trace_files,
)
from fovflow.io.tables import read_traces

# The format `workflow.run` gives run.log: "<date> <time> <LEVEL> <process> <logger>: <message>"
_LOG_LINE = re.compile(r"\S+ \S+ (?P<level>[A-Z]+)\s+\S+ (?P<logger>\S+): (?P<message>.*)")
_RUN_START = re.compile(r"fovflow \S+: run of ")
_FOV_IN_MESSAGE = re.compile(r"\bFOV (\d+)\b")


@dataclass(frozen=True)
class FovRecord:
    """What the manifest records for one FOV (``missing`` when only its folder exists)."""

    fov: int
    status: str
    error: str | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunContents:
    """A run folder's manifest and log, read once; per-FOV data is read on demand."""

    folder: Path
    manifest: dict[str, Any]
    fovs: tuple[FovRecord, ...]
    lock_holder: str | None  # set while a run writes the folder (or after one died in it)
    log_problems: dict[int | None, list[str]]  # the last run's warnings (None: not of a FOV)
    fitted_tables: tuple[Path, ...]

    @property
    def input_path(self) -> str:
        return str((self.manifest.get("input") or {}).get("path", "unknown input"))


def open_run(folder: str | Path) -> RunContents:
    """Read a run folder's manifest, log and list of FOVs and fitted tables.

    Raises
    ------
    MissingFileError
        If `folder` does not exist.
    ConfigError
        If it is not a run folder (no manifest) or its manifest is damaged.
    FovflowError
        If the run holds no FOV yet.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder; give the folder `fovflow run -o` wrote")
    manifest = _read_manifest(folder)
    lock = folder / LOCK_NAME
    holder = (lock.read_text(encoding="utf-8", errors="replace").strip() or "starting"
              if lock.is_file() else None)
    fovs = _fov_records(folder, manifest)
    if not fovs:
        still = f"; a run is still writing it ({holder}): try again later" if holder else ""
        raise FovflowError(f"{folder} holds no FOV yet{still}")
    fitted = tuple(sorted((folder / SAMPLES_DIR).glob("*_fitted_*.csv")))
    return RunContents(folder, manifest, fovs, holder, _log_problems(folder / LOG_NAME), fitted)


def fov_traces(folder: Path, fov: int) -> tuple[pd.DataFrame, bool] | None:
    """The FOV's traces (of its first fluorescence channel) and whether they have lineage
    (a ``parent`` column), or None if the FOV has no traces table yet."""
    tables = list(trace_files(folder, fov).values())
    if not tables:
        return None
    with tables[0].open(encoding="utf-8") as file:
        has_lineage = "parent" in file.readline().strip().split(",")
    return read_traces(tables[0]), has_lineage


def fov_shifts(folder: Path, fov: int) -> NDArray[np.float64] | None:
    """The FOV's stage shifts against the previous frame, (T, 2) dy and dx in pixels, from its
    ``shifts.csv``; None if tracking did not write one (runs before drift correction).

    Raises
    ------
    TableError
        If the file is not a table of numbers.
    """
    path = fov_dir(folder, fov) / SHIFTS_NAME
    if not path.is_file():
        return None
    try:
        return np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 2), ndmin=2)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TableError(f"{path}: not a table of stage shifts ({exc})") from None


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ConfigError(f"{folder} is not a run folder (no {MANIFEST_NAME}); give the folder "
                          "`fovflow run -o` wrote")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problem = yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else type(exc).__name__
        raise ConfigError(f"{path} is damaged ({problem})") from None
    if not isinstance(data, dict) or not isinstance(data.get("fovs", {}), dict):
        raise ConfigError(f"{path} is not a fovflow manifest")
    return data


def _fov_records(folder: Path, manifest: dict[str, Any]) -> tuple[FovRecord, ...]:
    recorded = {int(fov): entry or {} for fov, entry in (manifest.get("fovs") or {}).items()}
    records = []
    for fov in sorted(recorded.keys() | fov_folders(folder).keys()):
        entry = recorded.get(fov, {"status": "missing"})
        seconds = {step: float(info.get("seconds", 0.0))
                   for step, info in (entry.get("steps") or {}).items()}
        records.append(FovRecord(fov, str(entry.get("status", "missing")), entry.get("error"),
                                 seconds))
    return tuple(records)


def _log_problems(path: Path) -> dict[int | None, list[str]]:
    """Warning and error messages of the last run in ``run.log`` (which every run appends to),
    by the FOV they name; a message's traceback lines are left out."""
    if not path.is_file():
        return {}
    problems: dict[int | None, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        message = match["message"]
        if _RUN_START.match(message):
            problems = {}
        elif match["level"] in ("WARNING", "ERROR", "CRITICAL"):
            fov = _FOV_IN_MESSAGE.search(message)
            problems.setdefault(int(fov[1]) if fov else None, []).append(message)
    return problems
