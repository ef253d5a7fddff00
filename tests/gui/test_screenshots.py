"""A full session through the three tabs, saving a screenshot of each to docs/screenshots/."""

from __future__ import annotations

from pathlib import Path

from gui_helpers import load_movie, set_up_run, statuses, wait_for_run

from fovflow.io.synthetic import SimulationConfig, write_simulation

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DEMO = SimulationConfig(n_fovs=2, n_frames=24, height=224, width=224, seed=3)


def _save(qtbot, window, tab, name: str) -> Path:
    window.tabs.setCurrentWidget(tab)
    qtbot.wait(150)  # let the canvases finish their pending draws
    path = SCREENSHOTS / f"{name}.png"
    assert window.grab().save(str(path))
    return path


def test_screenshots_of_each_tab_after_a_run_a_merge_and_a_fit(qtbot, window, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    movie = write_simulation(tmp_path / "demo.ome.tif", DEMO).image
    processing = window.processing
    load_movie(qtbot, processing, movie)
    set_up_run(processing, tmp_path / "demo_run", executor="thread")
    processing.start_button.click()
    wait_for_run(qtbot, processing)
    assert all(text.startswith("done") for text in statuses(processing).values())
    panel = processing.merge_panel
    panel.add_sample("ctrl", "0-1")
    panel.min_length.setValue(5)
    with qtbot.waitSignal(panel.merged, timeout=10_000):
        panel.merge_button.click()

    visualization = window.visualization
    window.tabs.setCurrentWidget(visualization)
    assert visualization.run_dir == tmp_path / "demo_run"
    visualization.frame_slider.setValue(12)
    visualization.fill_slider.setValue(35)
    cells = list(visualization.good)
    visualization.set_good(cells[-1], False)
    visualization.select_cell(cells[0])

    analysis = window.analysis
    analysis.table_combo.setCurrentText("ctrl_intensity_total_ch_1.csv")
    analysis.start_button.click()
    qtbot.waitUntil(lambda: analysis.handle is not None and not analysis.handle.running,
                    timeout=30_000)
    assert analysis.results.rowCount() > 0

    shots = [_save(qtbot, window, tab, name) for tab, name in
             [(processing, "processing"), (visualization, "visualization"),
              (analysis, "analysis")]]
    assert all(path.stat().st_size > 10_000 for path in shots)
