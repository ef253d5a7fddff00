"""Sample, long and fitted tables have Parquet twins with the CSV's columns (pyarrow present)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from analysis_helpers import TIMES_H

from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.simulate import simulate_traces
from fovflow.analysis.tables_fit import fit_tables
from fovflow.io import layout
from fovflow.io.tables import (
    SampleTable,
    cell_column,
    read_fitted_table,
    read_long_table,
    write_long_table,
    write_sample_table,
)


def _table(n: int = 3) -> SampleTable:
    values, _ = simulate_traces("maturation", n, TIMES_H, fixed={"km": 1.28}, seed=4)
    return SampleTable(pd.DataFrame(values, index=pd.Index(TIMES_H, name="time"),
                                    columns=[cell_column(0, i) for i in range(n)]), "h")


def _header(path: Path) -> str:
    return pq.read_schema(path).metadata[b"fovflow"].decode()


def test_wide_and_long_tables_have_parquet_twins_with_the_same_columns(tmp_path: Path) -> None:
    wide, long = tmp_path / "ctrl_intensity_total_ch_1.csv", tmp_path / "long.csv"
    write_sample_table(_table(), wide)
    write_long_table(_table(), long)
    csv = pd.read_csv(wide, skiprows=1)
    parquet = pd.read_parquet(wide.with_suffix(".parquet"))
    assert list(parquet.columns) == list(csv.columns) == ["time", *_table().values.columns]
    pd.testing.assert_frame_equal(parquet, csv)
    assert _header(wide.with_suffix(".parquet")) == wide.read_text().splitlines()[0]
    long_csv = pd.read_csv(long, skiprows=1)
    pd.testing.assert_frame_equal(pd.read_parquet(long.with_suffix(".parquet")), long_csv)
    pd.testing.assert_frame_equal(read_long_table(long).values, _table().values,
                                  check_names=False)


def test_fitted_tables_have_parquet_twins_and_keep_them_with_a_previous_fit(
        tmp_path: Path) -> None:
    table = tmp_path / "ctrl_intensity_total_ch_1.csv"
    write_sample_table(_table(), table)
    fitted_path = fit_tables([table], FitSettings.create("maturation"), curves=True)[0]
    fitted, settings = read_fitted_table(fitted_path)
    twin = fitted_path.with_suffix(".parquet")
    parquet = pd.read_parquet(twin)
    assert list(parquet.columns) == list(fitted.columns)
    numbers = parquet.select_dtypes("number").columns  # text: '' in Parquet, NaN through CSV
    pd.testing.assert_frame_equal(parquet[numbers], fitted[numbers], check_dtype=False)
    assert json.loads(_header(twin).removeprefix("# Fit:")) == settings
    assert fitted_path.with_name(f"{fitted_path.stem}_curves.parquet").is_file()
    before = pd.read_parquet(twin)
    events: list = []
    fit_tables([table], FitSettings.create("maturation", fixed={"km": 1.0}),
               on_event=events.append)
    previous = events[0].previous
    pd.testing.assert_frame_equal(pd.read_parquet(previous.with_suffix(".parquet")), before)
    assert pd.read_parquet(twin)["km"].eq(1.0).all()  # the new fit's twin, not the old one


def test_without_pyarrow_no_twin_is_written_and_an_older_one_is_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.csv"
    write_sample_table(_table(), path)
    assert path.with_suffix(".parquet").is_file()
    monkeypatch.setattr(layout, "WRITES_PARQUET", False)
    write_sample_table(_table(2), path)
    assert path.is_file() and not path.with_suffix(".parquet").exists()
