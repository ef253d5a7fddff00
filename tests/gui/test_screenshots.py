"""A full session through the three tabs, saving a screenshot of each to docs/screenshots/:
processing mid-run, the visualization zoomed in with filled labels and a cell's lineage, the
analysis with its parameters' units (fitting simulated maturation traces: the crowded demo's
cells carry no expression kinetics worth fitting)."""

from __future__ import annotations

from pathlib import Path

from gui_helpers import (
    load_movie,
    merge,
    set_up_run,
    statuses,
    wait_for_run,
    wait_until_a_fov_runs,
    write_table,
)

from fovflow.io.synthetic import SimulationConfig, write_simulation

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Crowded cells that divide every 2.5 h: divisions for the lineage view, ids to zoom in for.
DEMO = SimulationConfig(n_fovs=3, n_frames=30, height=224, width=224, seed=3, kind="crowded",
                        cell_cycle_h=2.5)


def _save(qtbot, window, tab, name: str) -> Path:
    window.tabs.setCurrentWidget(tab)
    qtbot.wait(150)  # let the canvases finish their pending draws
    path = SCREENSHOTS / f"{name}.png"
    assert window.grab().save(str(path))
    return path


def test_screenshots_of_each_tab_during_a_run_after_a_merge_and_a_fit(qtbot, window, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    movie = write_simulation(tmp_path / "demo.ome.tif", DEMO).image
    processing = window.processing
    load_movie(qtbot, processing, movie)
    set_up_run(processing, tmp_path / "demo_run", executor="thread")
    processing.start_button.click()
    wait_until_a_fov_runs(qtbot, processing)
    qtbot.waitUntil(lambda: processing.monitor.progress_bar.value() > 100, timeout=30_000)
    shots = [_save(qtbot, window, processing, "processing")]
    assert "running" in processing.monitor.summary_label.text()
    wait_for_run(qtbot, processing)
    assert all(text.startswith("done") for text in statuses(processing).values())
    merge(qtbot, processing.merge_panel, tmp_path / "demo_run", "0-2", sample="ctrl")

    visualization = window.visualization
    window.tabs.setCurrentWidget(visualization)
    assert visualization.run_dir == tmp_path / "demo_run"
    visualization.frame_slider.setValue(20)
    frame_panel = visualization.frame_panel
    frame_panel.fill_slider.setValue(35)
    traces = visualization.traces
    here = traces[(traces["frame"] == 20) & (traces["parent"] > 0)]  # cells born in a division
    frames = traces.groupby("cell").size()
    daughter = here.loc[here["parent"].map(frames).fillna(0).idxmax()]  # the longest mother
    frame_panel.zoom(2.5, (float(daughter["position_x"]), float(daughter["position_y"])))
    visualization.trace_plot.lineage_box.setChecked(True)
    visualization.select_cell(int(daughter["cell"]))
    assert frame_panel.view is not None and frame_panel.axes.texts  # zoomed: ids readable
    assert int(daughter["parent"]) in visualization.trace_plot.shown_cells()
    shots.append(_save(qtbot, window, visualization, "visualization"))

    analysis = window.analysis
    analysis.load_path(write_table(tmp_path / "simulated", 24).parent)
    analysis.start_button.click()
    qtbot.waitUntil(lambda: analysis.handle is not None and not analysis.handle.running,
                    timeout=30_000)
    assert analysis.results.rowCount() > 0
    analysis.parameters.setCurrentCell(analysis.parameters.model.names.index("beta"), 1)
    shots.append(_save(qtbot, window, analysis, "analysis"))
    assert all(path.stat().st_size > 10_000 for path in shots)
