"""Bad inputs through the `fovflow` command: one clear line, exit status 2, nothing lost.

Every mistake a user can make with a file, an option, a YAML file or a table is reported as one
line ``error: ...`` that names the problem (and, where there is one, what to do), with exit
status 2 and no traceback; the input files and whatever the output folder already held are
left byte for byte as they were (checked by hashing every file before and after). Awkward but
valid data (all-zero frames, one frame, 32x32 px, no cell at all) is processed to empty or short
traces, tables and fits with exit status 0.

The catalogue (``here`` = this file; the others were written with their commands):

Input file (`run`, here; `inspect` in tests/cli/test_cli.py)
  1. missing file                    2. empty file                 3. truncated file
  4. not an image (.ome.tif)         5. wrong extension (.png)     6. plain TIFF without OME
  7. time saved as Z (Z stack)       8. RGB samples
  9. input is a folder                                 -> tests/cli/test_cli.py (inspect)
Options against the file (`run`, here)
 10. phase-contrast channel out of range (names the channels)
 11. fluorescence channel out of range                 -> tests/cli/test_run_cli.py
 12. FOV out of range               13. empty FOV selection ("", ",")
 14. malformed ranges "0-3,x", --fl "1,x"
 15. same channel as PC and FL                         -> tests/cli/test_run_cli.py
 16. reversed range "2-1", unknown executor            -> tests/cli/test_run_cli.py
Output folder (`run`, here)
 17. holds another input's run (its run.log untouched too)
 18. damaged manifest               19. output path is a file
Configuration file (`run --config`)
 20. YAML syntax error                                 -> tests/cli/test_run_cli.py
 21. unknown key   22. wrong types (n_workers, step parameter, fl_channels, not a mapping)
 23. not UTF-8 text   24. missing file   (here; channels and FOVs written as a number, text
     or a list are read alike, not refused)
samples.yaml (`merge`, here; the parser itself in tests/analysis/test_merge.py)
 25. YAML syntax   26. wrong structure (no samples, bare names, fovs: null)
 27. unknown FOV   28. overlapping samples   29. samples path is a folder
Traces CSV (`merge`, here)
 30. missing column   31. empty fov / cell / frame (an error: the row cannot be placed)
 32. empty feature value: NOT an error; that cell has no value at that time (NaN) and every
     other value is merged as usual
Sample table (`fit`, here; the reader in tests/analysis/test_tables.py)
 33. no header line, not UTF-8, empty time, repeated time, too many values in a row, text
     among the numbers, a column not named fov_XXX_cell_N
 34. --fix / --model / missing table                   -> tests/cli/test_analysis_cli.py
Valid but awkward data (`run`, `merge`, `fit`: exit 0, here)
 35. all-zero frames   36. frames without any cell   37. a single frame   38. 32x32 px frames

Property-based tests of the parsers are in test_parsers_property.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bad_input_helpers import assert_success, nothing_changes, write_ome

from cli_assertions import assert_one_line_error, fovflow
from fovflow.io.synthetic import SimulationConfig, write_simulation
from fovflow.io.tables import TRACE_COLUMNS, read_sample_table
from fovflow.workflow.config import WorkflowConfig

FIT = ("--model", "trivial")  # the quickest model; any model fails or succeeds alike here


@pytest.fixture(scope="module")
def finished(small_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of FOV 0 of the small movie, merged into sample tables and fitted."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert_success(fovflow("run", small_image, "-o", run_dir, "--fovs", "0", "--fl", "1",
                           "--executor", "serial", "--min-length", "3"))
    samples = run_dir / "samples.yaml"
    samples.write_text("samples:\n  - {name: ctrl, fovs: '0'}\n")
    assert_success(fovflow("merge", run_dir, "--samples", samples, "--min-length", "3"))
    assert_success(fovflow("fit", run_dir / "samples" / "ctrl_intensity_total_ch_1.csv", *FIT))
    assert (run_dir / "samples" / "ctrl_intensity_total_ch_1_fitted_trivial.csv").is_file()
    return run_dir


@pytest.fixture
def run_dir(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run (traces, manifest, log, sample tables, a fitted table)."""
    return shutil.copytree(finished, tmp_path / "run")


def _run(movie: Path, out: Path, *options: object) -> list[object]:
    return ["run", movie, "-o", out, "--executor", "serial", *options]


# --- input file -------------------------------------------------------------------------------

def _truncated(folder: Path, movie: Path) -> Path:
    path = folder / "cut.ome.tif"
    data = movie.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def _written(name: str, data: bytes) -> Callable[[Path, Path], Path]:
    def make(folder: Path, movie: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name
    return make


def _plain_tiff(folder: Path, movie: Path) -> Path:
    import tifffile

    tifffile.imwrite(folder / "plain.tif", np.zeros((3, 32, 32), np.uint16),
                     photometric="minisblack")
    return folder / "plain.tif"


def _time_as_z(folder: Path, movie: Path) -> Path:
    return write_ome(folder / "z.ome.tif", np.zeros((5, 32, 32), np.uint16), axes="ZYX")


def _rgb(folder: Path, movie: Path) -> Path:
    return write_ome(folder / "rgb.ome.tif", np.zeros((3, 32, 32, 3), np.uint8), axes="TYXS")


@pytest.mark.parametrize(
    ("make", "fragments"),
    [(lambda folder, movie: folder / "absent.ome.tif", ("absent.ome.tif: no such file",
                                                         "check the path")),
     (_written("empty.ome.tif", b""), ("the file is empty (0 bytes)",)),
     (_truncated, ("cut.ome.tif", "truncated", "re-export or re-copy it")),
     (_written("notes.ome.tif", b"hello world " * 200), ("notes.ome.tif: cannot be read",)),
     (_written("cells.png", b"\x89PNG\r\n\x1a\n"), ("unsupported file type", ".ome.tif")),
     (_plain_tiff, ("plain TIFF", "export it as OME-TIFF")),
     (_time_as_z, ("has 5 Z planes", "pick one Z plane")),
     (_rgb, ("holds RGB samples", "one channel per fluorophore"))],
    ids=["missing", "empty", "truncated", "not-an-image", "wrong-extension", "plain-tiff",
         "time-saved-as-z", "rgb"],
)
def test_unusable_input_file_is_refused_and_the_run_folder_is_untouched(
        tmp_path: Path, small_image: Path, run_dir: Path, make, fragments) -> None:
    bad = make(tmp_path, small_image)
    with nothing_changes(bad, small_image, run_dir):
        assert_one_line_error(fovflow(*_run(bad, run_dir)), *fragments)


# --- options checked against the file ------------------------------------------------------

def test_channel_out_of_range_names_the_valid_channels(small_image: Path, run_dir: Path) -> None:
    with nothing_changes(small_image, run_dir):
        assert_one_line_error(fovflow(*_run(small_image, run_dir, "--pc", "5")),
                              "segmented channel 5 is out of range",
                              "3 channels (0: Phase, 1: GFP, 2: mCherry)")


def test_fov_out_of_range_names_the_valid_range(small_image: Path, run_dir: Path) -> None:
    with nothing_changes(small_image, run_dir):
        assert_one_line_error(fovflow(*_run(small_image, run_dir, "--fovs", "0,2-5")),
                              "FOVs", "index 5", "there are 3 (0 to 2)", small_image.name)


@pytest.mark.parametrize(
    ("options", "fragments"),
    [(("--fovs", ""), ("FOVs", "empty item", "write e.g. '0-3,5'")),
     (("--fovs", ","), ("FOVs", "empty item")),
     (("--fovs", "0-3,x"), ("FOVs", "cannot read 'x'", "write e.g. '0-3,5'")),
     (("--fl", "1,x"), ("--fl", "cannot read 'x'")),
     (("--copy", "move"), ("copy must be 'copy' or 'read'", "'move'"))],
    ids=["empty-selection", "only-a-comma", "malformed-fovs", "malformed-fl", "unknown-copy"],
)
def test_empty_or_malformed_selection_is_refused(small_image: Path, run_dir: Path,
                                                 options: tuple[str, ...], fragments) -> None:
    with nothing_changes(small_image, run_dir):
        assert_one_line_error(fovflow(*_run(small_image, run_dir, *options)), *fragments)


# --- output folder -------------------------------------------------------------------------

def test_folder_holding_another_inputs_run_is_refused_untouched(
        tmp_path: Path, small_image: Path, run_dir: Path) -> None:
    # Another recording of the same shape (a byte-identical copy is the same input, moved).
    other = write_simulation(tmp_path / "other.ome.tif",
                             SimulationConfig(n_fovs=3, n_frames=8, height=96, width=128,
                                              n_fluorescence=2, seed=8)).image
    with nothing_changes(small_image, other, run_dir):  # run.log and leftovers included
        assert_one_line_error(fovflow(*_run(other, run_dir)), f"holds a run of {small_image}",
                              "contents differ", "choose another output folder")


def test_damaged_manifest_is_one_line_naming_where(small_image: Path, run_dir: Path) -> None:
    (run_dir / "processing_results.yaml").write_text("fovs: {\n  0: [unclosed\n")
    with nothing_changes(small_image, run_dir):
        assert_one_line_error(fovflow(*_run(small_image, run_dir)),
                              "processing_results.yaml is damaged", "line 3", "move it away")


def test_output_path_that_is_a_file_is_refused(tmp_path: Path, small_image: Path) -> None:
    target = tmp_path / "results.txt"
    target.write_text("my notes\n")
    with nothing_changes(small_image, target):
        assert_one_line_error(fovflow(*_run(small_image, target)),
                              "results.txt is a file, not a folder", "choose a folder")


# --- configuration file --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "fragments"),
    [("colour: red\n", ("unknown configuration keys ['colour']", "known:")),
     ("n_workers: two\n", ("n_workers must be a whole number, not 'two'",)),
     ("segmentation: {window: 3.5}\n", ("segmentation parameter window must be like 3",)),
     ("segmentation: {split: null}\n", ("segmentation parameter split must be like 'bodies'",)),
     ("tracking: 0.2\n", ("tracking parameters must be a mapping",)),
     ("fl_channels: one\n", ("fl_channels", "cannot read 'one'")),
     ("- segment_channel: 0\n", ("must hold a mapping",)),
     (b"segment_channel: \xff\xfe\n", ("not a YAML text file",))],
    ids=["unknown-key", "workers-not-a-number", "float-window", "null-split", "step-not-a-mapping",
         "channels-not-numbers", "not-a-mapping", "not-utf8"],
)
def test_malformed_config_file_is_refused(tmp_path: Path, small_image: Path, run_dir: Path,
                                          text: str | bytes, fragments) -> None:
    config = tmp_path / "run.yaml"
    (config.write_bytes if isinstance(text, bytes) else config.write_text)(text)
    with nothing_changes(config, small_image, run_dir):
        assert_one_line_error(fovflow(*_run(small_image, run_dir, "--config", config)),
                              *fragments)


def test_missing_config_file_is_refused(tmp_path: Path, small_image: Path,
                                        run_dir: Path) -> None:
    with nothing_changes(small_image, run_dir):
        assert_one_line_error(
            fovflow(*_run(small_image, run_dir, "--config", tmp_path / "absent.yaml")),
            "cannot read configuration", "absent.yaml")


@pytest.mark.parametrize(
    ("text", "channels", "fovs"),
    [("fl_channels: 1\nfovs: 2\n", (1,), "2"),
     ("fl_channels: '1,2'\nfovs: [0, '2-3']\n", (1, 2), "0,2-3"),
     ("fl_channels: [2]\nfovs: all\n", (2,), "all")],
)
def test_config_file_may_write_channels_and_fovs_as_numbers_text_or_lists(
        tmp_path: Path, text: str, channels: tuple[int, ...], fovs: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"input: movie.ome.tif\noutput: out\n{text}")
    config = WorkflowConfig.load(path)
    assert (config.fl_channels, config.fovs) == (channels, fovs)


# --- samples.yaml --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "fragments"),
    [("samples: [ {name: a, fovs: '0'}\n", ("not valid YAML",)),
     ("groups: [ctrl]\n", ("expected 'samples:'",)),
     ("samples:\n  - ctrl\n", ("sample 1 must have exactly 'name' and 'fovs'",)),
     ("samples:\n  - {name: ctrl, fovs: null}\n", ("sample 'ctrl'", "invalid index selection")),
     ("samples:\n  - {name: ctrl, fovs: '0-1'}\n", ("lists FOV(s) 1 without traces",
                                                     "FOVs with traces: 0")),
     ("samples:\n  - {name: a, fovs: '0'}\n  - {name: b, fovs: [0]}\n",
      ("FOV(s) 0 are in both sample 'a' and 'b'",))],
    ids=["yaml-syntax", "no-samples-key", "bare-name", "fovs-null", "unknown-fov",
         "overlapping"],
)
def test_malformed_samples_file_leaves_the_sample_tables_as_they_were(
        tmp_path: Path, run_dir: Path, text: str, fragments) -> None:
    samples = tmp_path / "samples.yaml"
    samples.write_text(text)
    with nothing_changes(samples, run_dir):
        assert_one_line_error(fovflow("merge", run_dir, "--samples", samples), *fragments)


def test_samples_path_that_is_a_folder_is_refused(tmp_path: Path, run_dir: Path) -> None:
    with nothing_changes(run_dir):
        assert_one_line_error(fovflow("merge", run_dir, "--samples", tmp_path),
                              "cannot read it as a samples file")


# --- traces CSV ----------------------------------------------------------------------------

def _traces(run_dir: Path) -> tuple[Path, pd.DataFrame]:
    path = run_dir / "fov_000" / "traces_ch_1.csv"
    return path, pd.read_csv(path)


def test_traces_missing_a_column_name_the_file_and_column(run_dir: Path) -> None:
    path, traces = _traces(run_dir)
    traces.drop(columns="position_y").to_csv(path, index=False)
    with nothing_changes(run_dir):
        assert_one_line_error(fovflow("merge", run_dir, "--samples", run_dir / "samples.yaml"),
                              str(path), "missing column(s) position_y")


@pytest.mark.parametrize("column", ["fov", "cell", "frame"])
def test_traces_with_an_empty_id_name_the_column_and_row(run_dir: Path, column: str) -> None:
    path, traces = _traces(run_dir)
    traces[column] = traces[column].astype(float)
    traces.loc[2, column] = np.nan
    traces.to_csv(path, index=False)
    with nothing_changes(run_dir):
        assert_one_line_error(fovflow("merge", run_dir, "--samples", run_dir / "samples.yaml"),
                              str(path), f"column {column!r} must hold a whole number",
                              "an empty value in row 3")


def test_an_empty_feature_value_is_merged_as_a_missing_value(run_dir: Path) -> None:
    path, traces = _traces(run_dir)
    tables = run_dir / "samples"
    before = read_sample_table(tables / "ctrl_intensity_total_ch_1.csv").values
    cell = before.columns[0]
    row = traces.index[(traces.cell == int(cell.rsplit("_", 1)[1])) & traces.good][1]
    traces.loc[row, "intensity_total"] = np.nan
    traces.to_csv(path, index=False)
    assert_success(fovflow("merge", run_dir, "--samples", run_dir / "samples.yaml",
                           "--min-length", "3"))
    after = read_sample_table(tables / "ctrl_intensity_total_ch_1.csv").values
    time = traces.loc[row, "time"]
    assert np.isnan(after.loc[time, cell]) and not np.isnan(before.loc[time, cell])
    unchanged = after.to_numpy() == before.to_numpy()
    assert unchanged.sum() == before.notna().to_numpy().sum() - 1  # only that value is gone
    area = read_sample_table(tables / "ctrl_area_ch_1.csv").values
    assert not np.isnan(area.loc[time, cell])


# --- sample tables for fit -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "fragments"),
    [("time,fov_000_cell_1\n0,1\n", ("first line must be '# Time units: <unit>'",)),
     (b"# Time units: min\ntime,fov_000_cell_1\n0,\xff\n", ("not UTF-8",)),
     ("# Time units: min\ntime,fov_000_cell_1\n0,1\n,2\n", ("column 'time'",
                                                           "an empty value in row 2")),
     ("# Time units: min\ntime,fov_000_cell_1\n0,1\n0,2\n", ("time 0 appears in two rows",)),
     ("# Time units: min\ntime,fov_000_cell_1\n0,1,5\n10,2\n", ("first row has more values",)),
     ("# Time units: min\ntime,fov_000_cell_1\n0,1\n10,lots\n", ("'fov_000_cell_1'", "'lots'")),
     ("# Time units: min\ntime,cell_1\n0,1\n", ("column 'cell_1'", "fov_XXX_cell_N"))],
    ids=["no-header", "not-utf8", "empty-time", "repeated-time", "extra-values", "text-value",
         "bad-column-name"],
)
def test_malformed_sample_table_is_refused_and_nothing_is_written(
        run_dir: Path, text: str | bytes, fragments) -> None:
    table = run_dir / "samples" / "broken.csv"
    (table.write_bytes if isinstance(text, bytes) else table.write_text)(text)
    with nothing_changes(run_dir):
        assert_one_line_error(fovflow("fit", table, *FIT), "broken.csv", *fragments)


# --- valid but awkward data: processed, not refused ----------------------------------------

def _zero_frames(folder: Path) -> Path:
    return write_ome(folder / "zeros.ome.tif", np.zeros((4, 2, 64, 64), np.uint16))


def _background_only(folder: Path) -> Path:
    config = SimulationConfig(n_fovs=1, n_frames=4, height=96, width=96,
                              cells_per_megapixel=0, seed=3)
    return write_simulation(folder / "empty.ome.tif", config).image


@pytest.mark.parametrize("make", [_zero_frames, _background_only],
                         ids=["all-zero-frames", "no-cells"])
def test_frames_without_cells_give_empty_traces_tables_and_fits(tmp_path: Path, make) -> None:
    movie, out = make(tmp_path), tmp_path / "out"
    result = fovflow(*_run(movie, out, "--fl", "1"))
    assert_success(result)
    assert "processed" in result.stdout
    traces = pd.read_csv(out / "fov_000" / "traces_ch_1.csv")
    assert list(traces.columns[:7]) == list(TRACE_COLUMNS) and traces.empty
    (tmp_path / "samples.yaml").write_text("samples:\n  - {name: none, fovs: '0'}\n")
    # Empty tables are written, but an analysis that ends with no cells says so with exit 1.
    merged = fovflow("merge", out, "--samples", tmp_path / "samples.yaml")
    assert_ended_without_cells(merged, "no cell has")
    table = out / "samples" / "none_intensity_total_ch_1.csv"
    assert read_sample_table(table).values.columns.empty
    fitted = fovflow("fit", table, *FIT, "--report", "--curves")
    assert_ended_without_cells(fitted, "no cells to fit")
    assert "0/0 fits converged" in fitted.stdout


def assert_ended_without_cells(result, warning: str) -> None:
    """Exit status 1, a warning naming the cause, and no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 1, (result.exit_code, result.stderr, result.stdout)
    assert warning in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout


def test_single_frame_file_gives_one_row_per_cell_and_failed_fits(tmp_path: Path) -> None:
    config = SimulationConfig(n_fovs=1, n_frames=1, height=96, width=96, cell_radius_px=18,
                              cells_per_megapixel=500, late_fraction=0, seed=0)
    movie, out = write_simulation(tmp_path / "one.ome.tif", config).image, tmp_path / "out"
    assert_success(fovflow(*_run(movie, out, "--min-length", "1")))
    traces = pd.read_csv(out / "fov_000" / "traces_ch_1.csv")
    assert len(traces) >= 1 and traces.cell.is_unique
    assert (traces.frame == 0).all() and (traces.time == 0).all() and traces.good.all()
    (tmp_path / "samples.yaml").write_text("samples:\n  - {name: one, fovs: '0'}\n")
    assert_success(fovflow("merge", out, "--samples", tmp_path / "samples.yaml",
                           "--min-length", "1"))
    table = out / "samples" / "one_intensity_total_ch_1.csv"
    assert read_sample_table(table).values.shape == (1, len(traces))
    result = fovflow("fit", table, *FIT)
    assert_success(result)
    assert f"0/{len(traces)} fits converged" in result.stdout
    fitted = pd.read_csv(out / "samples" / "one_intensity_total_ch_1_fitted_trivial.csv",
                         skiprows=1)
    assert not fitted.success.any() and fitted.message.str.contains("1 valid points").all()


def test_32_pixel_frames_are_processed_with_positions_inside_the_frame(tmp_path: Path) -> None:
    config = SimulationConfig(n_fovs=1, n_frames=3, height=32, width=32, cell_radius_px=13,
                              cells_per_megapixel=1000, late_fraction=0, seed=0)
    movie, out = write_simulation(tmp_path / "tiny.ome.tif", config).image, tmp_path / "out"
    assert_success(fovflow(*_run(movie, out, "--min-length", "1")))
    traces = pd.read_csv(out / "fov_000" / "traces_ch_1.csv")
    assert list(traces.columns[:7]) == list(TRACE_COLUMNS)
    assert traces.frame.between(0, 2).all() and (traces.area > 0).all()
    assert traces.position_x.between(0, 31).all() and traces.position_y.between(0, 31).all()
    assert not traces.duplicated(["cell", "frame"]).any()
