"""The first hour of a new user (issue 20, items 3-6): every mistake one `error:` line, the
options saying their defaults, swapped channels warned about, a summary that says what a run
redid, and a rerun that rewrites nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cli_assertions import assert_one_line_error, fovflow
from fovflow.io.lineage import run_lineage
from fovflow.io.synthetic import SimulationConfig, write_simulation
from fovflow.workflow.channel_roles import channel_role_warning

FOVFLOW = Path(sys.executable).with_name("fovflow")


def fovflow_process(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``fovflow ARGS`` as a user runs it (its own process: logging, signals, workers)."""
    return subprocess.run([FOVFLOW, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 FOVs x 6 frames of 96x96, channels Phase and GFP."""
    config = SimulationConfig(n_fovs=2, n_frames=6, height=96, width=96, seed=5)
    return write_simulation(tmp_path_factory.mktemp("first_hour") / "sim.ome.tif", config).image


@pytest.fixture(scope="module")
def run_dir(movie: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first_hour_run") / "out"
    result = fovflow_process("run", movie, "-o", out, "--fl", "1", "--executor", "serial",
                             "--min-length", "3", "--no-report")
    assert result.returncode == 0, result.stderr
    return out


# --- item 3: one line per mistake -----------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "fragments"),
    [(("run", "x.ome.tif", "--bogus"), ("No such option: --bogus", " run --help")),
     (("simulate",), ("Missing argument", " simulate --help")),
     (("run", "x.ome.tif", "-o", "out", "--workers", "many"), ("Invalid value for '--workers'",)),
     (("simulate", "s.ome.tif", "--frames", "0"), ("--frames", "greater than or equal to 1")),
     (("nosuch",), ("No such command 'nosuch'", "--help"))],
    ids=["unknown-option", "missing-argument", "not-a-number", "out-of-range", "unknown-command"],
)
def test_command_line_mistakes_are_one_line_not_a_panel(args, fragments) -> None:
    line = assert_one_line_error(fovflow(*args), *fragments)
    assert "╭" not in line and "│" not in line


def test_command_line_mistakes_are_one_line_in_the_installed_command_too() -> None:
    assert_one_line_error(fovflow_process("run", "x.ome.tif", "--bogus"), "No such option",
                          "see fovflow run --help")


def test_fovflow_alone_prints_the_help() -> None:
    result = fovflow()
    assert result.exit_code == 0 and "Commands:" in result.stdout and "simulate" in result.stdout


def test_a_failed_fov_is_one_console_line_with_its_traceback_in_the_log(movie, tmp_path) -> None:
    (tmp_path / "fov_001").write_text("not a folder")
    result = fovflow_process("run", movie, "-o", tmp_path, "--fl", "1", "--executor", "thread",
                             "--min-length", "3", "--no-report")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    live = [line for line in result.stderr.splitlines() if "FOV 1 failed" in line]
    assert len(live) == 1, result.stderr
    assert "Traceback" in (tmp_path / "run.log").read_text()


def test_verbose_shows_the_failed_fovs_traceback(movie, tmp_path) -> None:
    (tmp_path / "fov_001").write_text("not a folder")
    result = fovflow_process("--verbose", "run", movie, "-o", tmp_path, "--fl", "1",
                             "--executor", "thread", "--min-length", "3", "--no-report")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_the_dashboards_address_as_scheduler_is_one_line(movie, tmp_path) -> None:
    assert_one_line_error(fovflow("run", movie, "-o", tmp_path / "out", "--executor", "dask",
                                  "--scheduler", "http://localhost:8787"),
                          "web address", "tcp://")
    assert not (tmp_path / "out").exists()


def test_merge_of_a_missing_folder_says_so(tmp_path) -> None:
    samples = tmp_path / "samples.yaml"
    samples.write_text("samples:\n  - {name: a, fovs: '0'}\n")
    assert_one_line_error(fovflow("merge", tmp_path / "nowhere", "--samples", samples),
                          "no such run folder")


def test_a_samples_key_typo_names_the_key_and_what_it_meant(run_dir, tmp_path) -> None:
    samples = tmp_path / "samples.yaml"
    samples.write_text("samples:\n  - name: a\n    fovz: '0'\n")
    assert_one_line_error(fovflow("merge", run_dir, "--samples", samples),
                          "unknown key 'fovz'", "did you mean 'fovs'?")


def test_an_ome_tiff_named_tif_is_read_and_a_plain_tiff_refused(movie, tmp_path) -> None:
    renamed = shutil.copyfile(movie, tmp_path / "movie.tif")
    result = fovflow("inspect", renamed, "--json")
    assert result.exit_code == 0, result.stderr
    assert '"format": "ome-tiff"' in result.stdout
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((3, 32, 32), np.uint16))
    assert_one_line_error(fovflow("inspect", plain), "plain TIFF", "OME-TIFF")


def test_export_ctc_to_a_file_says_it_is_a_file(run_dir, tmp_path) -> None:
    target = tmp_path / "result.txt"
    target.write_text("mine")
    assert_one_line_error(fovflow("export-ctc", run_dir, target, "--fov", "0"), "is a file")
    assert target.read_text() == "mine"


# --- item 4: options that say what they do ----------------------------------------------------

def test_run_takes_its_input_from_the_config_file(movie, tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(f"input: {movie}\noutput: {tmp_path / 'out'}\nfl_channels: [1]\n"
                      "fovs: '1'\nexecutor: serial\nextraction: {min_length: 3}\n"
                      "plugins: []\n")
    result = fovflow_process("run", "--config", config, "--no-report")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "fov_001" / "traces_ch_1.csv").is_file()


def test_run_without_a_file_or_config_is_one_line(tmp_path) -> None:
    assert_one_line_error(fovflow("run", "-o", tmp_path / "out"), "give the microscopy file")
    assert_one_line_error(fovflow("run", tmp_path / "x.ome.tif"), "-o OUT")


def test_the_config_keys_the_readme_lists_are_the_configurations_fields() -> None:
    from dataclasses import fields

    from fovflow.workflow.config import WorkflowConfig

    text = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    listed = text.split("`--config run.yaml` reads the same keys as `out/run_config.yaml` (`")[1]
    listed = listed.split("`")[0]
    assert {key.strip() for key in listed.split(",")} == {f.name for f in fields(WorkflowConfig)}


def test_run_help_shows_the_channel_defaults() -> None:
    help_text = " ".join(fovflow("run", "--help").stdout.split())
    assert "--segment-channel, --pc" in help_text
    assert "old name. [default: (0)]" in help_text
    assert "[default: (every channel but the segmented one" in help_text


def test_simulate_counts_fovs_with_n_fovs_and_still_reads_fovs(tmp_path) -> None:
    for option, name in [("--n-fovs", "new.ome.tif"), ("--fovs", "old.ome.tif")]:
        result = fovflow("simulate", tmp_path / name, option, "3", "--frames", "2",
                         "--size", "32")
        assert result.exit_code == 0, result.stderr
        inspected = fovflow("inspect", tmp_path / name, "--json")
        assert '"n_fovs": 3' in inspected.stdout


def test_fit_reads_merges_long_tables_and_fits_them_like_the_wide_ones(run_dir) -> None:
    samples = run_dir / "samples.yaml"
    samples.write_text("samples:\n  - {name: both, fovs: '0-1'}\n")
    assert fovflow("merge", run_dir, "--samples", samples, "--min-length", "3").exit_code == 0
    wide = run_dir / "samples" / "both_intensity_total_ch_1.csv"
    long = run_dir / "samples" / "long" / wide.name
    for table in (wide, long):
        result = fovflow("fit", table, "--model", "trivial")
        assert result.exit_code == 0, result.stderr
    fitted = [pd.read_csv(t.with_name(f"{t.stem}_fitted_trivial.csv"), comment="#")
              for t in (wide, long)]
    assert len(fitted[0]) > 0
    pd.testing.assert_frame_equal(fitted[0], fitted[1])


# --- item 5: swapped channels --------------------------------------------------------------

def test_swapped_phase_and_gfp_are_warned_about_with_the_options_to_use() -> None:
    warning = channel_role_warning(["Phase", "GFP"], segment_channel=1, method="phase",
                                   fl_channels=[0])
    assert warning is not None
    assert "segmented channel 1 ('GFP') reads as a fluorescent marker" in warning
    assert "measured channel 0 ('Phase') reads as transmitted light" in warning
    assert warning.endswith("--segment-channel 0 --method phase --fl 1")


@pytest.mark.parametrize(
    ("names", "segment", "method", "measured", "warned"),
    [(["Phase", "GFP"], 0, "phase", [1], False),
     (["Nuclei", "GFP"], 0, "fluorescence", [0, 1], False),  # a nuclear marker segmented
     (["DAPI", "mCherry"], 0, "phase", [1], True),  # fluorescence as phase contrast
     (["BF", "GFP"], 0, "fluorescence", [1], True),  # bright field as a marker
     (["GFP", "DIC"], 0, "fluorescence", [0, 1], True),  # DIC measured
     (["Channel:0", "C1"], 1, "phase", [0], False),  # names that say nothing
     (["GFP", "Phase"], 0, "cellpose", [1], True)],  # a plugin: only the measured channel
)
def test_which_channel_roles_are_warned_about(names, segment, method, measured,
                                              warned) -> None:
    warning = channel_role_warning(names, segment_channel=segment, method=method,
                                   fl_channels=measured)
    assert (warning is not None) == warned, warning
    if warned and method == "cellpose":
        assert "segmented" not in warning


def test_run_warns_about_swapped_channels_once_on_the_console_and_in_the_log(movie,
                                                                             tmp_path) -> None:
    result = fovflow_process("run", movie, "-o", tmp_path, "--pc", "1", "--fl", "0",
                             "--executor", "serial", "--min-length", "3", "--diameter", "20",
                             "--fovs", "0", "--no-report")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("are the channels swapped?") == 1
    assert "are the channels swapped?" in (tmp_path / "run.log").read_text()


def test_a_run_with_a_bad_option_gives_its_error_without_the_channel_warning(movie,
                                                                           tmp_path) -> None:
    assert_one_line_error(fovflow_process("run", movie, "-o", tmp_path / "o", "--pc", "1",
                                          "--fl", "0", "--fovs", "7"), "FOVs")


# --- item 6: what a run did; a rerun that changes nothing writes nothing ------------------------

def test_the_summary_says_which_steps_ran_and_how_many_cells_were_tracked(movie,
                                                                        tmp_path) -> None:
    options = ("--fl", "1", "--executor", "serial", "--no-report")
    first = fovflow_process("run", movie, "-o", tmp_path, *options, "--min-length", "3")
    assert first.returncode == 0, first.stderr
    assert "FOVs 0-1: ran all 5 steps" in first.stdout
    tracks = sum(len(run_lineage(tmp_path, fov).track) for fov in (0, 1))
    assert f"{tracks} cells tracked in 2 FOVs" in " ".join(first.stdout.split())
    changed = fovflow_process("run", movie, "-o", tmp_path, *options, "--min-length", "4")
    assert ("FOVs 0-1: ran extraction; kept copy, segmentation, background, tracking "
            "(complete and current)") in " ".join(changed.stdout.split())
    same = fovflow_process("run", movie, "-o", tmp_path, *options, "--min-length", "4")
    assert "FOVs 0-1: every step complete and current: nothing redone" in same.stdout


@pytest.mark.slow
def test_rerunning_the_demo_commands_rewrites_no_table_or_report(movie, tmp_path) -> None:
    """The demo's commands (as the Makefile's demo target: run, merge, fit with a report,
    then the QC page) twice: the second time rewrites nothing but the log."""
    samples = tmp_path / "samples.yaml"
    samples.write_text("samples:\n  - {name: a, fovs: '0'}\n  - {name: b, fovs: '1'}\n")
    out = tmp_path / "out"
    commands = [("run", movie, "-o", out, "--pc", "0", "--fl", "1", "--executor", "serial",
                 "--min-length", "3", "--no-report"),
                ("merge", out, "--samples", samples, "--min-length", "3"),
                ("fit", out / "samples" / "a_intensity_total_ch_1.csv", "--model", "trivial",
                 "--report"),
                ("report", out)]

    def demo() -> list[str]:
        outputs = []
        for command in commands:
            result = fovflow(*command)
            assert result.exit_code == 0, result.stderr
            outputs.append(result.stdout)
        return outputs

    def times() -> dict[Path, int]:
        return {path.relative_to(out): path.stat().st_mtime_ns for path in out.rglob("*")
                if path.is_file()}

    demo()
    before = times()
    ran, merged, fitted, reported = demo()
    after = times()
    assert after.keys() == before.keys()
    assert [path for path in after if after[path] != before[path]] == [Path("run.log")]
    assert "a_intensity_total_ch_1_fitted_trivial" in (out / "report.html").read_text()
    assert "nothing redone" in ran
    assert "wrote" not in merged and "up to date" in merged
    assert "up to date" in fitted and "report (up to date)" in fitted
    assert "up to date" in reported
