"""From a simulated movie to fitted kinetics through the real engine, merge and fitter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.merge import Sample, merge_run
from fovflow.analysis.tables_fit import TableFitted, fit_tables
from fovflow.io.synthetic import SimulationConfig, write_simulation
from fovflow.io.tables import read_fitted_table, read_sample_table
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow

SIM = SimulationConfig(n_fovs=2, n_frames=36, height=256, width=256, seed=11, model="trivial")


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    files = write_simulation(root / "sim.ome.tif", SIM)
    report = run_workflow(WorkflowConfig(input=files.image, output=root / "out",
                                         executor="serial", extraction={"min_length": 30}))
    assert report.ok
    tables = merge_run(root / "out", [Sample("all", (0, 1))], min_length=30)
    table = next(t for t in tables if t.name == "all_intensity_total_ch_1.csv")
    return table, files.truth


def test_every_cell_seen_whole_for_30_frames_is_in_the_merged_table(merged) -> None:
    table_path, truth = merged
    table = read_sample_table(table_path)
    assert table.time_unit == "s"
    np.testing.assert_allclose(table.values.index.to_numpy(), SIM.times_s)
    truth_traces = pd.read_csv(truth / "traces.csv")
    # Slivers at the border (a few hundred pixels) vanish in the 19x19 opening by design.
    whole = truth_traces[truth_traces.area >= 500].groupby(["fov", "cell"]).size()
    expected = int((whole >= 30).sum())
    assert expected >= 5
    assert expected <= len(table.cells) <= expected + 2


def test_fitted_totals_describe_the_simulated_kinetics(merged) -> None:
    table_path, _ = merged
    events: list[TableFitted] = []
    settings = FitSettings.create("trivial")
    [output] = fit_tables([table_path], settings, on_event=events.append)
    fitted, _ = read_fitted_table(output)
    assert fitted.success.mean() >= 0.9
    assert fitted.r_squared.median() > 0.99
    assert not events[0].skipped


def test_refit_is_skipped_only_while_the_table_is_unchanged(merged) -> None:
    table_path, _ = merged
    settings = FitSettings.create("trivial")
    events: list[TableFitted] = []
    fit_tables([table_path], settings, on_event=events.append)
    fit_tables([table_path], settings, on_event=events.append)
    assert events[-1].skipped
    text = table_path.read_text().splitlines()
    table_path.write_text("\n".join(text[:-1]) + "\n")  # the last frame removed: new data
    fit_tables([table_path], settings, on_event=events.append)
    assert not events[-1].skipped
