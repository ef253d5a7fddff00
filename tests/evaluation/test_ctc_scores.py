"""`fovflow.evaluation.ctc` and `fovflow score --ctc`: the challenge's measures of divisions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_assertions import assert_one_line_error, fovflow
from fovflow.evaluation.ctc import CTC_MEASURES, ctc_scores
from fovflow.io.lineage import read_lineage, write_lineage
from fovflow.io.synthetic import SimulationConfig, SimulationFiles, write_simulation
from fovflow.processing.lineage import Lineage

# Fast cycles on a small field: 6 nuclei divide about twice each within 12 frames.
DIVIDING = SimulationConfig(n_fovs=1, n_frames=12, height=128, width=128, kind="nuclei",
                            cell_cycle_h=1.0, cells_per_megapixel=400, seed=3)


@pytest.fixture(scope="module")
def dividing(tmp_path_factory: pytest.TempPathFactory) -> SimulationFiles:
    return write_simulation(tmp_path_factory.mktemp("dividing") / "sim.ome.tif", DIVIDING)


def _truth_as_run(files: SimulationFiles, run: Path, *, parents: bool = True) -> Path:
    """The truth of FOV 0 arranged as a run folder, its lineage with or without parents."""
    folder = run / "fov_000"
    folder.mkdir(parents=True)
    shutil.copytree(files.truth / "labels_fov_000.zarr", folder / "labels.zarr")
    truth = pd.read_csv(files.truth / "traces.csv")
    truth.rename(columns={"time_h": "time", "intensity_total_ch_1": "intensity_total"}).assign(
        good=True).to_csv(folder / "traces_ch_1.csv", index=False)
    lineage = read_lineage(files.truth / "lineage_fov_000.csv")
    if not parents:
        lineage = Lineage.without_divisions(lineage.track, lineage.first_frame,
                                            lineage.last_frame)
    write_lineage(folder / "lineage.csv", lineage)
    return run


def test_the_truth_with_its_lineage_scores_one_on_every_measure(dividing: SimulationFiles,
                                                                tmp_path: Path) -> None:
    run = _truth_as_run(dividing, tmp_path / "run")
    result = fovflow("score", run, "--truth", dividing.truth, "--ctc", "--json")
    assert result.exit_code == 0, result.output
    overall = json.loads(result.stdout)["all"]
    assert overall["n_true_divisions"] >= 5
    assert overall["division_recall"] == overall["division_precision"] == 1.0
    for name in CTC_MEASURES:
        assert overall[name] == pytest.approx(1.0), name


def test_tracks_without_parents_lose_every_division_but_no_detection(
        dividing: SimulationFiles, tmp_path: Path) -> None:
    run = _truth_as_run(dividing, tmp_path / "run", parents=False)
    result = fovflow("score", run, "--truth", dividing.truth, "--ctc", "--json")
    assert result.exit_code == 0, result.output
    overall = json.loads(result.stdout)["all"]
    assert overall["division_recall"] == 0.0 and overall["n_predicted_divisions"] == 0
    assert overall["BC(0)"] == overall["BC(1)"] == 0.0
    assert overall["DET"] == 1.0 and overall["TRA"] < 1.0  # each missing link costs TRA


def test_the_table_lists_the_measures_per_fov(dividing: SimulationFiles, tmp_path: Path) -> None:
    run = _truth_as_run(dividing, tmp_path / "run")
    result = fovflow("score", run, "--truth", dividing.truth, "--ctc")
    assert result.exit_code == 0, result.output
    assert "Cell Tracking Challenge measures" in result.stdout
    assert all(name in result.stdout for name in ("BC(0)", "CT", "TF"))


def test_scores_of_a_shifted_result_fall_and_an_empty_one_scores_zero() -> None:
    truth = np.zeros((3, 40, 40), np.uint16)
    truth[:, 5:15, 5:15] = 1
    truth[:, 20:32, 20:32] = 2
    moved = np.roll(truth, 6, axis=2)  # IoU of cell 1 with its moved self: 0.25
    perfect, shifted = ctc_scores(truth, truth), ctc_scores(truth, moved)
    assert perfect["DET"] == perfect["TRA"] == 1.0 and np.isnan(perfect["BC(0)"])
    assert shifted["DET"] < 1.0 and shifted["SEG"] < perfect["SEG"]
    assert ctc_scores(truth, np.zeros_like(truth)) == dict.fromkeys(CTC_MEASURES, 0.0)


def test_ctc_without_py_ctcmetrics_is_a_one_line_error(dividing: SimulationFiles, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "ctc_metrics"
                        else find_spec(name, *rest))
    run = _truth_as_run(dividing, tmp_path / "run")
    assert_one_line_error(fovflow("score", run, "--truth", dividing.truth, "--ctc"),
                          "py-ctcmetrics", "fovflow[ctc]")
