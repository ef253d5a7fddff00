"""Property-based tests of the parsers of user-written input: whatever they are given, they
return a valid result or raise fovflow's own error (a one-line message in the CLI), never
another exception.

Covered: index selections as YAML values (text selections are in tests/test_ranges.py),
samples.yaml, the run configuration YAML, traces CSV, and wide and long sample tables.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fovflow.analysis.merge import read_samples
from fovflow.errors import ConfigError, FovflowError, TableError
from fovflow.io.tables import TRACE_COLUMNS, read_long_table, read_sample_table, read_traces
from fovflow.ranges import MAX_INDEX, parse_ranges
from fovflow.workflow.config import WorkflowConfig

FILE_IO = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the files every example rewrites (hypothesis reuses module fixtures)."""
    return tmp_path_factory.mktemp("parsers")


# Anything yaml.safe_load can hand a parser.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 40),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                     st.sampled_from(["0-3,5", "all", "1,x", "-1", "3-1", "~nobody/x"]))
yaml_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 5)),
                                            inner, max_size=4)),
    max_leaves=12)


def _write_yaml(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


# --- index selections --------------------------------------------------------------------

_selection_items = st.one_of(st.integers(-2, 60), st.text("0123456789-, x", max_size=6),
                             st.none(), st.floats(allow_nan=True), st.booleans())


@settings(max_examples=200)
@given(st.one_of(yaml_values, st.lists(_selection_items, max_size=5)),
       st.one_of(st.none(), st.integers(1, 50)))
def test_any_yaml_value_selects_valid_indices_or_raises_config_error(value: Any,
                                                                     limit: int | None) -> None:
    try:
        indices = parse_ranges(value, limit=limit)
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    assert indices == sorted(set(indices)) and indices
    assert all(0 <= index <= (MAX_INDEX if limit is None else limit - 1) for index in indices)


# --- samples.yaml ------------------------------------------------------------------------

_names = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,5}", fullmatch=True),
                   st.integers(0, 99), _scalars)
_fovs = st.one_of(st.text("0123456789-, ", max_size=8), st.integers(-1, 20),
                  st.lists(st.one_of(st.integers(-1, 20), st.text("0123456789-", max_size=4)),
                           max_size=4),
                  _scalars)
_entries = st.one_of(
    st.fixed_dictionaries({"name": _names, "fovs": _fovs}),
    st.dictionaries(st.sampled_from(["name", "fovs", "fov", "label"]),
                    st.one_of(_names, _fovs), max_size=3),
    yaml_values)
samples_documents = st.one_of(
    st.fixed_dictionaries({"samples": st.lists(_entries, max_size=4)}),
    st.dictionaries(st.sampled_from(["samples", "groups"]), yaml_values, max_size=2),
    yaml_values)


@FILE_IO
@given(samples_documents)
def test_any_samples_mapping_loads_disjoint_named_samples_or_raises_config_error(
        scratch: Path, document: Any) -> None:
    path = _write_yaml(scratch / "samples.yaml", document)
    try:
        samples = read_samples(path)
    except ConfigError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        return
    names = [sample.name for sample in samples]
    assert samples and len(set(names)) == len(names)
    assert all(isinstance(name, str) and name for name in names)
    fovs = [fov for sample in samples for fov in sample.fovs]
    assert len(fovs) == len(set(fovs)) and min(fovs) >= 0  # no FOV in two samples
    assert all(list(sample.fovs) == sorted(sample.fovs) for sample in samples)


@FILE_IO
@given(st.one_of(st.text(max_size=80), st.binary(max_size=40)))
def test_any_samples_file_content_loads_or_raises_config_error(scratch: Path,
                                                               content: str | bytes) -> None:
    path = _written(scratch / "samples_text.yaml", content)
    try:
        read_samples(path)
    except ConfigError as error:
        assert "\n" not in str(error)


# --- run configuration YAML --------------------------------------------------------------

# Parameters of the steps with values near what a user writes (and past it); sizes stay
# small so that no example asks the dry run for a gigantic kernel.
_step_values = st.one_of(st.integers(-3, 25), st.floats(-1, 30), st.just(math.nan),
                         st.booleans(), st.none(), st.text(max_size=4))
_steps = {
    "segmentation": ["window", "bins", "n_sigma", "opening_size", "opening_iterations",
                     "closing_size", "closing_iterations", "windw"],
    "background": ["weight", "tile_size", "dilation", "size"],
    "tracking": ["min_iou", "min_size", "max_size", "connectivity", "iou"],
    "extraction": ["min_length", "border", "length"],
}
_config_values = {
    "input": st.one_of(st.sampled_from(["movie.ome.tif", "~/movie.ome.tif",
                                        "~nobody-here/movie.ome.tif", ""]), _scalars),
    "output": st.one_of(st.just("out"), st.just("out"), _scalars),
    "segment_channel": st.one_of(st.integers(-1, 4), _scalars),
    "fl_channels": st.one_of(st.lists(st.integers(-1, 4), max_size=3), st.integers(-1, 4),
                             st.sampled_from(["1", "1,2", "1-2", "x"]), yaml_values),
    "fovs": st.one_of(st.sampled_from(["all", "0-3", "0-3,x", ""]), _fovs),
    "features": st.one_of(st.lists(st.sampled_from(["intensity_total", "area", "volume"]),
                                   max_size=3),
                          st.sampled_from(["area", "area,intensity_total"]), _scalars),
    # never an existing folder: a plugins folder is imported
    "plugins": st.one_of(st.lists(st.just("/nonexistent/plugins"), max_size=1),
                         st.just([]), st.none(), st.integers()),
    **{step: st.one_of(st.dictionaries(st.sampled_from(names), _step_values, max_size=3),
                       _scalars)
       for step, names in _steps.items()},
    "n_workers": st.one_of(st.integers(-1, 4), _scalars),
    "batch_size": st.one_of(st.none(), st.integers(-1, 4), _scalars),
    "executor": st.one_of(st.sampled_from(["process", "thread", "serial", "dask", "gpu"]),
                          _scalars),
    "scheduler": st.one_of(st.none(), st.just("tcp://localhost:8786"), _scalars),
    "colour": st.just("red"),
}
_paths = {"input", "output"}
config_documents = st.one_of(
    st.fixed_dictionaries({key: _config_values[key] for key in sorted(_paths)},
                          optional={k: v for k, v in _config_values.items() if k not in _paths}),
    st.dictionaries(st.sampled_from(sorted(_config_values)), yaml_values, max_size=5),
    yaml_values)


@FILE_IO
@given(config_documents)
def test_any_config_mapping_loads_a_valid_config_or_raises_a_fovflow_error(
        scratch: Path, document: Any) -> None:
    path = _write_yaml(scratch / "run.yaml", document)
    try:
        config = WorkflowConfig.load(path)
    except FovflowError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(config.segment_channel, int)
    assert config.fl_channels is None or (
        config.fl_channels and all(isinstance(c, int) for c in config.fl_channels))
    assert isinstance(config.n_workers, int) and config.n_workers >= 1
    assert config.fovs.strip().lower() == "all" or parse_ranges(config.fovs)
    assert WorkflowConfig.from_dict(config.to_dict()) == config  # what a run saves reloads


@FILE_IO
@given(st.one_of(st.text(max_size=80), st.binary(max_size=40)))
def test_any_config_file_content_loads_or_raises_config_error(scratch: Path,
                                                              content: str | bytes) -> None:
    path = _written(scratch / "run_text.yaml", content)
    try:
        WorkflowConfig.load(path, input="movie.ome.tif", output="out")
    except FovflowError as error:
        assert "\n" not in str(error)


# --- traces CSV --------------------------------------------------------------------------

_cells = st.one_of(st.integers(-2, 30).map(str), st.sampled_from(
    ["", "nan", "NaN", "inf", "-inf", "1.5", "2.0", "True", "False", "true", "0", "1", "x",
     "1e30", " 3 ", '"4"', "NA"]), st.floats(allow_nan=True).map(repr))
_columns = st.lists(st.sampled_from([*TRACE_COLUMNS, "intensity_total", "area", "good"]),
                    min_size=0, max_size=10)


@st.composite
def csv_texts(draw: st.DrawFn, columns: st.SearchStrategy[list[str]],
              complete: list[str]) -> str:
    """A header and rows of CSV; now and then a row one value short or long."""
    header = draw(columns)
    if draw(st.booleans()):  # half the time well-formed: every `complete` column, any order
        header = draw(st.permutations(complete))
    n_rows = draw(st.integers(0, 5))
    rows = []
    for _ in range(n_rows):
        width = len(header) + draw(st.sampled_from([0, 0, 0, 0, -1, 1]))
        rows.append(",".join(draw(_cells) for _ in range(max(width, 0))))
    return "\n".join([",".join(header), *rows]) + "\n"


@FILE_IO
@given(st.one_of(csv_texts(_columns, [*TRACE_COLUMNS, "intensity_total"]), st.text(max_size=60)))
def test_any_traces_csv_reads_as_a_checked_table_or_raises_table_error(scratch: Path,
                                                                       text: str) -> None:
    path = scratch / "traces_ch_1.csv"
    path.write_text(text, encoding="utf-8")
    try:
        traces = read_traces(path)
    except TableError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        return
    assert set(TRACE_COLUMNS) <= set(traces.columns)
    for column in ("fov", "cell", "frame"):
        assert traces[column].dtype.kind == "i" and (traces[column] >= 0).all()
    assert traces["good"].dtype == bool
    assert np.isfinite(traces["time"].to_numpy(dtype=float)).all()
    for column in traces.columns.drop(["good"]):
        assert traces[column].dtype.kind in "iuf", column  # positions, features: numbers/NaN


# --- wide sample tables ------------------------------------------------------------------

_table_columns = st.lists(st.sampled_from(["time", "fov_000_cell_1", "fov_002_cell_13",
                                           "fov_2_cell_1", "cell_4", "time"]),
                          min_size=0, max_size=4)


@FILE_IO
@given(st.sampled_from(["# Time units: min", "# Time units: s", "# Time units: frame",
                        "# Time units: weeks", "time,fov_000_cell_1", ""]),
       st.one_of(csv_texts(_table_columns, ["time", "fov_000_cell_1", "fov_001_cell_2"]),
                 st.text(max_size=60)))
def test_any_sample_table_reads_with_unique_finite_times_or_raises_table_error(
        scratch: Path, header: str, body: str) -> None:
    path = scratch / "table.csv"
    path.write_text(f"{header}\n{body}", encoding="utf-8")
    try:
        table = read_sample_table(path)
    except TableError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        return
    times = table.values.index.to_numpy(dtype=float)
    assert np.isfinite(times).all() and len(set(times)) == len(times)
    assert table.time_unit in ("s", "min", "h", "frame")
    assert len(table.cells) == table.values.shape[1]
    assert all(not isinstance(v, str) and (math.isnan(v) or isinstance(v, float))
               for v in table.values.to_numpy().ravel())


_long_columns = st.lists(st.sampled_from(["time", "fov", "cell", "value", "extra"]),
                         min_size=0, max_size=5)


@FILE_IO
@given(st.sampled_from(["# Time units: h", "# Time units: frame", "time,fov,cell,value"]),
       csv_texts(_long_columns, ["time", "fov", "cell", "value"]))
def test_any_long_table_reads_as_a_wide_table_or_raises_table_error(
        scratch: Path, header: str, body: str) -> None:
    path = scratch / "long.csv"
    path.write_text(f"{header}\n{body}", encoding="utf-8")
    try:
        table = read_long_table(path)
    except TableError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        return
    assert np.isfinite(table.values.index.to_numpy(dtype=float)).all()
    assert all(fov >= 0 and cell >= 0 for fov, cell in table.cells)


def _written(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path
