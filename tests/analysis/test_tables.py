"""Sample, traces and fitted tables: round trips, legacy files, errors naming file and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fovflow.errors import TableError
from fovflow.io.tables import (
    SampleTable,
    read_fitted_table,
    read_long_table,
    read_sample_table,
    read_traces,
    to_hours,
    to_long,
    write_fitted_table,
    write_long_table,
    write_sample_table,
)


def _table() -> SampleTable:
    values = pd.DataFrame({"fov_000_cell_1": [1.0, 2.5, np.nan],
                           "fov_002_cell_10": [4.0, 5.0, 6.0]},
                          index=pd.Index([0.0, 600.0, 1200.0], name="time"))
    return SampleTable(values, "s")


def test_wide_and_long_tables_round_trip(tmp_path: Path) -> None:
    table = _table()
    write_sample_table(table, tmp_path / "wide.csv")
    write_long_table(table, tmp_path / "long.csv")
    assert (tmp_path / "wide.csv").read_text().startswith("# Time units: s\ntime,")
    wide = read_sample_table(tmp_path / "wide.csv")
    long = read_long_table(tmp_path / "long.csv")
    pd.testing.assert_frame_equal(wide.values, table.values)
    pd.testing.assert_frame_equal(long.values, table.values)
    assert wide.time_unit == long.time_unit == "s"
    assert to_long(table).columns.tolist() == ["time", "fov", "cell", "value"]
    assert len(to_long(table)) == 5  # the missing value has no long row


@pytest.mark.parametrize(("unit", "hours"), [("min", 1.0), ("h", 60.0), ("s", 1 / 60)])
def test_legacy_pyama_wide_tables_load_in_their_units(tmp_path: Path, unit: str,
                                                      hours: float) -> None:
    path = tmp_path / "legacy.csv"
    path.write_text(f"# Time units: {unit}\ntime,fov_0_cell_3,fov_1_cell_0\n0,1.5,2\n60,2.5,\n")
    table = read_sample_table(path)
    assert table.cells == [(0, 3), (1, 0)]
    np.testing.assert_allclose(to_hours(table.values.index.to_numpy(), table.time_unit),
                               [0.0, hours])
    assert np.isnan(table.values.iloc[1, 1])


@pytest.mark.parametrize(("text", "fragments"), [
    ("time,fov_0_cell_1\n0,1\n", ["first line must be '# Time units: <unit>'"]),
    ("# Time units: weeks\ntime,fov_0_cell_1\n0,1\n", ["unknown time unit 'weeks'"]),
    ("# Time units: s\ntime,cell_1\n0,1\n", ["column 'cell_1'", "fov_XXX_cell_N"]),
    ("# Time units: s\ntime,fov_0_cell_1\n0,abc\n", ["column 'fov_0_cell_1'", "'abc'"]),
    ("# Time units: s\nt,fov_0_cell_1\n0,1\n", ["no 'time' column"]),
])
def test_bad_sample_tables_name_the_file_and_the_problem(tmp_path: Path, text: str,
                                                         fragments: list[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TableError) as error:
        read_sample_table(path)
    for fragment in [str(path), *fragments]:
        assert fragment in str(error.value)


def test_traces_need_their_columns_and_boolean_good_flags(tmp_path: Path) -> None:
    path = tmp_path / "traces_ch_1.csv"
    path.write_text("fov,cell,frame,time,good,position_x,position_y,area\n0,1,0,0,True,1,2,3\n"
                    "0,1,1,600,False,1,2,3\n")
    assert read_traces(path)["good"].tolist() == [True, False]
    path.write_text("fov,cell,frame,time,good,position_x,area\n0,1,0,0,True,1,3\n")
    with pytest.raises(TableError, match=r"missing column.*position_y"):
        read_traces(path)
    path.write_text("fov,cell,frame,time,good,position_x,position_y,area\n0,1,0,0,maybe,1,2,3\n")
    with pytest.raises(TableError, match="'good' must hold True/False, found 'maybe'"):
        read_traces(path)


@pytest.mark.parametrize("area", [("True", "False"), ("True", "")])
def test_true_or_false_in_a_feature_column_is_not_taken_for_a_number(tmp_path: Path,
                                                                     area) -> None:
    path = tmp_path / "traces_ch_1.csv"
    path.write_text("fov,cell,frame,time,good,position_x,position_y,area\n"
                    f"0,1,0,0,True,1,2,{area[0]}\n0,1,1,600,True,1,2,{area[1]}\n")
    with pytest.raises(TableError, match=r"column 'area' must be numeric, found True in row 1"):
        read_traces(path)


def test_fitted_tables_keep_their_settings(tmp_path: Path) -> None:
    fitted = pd.DataFrame({"fov": [0], "cell": [1], "model": ["trivial"], "success": [True],
                           "r_squared": [0.99], "rmse": [1.0], "ktl": [5.0]})
    write_fitted_table(fitted, tmp_path / "f.csv", {"model": "trivial", "fixed": []})
    again, settings = read_fitted_table(tmp_path / "f.csv")
    pd.testing.assert_frame_equal(again, fitted)
    assert settings == {"model": "trivial", "fixed": []}


def test_times_in_frames_need_a_frame_interval() -> None:
    from fovflow.errors import ConfigError

    with pytest.raises(ConfigError, match="--frame-interval"):
        to_hours(np.arange(3.0), "frame")
    np.testing.assert_allclose(to_hours(np.arange(3.0), "frame", frame_interval_h=0.5),
                               [0, 0.5, 1.0])
