"""Merging a run's traces into per-sample tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from analysis_helpers import TIMES_H, write_run

from cli_assertions import assert_one_line_error, fovflow
from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.merge import Sample, merge_run, read_samples
from fovflow.analysis.simulate import simulate_traces
from fovflow.analysis.tables_fit import fit_tables
from fovflow.errors import ConfigError
from fovflow.io.tables import read_fitted_table, read_long_table, read_sample_table


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


def _write_lineage_run(run_dir: Path, mother_total: np.ndarray, division: int,
                       share: float = 0.4, missing: tuple[int, int] | None = None) -> Path:
    """FOV 0: cell 1 until frame `division` - 1, then daughters 2 and 3 (parent 1) carrying
    `share` and 1 - `share` of `mother_total`; cell 4 on its own in every frame. `missing`:
    (cell, frame) left out of the traces."""
    rows = []
    for frame, total in enumerate(mother_total):
        cells = ([(1, 0, total)] if frame < division
                 else [(2, 1, share * total), (3, 1, (1 - share) * total)])
        for cell, parent, value in [*cells, (4, 0, 50.0)]:
            if (cell, frame) != missing:
                rows.append({"fov": 0, "cell": cell, "frame": frame, "time": 600.0 * frame,
                             "good": True, "position_x": 1.0, "position_y": 2.0,
                             "parent": parent, "intensity_total": value,
                             "intensity_mean": value / 100, "area": 100.0})
    folder = run_dir / "fov_000"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "traces_ch_1.csv", index=False)
    (run_dir / "processing_results.yaml").write_text("time_unit: s\n")
    return run_dir


def test_lineage_sum_continues_the_mother_through_her_division(tmp_path: Path) -> None:
    totals = 100.0 + 10 * np.arange(30)
    run = _write_lineage_run(tmp_path / "run", totals, division=12)
    notes: list[str] = []
    merge_run(run, [Sample("s", (0,))], lineage="sum", on_note=notes.append)
    total = read_sample_table(run / "samples" / "s_intensity_total_ch_1.csv").values
    assert list(total.columns) == ["fov_000_cell_1", "fov_000_cell_4"]
    np.testing.assert_allclose(total["fov_000_cell_1"], totals)
    area = read_sample_table(run / "samples" / "s_area_ch_1.csv").values
    assert area["fov_000_cell_1"].iloc[11] == 100 and area["fov_000_cell_1"].iloc[12] == 200
    # A mean does not add up: it stays one column per cell, and the note says so.
    mean = read_sample_table(run / "samples" / "s_intensity_mean_ch_1.csv").values
    assert list(mean.columns) == [f"fov_000_cell_{c}" for c in (1, 2, 3, 4)]
    assert notes == ["sample 's' channel 1: intensity_mean kept per cell (only area, "
                     "intensity_total add up over a lineage)"]
    record = yaml.safe_load((run / "samples" / "merge.yaml").read_text())
    assert record["lineage"] == "sum"
    assert record["tables"] == {"s_intensity_total_ch_1.csv": "sum",
                                "s_intensity_mean_ch_1.csv": "split", "s_area_ch_1.csv": "sum"}


def test_lineage_split_is_the_default_and_keeps_daughters_apart(tmp_path: Path) -> None:
    run = _write_lineage_run(tmp_path / "run", 100.0 + np.arange(30), division=10)
    merge_run(run, [Sample("s", (0,))])
    total = read_sample_table(run / "samples" / "s_intensity_total_ch_1.csv").values
    assert list(total.columns) == [f"fov_000_cell_{c}" for c in (1, 2, 3, 4)]
    assert total["fov_000_cell_1"].notna().sum() == 10
    assert total["fov_000_cell_2"].iloc[10] == pytest.approx(0.4 * 110)
    record = yaml.safe_load((run / "samples" / "merge.yaml").read_text())
    assert record["lineage"] == "split" and set(record["tables"].values()) == {"split"}


def test_a_daughter_missing_from_a_frame_leaves_the_lineage_frame_out(tmp_path: Path) -> None:
    run = _write_lineage_run(tmp_path / "run", 100.0 + np.arange(30), division=10,
                             missing=(3, 20))
    merge_run(run, [Sample("s", (0,))], lineage="sum")
    lineage = read_sample_table(run / "samples" / "s_intensity_total_ch_1.csv").values[
        "fov_000_cell_1"]
    assert np.isnan(lineage.iloc[20]) and lineage.drop(lineage.index[20]).notna().all()


def test_an_unknown_lineage_mode_is_refused_before_anything_is_written(run_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown lineage mode 'both'; choose split or sum"):
        merge_run(run_dir, [Sample("a", (0,))], lineage="both")
    assert not (run_dir / "samples").exists()


def test_a_summed_lineage_fits_like_the_undivided_cell(tmp_path: Path) -> None:
    # One maturation trace over 30 h; the cell divides at 12 h into daughters of 40 and 60 %.
    values, truth = simulate_traces("maturation", 1, TIMES_H, fixed={"km": 1.28}, seed=4)
    run = _write_lineage_run(tmp_path / "run", values[:, 0], division=72)
    fitted = {}
    for mode in ("sum", "split"):
        merge_run(run, [Sample("s", (0,))], lineage=mode)
        table = run / "samples" / "s_intensity_total_ch_1.csv"
        output = fit_tables([table], FitSettings.create("maturation"), force=True)[0]
        fitted[mode] = read_fitted_table(output)[0].set_index("cell")
    lineage = fitted["sum"].loc[1]
    assert lineage["success"] and lineage["r_squared"] > 0.99
    for name in ("delta", "beta", "t0"):
        assert lineage[name] == pytest.approx(truth[name].iloc[0], rel=0.1), name
    # Kept apart, the mother and her daughters are three shorter fits.
    assert sorted(fitted["split"].index) == [1, 2, 3, 4]


def test_merge_command_sums_lineages_and_refuses_an_unknown_mode(tmp_path: Path) -> None:
    run = _write_lineage_run(tmp_path / "run", 100.0 + np.arange(30), division=10)
    samples = tmp_path / "samples.yaml"
    samples.write_text('samples:\n  - {name: s, fovs: "0"}\n')
    result = fovflow("merge", run, "--samples", samples, "--lineage", "sum")
    assert result.exit_code == 0, result.output
    assert "intensity_mean kept per cell" in result.stdout
    assert "s_intensity_total_ch_1.csv (2 cells)" in result.stdout  # cells 1 (+2, 3) and 4
    assert_one_line_error(fovflow("merge", run, "--samples", samples, "--lineage", "both"),
                          "unknown lineage mode 'both'")


def test_a_daughter_lost_before_the_movie_ends_ends_her_lineage(tmp_path: Path) -> None:
    run = _write_lineage_run(tmp_path / "run", 100.0 + np.arange(30), division=10)
    traces = pd.read_csv(run / "fov_000" / "traces_ch_1.csv")
    traces = traces[~((traces["cell"] == 3) & (traces["frame"] > 20))]  # tracking lost her
    traces.to_csv(run / "fov_000" / "traces_ch_1.csv", index=False)
    merge_run(run, [Sample("s", (0,))], lineage="sum")
    values = read_sample_table(run / "samples" / "s_intensity_total_ch_1.csv").values
    lineage = values["fov_000_cell_1"]
    np.testing.assert_allclose(lineage.iloc[:21], 100.0 + np.arange(21))
    assert lineage.iloc[21:].isna().all()
    assert values["fov_000_cell_4"].notna().all()  # its own track goes to the end
