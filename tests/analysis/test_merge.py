"""Merging a run's traces into per-sample tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import write_run

from fovflow.analysis.merge import Sample, merge_run, read_samples
from fovflow.errors import ConfigError
from fovflow.io.tables import read_long_table, read_sample_table


def test_samples_yaml_accepts_ranges_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "samples.yaml"
    path.write_text('samples:\n  - {name: ctrl, fovs: "0-3,5"}\n'
                    '  - {name: drug, fovs: [6, "8-9"]}\n')
    assert read_samples(path) == [Sample("ctrl", (0, 1, 2, 3, 5)), Sample("drug", (6, 8, 9))]


@pytest.mark.parametrize(("text", "fragment"), [
    ("samples: [ {name: a, fovs: '0-1'\n", "not valid YAML"),
    ("groups: []\n", "expected 'samples:'"),
    ("samples:\n  - {name: a, fovs: '0-3'}\n  - {name: b, fovs: '3-4'}\n",
     "FOV(s) 3 are in both sample 'a' and 'b'"),
    ("samples:\n  - {name: a, fovs: '4-2'}\n", "sample 'a': reversed range"),
    ("samples:\n  - {name: a}\n", "exactly 'name' and 'fovs'"),
    ("samples:\n  - {name: a/b, fovs: 1}\n", "sample name 'a/b'"),
])
def test_bad_samples_files_are_clear_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "samples.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        read_samples(path)
    assert fragment in str(error.value) and str(path) in str(error.value)


def test_merge_writes_wide_and_long_tables_honouring_good_and_min_length(run_dir: Path) -> None:
    written = merge_run(run_dir, [Sample("ctrl", (0, 2)), Sample("other", (1,))], min_length=10)
    names = sorted(p.name for p in written)
    assert names == sorted(f"{s}_{f}_ch_1.csv" for s in ("ctrl", "other")
                           for f in ("intensity_total", "intensity_mean", "area"))
    table = read_sample_table(run_dir / "samples" / "ctrl_intensity_total_ch_1.csv")
    assert table.time_unit == "s"
    # cell 3 has 6 frames < min_length; FOV 1 belongs to the other sample
    assert list(table.values.columns) == ["fov_000_cell_1", "fov_000_cell_2", "fov_000_cell_4",
                                          "fov_002_cell_1", "fov_002_cell_2", "fov_002_cell_4"]
    assert table.values.shape[0] == 30
    assert np.isnan(table.values["fov_000_cell_1"].iloc[[5, 6]]).all()  # frames not good
    assert table.values["fov_002_cell_2"].iloc[4] == 2000 + 20 + 4
    assert table.values.index[1] == 601.0  # median over FOVs 0 and 2 of frame 1's time
    long = read_long_table(run_dir / "samples" / "long" / "ctrl_intensity_total_ch_1.csv")
    assert long.values.equals(table.values.dropna(how="all"))


def test_merge_rejects_unknown_fovs_and_needs_a_time_unit(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", fovs=(0, 1), manifest=False)
    with pytest.raises(ConfigError, match="pass --time-unit"):
        merge_run(run, [Sample("a", (0,))])
    with pytest.raises(ConfigError, match=r"FOV\(s\) 4-5 without traces .*FOVs with traces: 0-1"):
        merge_run(run, [Sample("a", (0, 4, 5))], time_unit_name="s")
    assert merge_run(run, [Sample("a", (0, 1))], time_unit_name="frame")
    assert read_sample_table(run / "samples" / "a_area_ch_1.csv").time_unit == "frame"


def test_time_unit_option_must_agree_with_the_manifest(run_dir: Path) -> None:
    with pytest.raises(ConfigError, match="contradicts"):
        merge_run(run_dir, [Sample("a", (0,))], time_unit_name="frame")
