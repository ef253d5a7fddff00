"""Group FOVs into samples and merge their traces into per-sample tables.

``samples.yaml``::

    samples:
      - {name: ctrl, fovs: "0-3,5"}
      - {name: drug, fovs: [6, 7, "9-12"]}

`merge_run` writes, per sample, fluorescence channel and feature, a wide table
``RUN_DIR/samples/<sample>_<feature>_ch_<c>.csv`` and the same values in long format in
``RUN_DIR/samples/long/``. Rows are frames; a row's time is the median over the sample's FOVs of
that frame's time. Only frames marked ``good`` count, and only cells with at least
`min_length` of them are kept; a sample recorded over fewer frames than `min_length` asks for
all of its frames instead (with a note), so a short movie does not give empty tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from fovflow.errors import ConfigError, yaml_problem
from fovflow.io.store import MANIFEST_NAME, recorded_time_unit
from fovflow.io.tables import (
    SampleTable,
    cell_column,
    feature_columns,
    read_traces,
    time_unit,
    write_long_table,
    write_sample_table,
)
from fovflow.ranges import format_ranges, parse_ranges

_TRACES = re.compile(r"traces_ch_(\d+)\.csv\Z")
_SAMPLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


@dataclass(frozen=True)
class Sample:
    name: str
    fovs: tuple[int, ...]


def read_samples(path: str | Path) -> list[Sample]:
    """The samples of a ``samples.yaml``; overlapping FOVs and bad entries are `ConfigError`."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such samples file") from None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, unreadable, or not text
        raise ConfigError(f"{path}: cannot read it as a samples file "
                          f"({getattr(exc, 'strerror', None) or 'not UTF-8 text'})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({yaml_problem(exc)})") from None
    entries = document.get("samples") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected 'samples:' with a list of {{name: ..., fovs: ...}}")
    samples: list[Sample] = []
    owner: dict[int, str] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) != {"name", "fovs"}:
            raise ConfigError(f"{path}: sample {number} must have exactly 'name' and 'fovs'")
        name = entry["name"]
        if isinstance(name, int) and not isinstance(name, bool):
            name = str(name)  # "name: 2024" reads as a number
        if not isinstance(name, str) or not _SAMPLE_NAME.match(name) \
                or any(s.name == name for s in samples):
            raise ConfigError(f"{path}: sample name {name!r} must be unique and use only "
                              f"letters, digits, '_', '.' and '-'")
        try:
            fovs = parse_ranges(entry["fovs"])
        except ConfigError as exc:
            raise ConfigError(f"{path}: sample {name!r}: {exc}") from None
        shared = [fov for fov in fovs if fov in owner]
        if shared:
            raise ConfigError(f"{path}: FOV(s) {format_ranges(shared)} are in both sample "
                              f"{owner[shared[0]]!r} and {name!r}")
        owner.update(dict.fromkeys(fovs, name))
        samples.append(Sample(name, tuple(fovs)))
    return samples


def merge_run(
    run_dir: str | Path,
    samples: list[Sample],
    *,
    min_length: int = 10,
    time_unit_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the wide and long tables of every sample, channel and feature; return the wide ones.

    The time unit comes from the run's manifest (key ``time_unit``) or else `time_unit_name`.
    `on_note` receives a sentence for each sample whose `min_length` was capped at its number
    of frames.

    Raises
    ------
    ConfigError
        When a sample lists FOVs without traces, or the time unit is unknown or contradicts
        the manifest.
    """
    run_dir = Path(run_dir)
    unit = _run_time_unit(run_dir, time_unit_name)
    files = _trace_files(run_dir)
    for sample in samples:
        unknown = [fov for fov in sample.fovs if fov not in files]
        if unknown:
            raise ConfigError(f"sample {sample.name!r} lists FOV(s) {format_ranges(unknown)} "
                              f"without traces in {run_dir} (FOVs with traces: "
                              f"{format_ranges(files) or 'none'})")
    tables: dict[str, SampleTable] = {}
    for done, sample in enumerate(samples, start=1):
        channels = sorted({ch for fov in sample.fovs for ch in files[fov]})
        for channel in channels:
            traces = pd.concat([read_traces(files[fov][channel]) for fov in sample.fovs
                                if channel in files[fov]], ignore_index=True)
            n_frames = traces["frame"].nunique()
            needed = min(min_length, n_frames)
            if needed < min_length and on_note is not None:
                on_note(f"sample {sample.name!r} channel {channel}: {n_frames} frames, fewer "
                        f"than the minimum length {min_length}; kept cells with all {needed}")
            for feature in feature_columns(traces):
                name = f"{sample.name}_{feature}_ch_{channel}.csv"
                tables[name] = _wide(traces, feature, unit, needed)
        if progress is not None:
            progress(done, len(samples))
    # Written only once every traces file has been read: a bad one leaves the old tables.
    out = run_dir / "samples"
    (out / "long").mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_sample_table(table, out / name)
        write_long_table(table, out / "long" / name)
    return [out / name for name in tables]


def _wide(traces: pd.DataFrame, feature: str, unit: str, min_length: int) -> SampleTable:
    times = traces.groupby("frame")["time"].median()
    good = traces[traces["good"] & traces[feature].notna()]
    lengths = good.groupby(["fov", "cell"]).size()
    kept = good.set_index(["fov", "cell"]).loc[lengths.index[lengths >= min_length]].reset_index()
    wide = kept.pivot(index="frame", columns=["fov", "cell"], values=feature).reindex(times.index)
    wide = wide[sorted(wide.columns)]
    wide.columns = [cell_column(fov, cell) for fov, cell in wide.columns]
    wide.index = pd.Index(times.to_numpy(dtype=float), name="time")
    return SampleTable(wide.astype(float), unit)


def _trace_files(run_dir: Path) -> dict[int, dict[int, Path]]:
    files: dict[int, dict[int, Path]] = {}
    for folder in sorted(run_dir.glob("fov_*")):
        if folder.is_dir() and folder.name[4:].isdigit():
            for path in folder.iterdir():
                if match := _TRACES.match(path.name):
                    files.setdefault(int(folder.name[4:]), {})[int(match.group(1))] = path
    return files


def _run_time_unit(run_dir: Path, given: str | None) -> str:
    manifest = run_dir / MANIFEST_NAME
    recorded = recorded_time_unit(run_dir)
    if recorded is None and given is None:
        raise ConfigError(f"{run_dir} records no time unit ({MANIFEST_NAME} has no 'time_unit'); "
                          f"pass --time-unit s or frame")
    if recorded is not None and given is not None and time_unit(given) != time_unit(recorded):
        raise ConfigError(f"--time-unit {given} contradicts {manifest} (time_unit: {recorded})")
    return time_unit(recorded if recorded is not None else given, source=str(manifest))
