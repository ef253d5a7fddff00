"""`fovflow score` and `fovflow export-ctc` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from cli_assertions import assert_one_line_error, fovflow
from fovflow.io.frames import create_frames
from fovflow.io.synthetic import SimulationFiles
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow

FOVFLOW = Path(sys.executable).with_name("fovflow")


@pytest.fixture(scope="module")
def run_dir(small_files: SimulationFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's small simulation (3 FOVs x 8 frames of 96x128) processed with 2 channels."""
    out = tmp_path_factory.mktemp("scored") / "out"
    # Most simulated cells are cut by these small frames, too many for `diameter: auto` to
    # measure them: 60 px is the diameter the estimate gives on whole frames of them.
    report = run_workflow(WorkflowConfig(input=small_files.image, output=out, fl_channels=(1, 2),
                                         executor="serial", extraction={"min_length": 3},
                                         segmentation={"diameter": 60}))
    assert report.ok
    return out




def test_score_as_json_gives_every_fov_and_the_whole_run(run_dir: Path,
                                                         small_files: SimulationFiles) -> None:
    result = fovflow("score", run_dir, "--truth", small_files.truth, "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert sorted(scores["fovs"]) == ["0", "1", "2"]
    overall = scores["all"]
    assert overall["n_true"] == sum(fov["n_true"] for fov in scores["fovs"].values())
    # Measured on these 96x128 frames, where most cells are cut by the border: Jaccard 0.892,
    # precision 1.0, recall 0.735 (border slivers are dropped by design), no ID switch.
    assert overall["jaccard"] > 0.85 and overall["precision"] > 0.95
    assert overall["recall"] > 0.7 and overall["id_switches"] == 0
    assert overall["n_trace_values"] == 2 * overall["n_matched"]  # both channels


def test_score_prints_a_row_per_selected_fov_and_one_for_all(run_dir: Path,
                                                             small_files: SimulationFiles) -> None:
    result = fovflow("score", run_dir, "--truth", small_files.truth, "--fovs", "1-2")
    assert result.exit_code == 0, result.output
    rows = [line.split("│")[1].strip() for line in result.stdout.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()]
    assert rows == ["1", "2", "all"]


def test_the_truth_arranged_as_a_run_scores_perfectly(small_files: SimulationFiles,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "run" / "fov_001"
    folder.mkdir(parents=True)
    shutil.copytree(small_files.truth / "labels_fov_001.zarr", folder / "labels.zarr")
    truth = pd.read_csv(small_files.truth / "traces.csv")
    traces = truth[truth.fov == 1].rename(columns={"time_h": "time",
                                                   "intensity_total_ch_1": "intensity_total"})
    traces.assign(good=True).to_csv(folder / "traces_ch_1.csv", index=False)
    result = fovflow("score", tmp_path / "run", "--truth", small_files.truth, "--json")
    assert result.exit_code == 0, result.output
    overall = json.loads(result.stdout)["all"]
    for name in ("jaccard", "seg", "recall", "precision", "complete_tracks"):
        assert overall[name] == 1.0
    assert overall["trace_error_p95"] == 0.0 and overall["n_trace_values"] == overall["n_true"]


def test_export_ctc_writes_a_result_folder(run_dir: Path, tmp_path: Path) -> None:
    result = fovflow("export-ctc", run_dir, tmp_path / "01_RES", "--fov", "1")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout
    assert len(list((tmp_path / "01_RES").glob("mask*.tif"))) == 8
    assert (tmp_path / "01_RES" / "res_track.txt").read_text().strip()


def _truth_of_another_movie(folder: Path) -> Path:
    folder.mkdir()
    create_frames(folder / "labels_fov_000.zarr", 2, (10, 10), "uint16")
    (folder / "traces.csv").write_text("fov,cell,frame,area\n")
    return folder


def _empty(folder: Path) -> Path:
    folder.mkdir()
    return folder


MISTAKES: list[tuple[str, Callable[[Path, Path, Path], list[object]], tuple[str, ...]]] = [
    ("missing run folder", lambda run, truth, tmp: ["score", tmp / "absent", "--truth", truth],
     ("no such folder", "absent")),
    ("truth folder without labels", lambda run, truth, tmp: ["score", run, "--truth",
                                                              _empty(tmp / "t")],
     ("holds no label stacks", "fovflow simulate")),
    ("FOV not in the run", lambda run, truth, tmp: ["score", run, "--truth", truth, "--fovs",
                                                     "0,5"],
     ("FOV 5 is not in the run",)),
    ("malformed FOV range", lambda run, truth, tmp: ["score", run, "--truth", truth, "--fovs",
                                                      "0-x"],
     ("0-x",)),
    ("truth of another movie", lambda run, truth, tmp: [
        "score", run, "--truth", _truth_of_another_movie(tmp / "other"), "--fovs", "0"],
     ("FOV 0", "the truth of this run")),
    ("export of a FOV not in the run", lambda run, truth, tmp: [
        "export-ctc", run, tmp / "RES", "--fov", "7"], ("FOV 7 is not in the run",)),
    ("export into a folder with files", lambda run, truth, tmp: [
        "export-ctc", run, run, "--fov", "0"], ("not empty",)),
]


@pytest.mark.parametrize(("make", "fragments"), [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_user_mistakes_are_one_line_errors(make: Callable[[Path, Path, Path], list[object]],
                                           fragments: tuple[str, ...], run_dir: Path,
                                           small_files: SimulationFiles, tmp_path: Path) -> None:
    assert_one_line_error(fovflow(*make(run_dir, small_files.truth, tmp_path)), *fragments)
    assert not list(tmp_path.glob("RES*"))


def test_a_mistake_through_the_real_command_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run([FOVFLOW, "export-ctc", tmp_path / "absent", tmp_path / "RES",
                             "--fov", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "RES").exists()
