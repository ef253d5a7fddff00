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

Lineages (`LINEAGE_MODES`): ``split``, the default, keeps every cell apart, so a mother's
column ends at her division and each daughter has a column of her own. ``sum`` follows a
lineage as one column named after the cell it began with: in each frame, the sum of its cells
alive then (the mother, then her daughters, then theirs), so an expression trace goes on
through divisions. Only features that add up over cells (`EXTENSIVE_FEATURES`) are summed;
the others (``intensity_mean`` and plugin features, whose sum means nothing) stay one column
per cell, with a note. A lineage's frame counts when each of its cells alive then (between its
first and last frame) has a good value in it: a daughter missing from a frame leaves the frame
out rather than halving the sum; and once a cell of the lineage ends without daughters before
the FOV's last frame (tracking lost her, she left the field), the lineage's column ends there.
How each table was made is recorded in
``RUN_DIR/samples/merge.yaml``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from fovflow.errors import ConfigError, yaml_problem
from fovflow.io.layout import MANIFEST_NAME, SAMPLES_DIR, fov_folders, trace_files
from fovflow.io.manifest import recorded_time_unit
from fovflow.io.store import write_text_atomically
from fovflow.io.tables import (
    SampleTable,
    cell_column,
    feature_columns,
    read_traces,
    time_unit,
    write_long_table,
    write_sample_table,
)
from fovflow.processing.lineage import Lineage
from fovflow.ranges import format_ranges, parse_ranges

__all__ = ["EXTENSIVE_FEATURES", "LINEAGE_MODES", "MERGE_RECORD_NAME", "Sample", "merge_run",
           "read_samples"]

LINEAGE_MODES = ("split", "sum")
EXTENSIVE_FEATURES = frozenset({"intensity_total", "area"})
"""Features of a cell that add up over cells: a lineage's value is the sum of its cells'."""
MERGE_RECORD_NAME = "merge.yaml"

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
            raise ConfigError(f"{path}: sample {number} must have exactly 'name' and 'fovs'; "
                              f"it {_key_problem(entry)}")
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
    lineage: str = "split",
    progress: Callable[[int, int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the wide and long tables of every sample, channel and feature; return the wide ones.

    The time unit comes from the run's manifest (key ``time_unit``) or else `time_unit_name`.
    `lineage` is ``split`` or ``sum`` (see the module notes). `on_note` receives a sentence
    for each sample whose `min_length` was capped at its number of frames, and with ``sum``
    one naming the features kept per cell.

    Raises
    ------
    ConfigError
        When a sample lists FOVs without traces, the time unit is unknown or contradicts
        the manifest, or `lineage` is not one of `LINEAGE_MODES`.
    """
    if lineage not in LINEAGE_MODES:
        raise ConfigError(f"unknown lineage mode {lineage!r}; choose {' or '.join(LINEAGE_MODES)}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder; give the folder of `fovflow run -o`")
    unit = _run_time_unit(run_dir, time_unit_name)
    files = _trace_files(run_dir)
    for sample in samples:
        unknown = [fov for fov in sample.fovs if fov not in files]
        if unknown:
            raise ConfigError(f"sample {sample.name!r} lists FOV(s) {format_ranges(unknown)} "
                              f"without traces in {run_dir} (FOVs with traces: "
                              f"{format_ranges(files) or 'none'})")
    tables: dict[str, SampleTable] = {}
    summed: dict[str, bool] = {}  # per table: lineages summed, or cells apart
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
            times = traces.groupby("frame")["time"].median()
            features = feature_columns(traces)
            apart = [f for f in features if f not in EXTENSIVE_FEATURES]
            if lineage == "sum" and apart and on_note is not None:
                on_note(f"sample {sample.name!r} channel {channel}: {', '.join(apart)} kept "
                        f"per cell (only {', '.join(sorted(EXTENSIVE_FEATURES))} add up over "
                        "a lineage)")
            for feature in features:
                name = f"{sample.name}_{feature}_ch_{channel}.csv"
                summed[name] = lineage == "sum" and feature in EXTENSIVE_FEATURES
                cells = _lineage_sums(traces, feature) if summed[name] else traces
                tables[name] = _wide(cells, feature, unit, needed, times)
        if progress is not None:
            progress(done, len(samples))
    # Written only once every traces file has been read: a bad one leaves the old tables.
    out = run_dir / SAMPLES_DIR
    (out / "long").mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_sample_table(table, out / name)
        write_long_table(table, out / "long" / name)
    record = {"lineage": lineage, "tables": {name: "sum" if summed[name] else "split"
                                             for name in tables}}
    write_text_atomically(out / MERGE_RECORD_NAME, yaml.safe_dump(record, sort_keys=False))
    return [out / name for name in tables]


def _lineage_sums(traces: pd.DataFrame, feature: str) -> pd.DataFrame:
    """Per FOV, lineage and frame: the summed `feature` of the lineage's cells, ``good`` when
    each cell alive in that frame has a good value there and no cell of the lineage has ended
    without daughters before the FOV's last frame; ``cell`` is the lineage's first cell.
    """
    cells = traces.groupby(["fov", "cell"]).agg(parent=("parent", "first"),
                                                first=("frame", "min"), last=("frame", "max"))
    root = pd.Series(0, index=cells.index)
    for _, part in cells.groupby(level="fov"):
        ids = part.index.get_level_values("cell").to_numpy()
        roots = Lineage(ids, part["parent"].to_numpy(), part["first"].to_numpy(),
                        part["last"].to_numpy()).roots()
        root.loc[part.index] = [roots[cell] for cell in ids]
    # A branch lost before the movie ends (tracking lost the cell, it left the field): the
    # lineage's later sums would miss it.
    movie_end = traces.groupby("fov")["frame"].max()
    mothers = pd.MultiIndex.from_arrays([cells.index.get_level_values("fov"), cells["parent"]])
    leaf = ~cells.index.isin(mothers)
    lost = cells["last"].where(leaf & (cells["last"].to_numpy() < movie_end.loc[
        cells.index.get_level_values("fov")].to_numpy()))
    complete_until = lost.groupby([cells.index.get_level_values("fov"), root]).min()
    alive = cells.assign(root=root, frame=[range(a, b + 1) for a, b in
                                           zip(cells["first"], cells["last"], strict=True)])
    expected = alive.explode("frame").groupby(["fov", "root", "frame"]).size()
    usable = traces[traces["good"] & traces[feature].notna()]
    usable = usable.assign(root=root.loc[pd.MultiIndex.from_frame(usable[["fov", "cell"]])]
                           .to_numpy())
    found = usable.groupby(["fov", "root", "frame"])[feature].agg(["sum", "size"])
    found = found.reindex(expected.index)
    until = complete_until.reindex(expected.index.droplevel("frame")).to_numpy()
    complete = ~(expected.index.get_level_values("frame").to_numpy() > until)  # NaN: no end
    sums = pd.DataFrame({"good": (found["size"].to_numpy() == expected.to_numpy()) & complete,
                         feature: found["sum"].to_numpy()}, index=expected.index)
    sums = sums.reset_index().rename(columns={"root": "cell"})
    return sums.astype({"frame": int})


def _wide(traces: pd.DataFrame, feature: str, unit: str, min_length: int,
          times: pd.Series) -> SampleTable:
    """The wide table of `feature` of the cells with `min_length` good frames; `times`: the
    time of every frame of the sample."""
    good = traces[traces["good"] & traces[feature].notna()]
    lengths = good.groupby(["fov", "cell"]).size()
    kept = good.set_index(["fov", "cell"]).loc[lengths.index[lengths >= min_length]].reset_index()
    wide = kept.pivot(index="frame", columns=["fov", "cell"], values=feature).reindex(times.index)
    wide = wide[sorted(wide.columns)]
    wide.columns = [cell_column(fov, cell) for fov, cell in wide.columns]
    wide.index = pd.Index(times.to_numpy(dtype=float), name="time")
    return SampleTable(wide.astype(float), unit)


def _trace_files(run_dir: Path) -> dict[int, dict[int, Path]]:
    return {fov: found for fov in fov_folders(run_dir) if (found := trace_files(run_dir, fov))}


def _key_problem(entry: object) -> str:
    """What is wrong with a sample entry's keys, naming them (and the key a typo meant)."""
    if not isinstance(entry, dict):
        return f"is {entry!r}, not a mapping"
    unknown = sorted(map(str, set(entry) - {"name", "fovs"}))
    if not unknown:
        return f"lacks {' and '.join(repr(k) for k in ('name', 'fovs') if k not in entry)}"
    meant = {key: difflib.get_close_matches(key, ["name", "fovs"], n=1) for key in unknown}
    return "has the unknown key" + ("s " if len(unknown) > 1 else " ") + ", ".join(
        f"{key!r}" + (f" (did you mean {meant[key][0]!r}?)" if meant[key] else "")
        for key in unknown)


def _run_time_unit(run_dir: Path, given: str | None) -> str:
    manifest = run_dir / MANIFEST_NAME
    recorded = recorded_time_unit(run_dir)
    if recorded is None and given is None:
        raise ConfigError(f"{run_dir} records no time unit ({MANIFEST_NAME} has no 'time_unit'); "
                          f"pass --time-unit s or frame")
    if recorded is not None and given is not None and time_unit(given) != time_unit(recorded):
        raise ConfigError(f"--time-unit {given} contradicts {manifest} (time_unit: {recorded})")
    return time_unit(recorded if recorded is not None else given, source=str(manifest))
