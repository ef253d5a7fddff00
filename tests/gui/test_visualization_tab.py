"""Visualization tab: frames with outlines, frame keys, selecting cells and marking quality."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
from PySide6.QtCore import QPoint, Qt

from fovflow.gui.frame_view import GOOD_RGB
from fovflow.io.store import create_frames, fov_dir, open_frames
from fovflow.io.tables import read_sample_table


def _widget_point(tab, row: float, column: float) -> QPoint:
    """Where pixel (row, column) of the shown (downsampled) frame is on the canvas widget."""
    tab.image_canvas.draw()
    x, y = tab.image_axes.transData.transform((column, row))
    ratio = tab.image_canvas.device_pixel_ratio
    return QPoint(round(x / ratio), round(tab.image_canvas.height() - y / ratio))


def test_shows_a_frame_toggles_a_cells_quality_saves_it_and_merge_honours_it(
        qtbot, window, finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    tab = window.visualization
    window.tabs.setCurrentWidget(tab)
    tab.open_run(run)
    assert tab.channel_combo.currentText() == "pc"
    (image,) = tab.image_axes.images  # the frame with the outlines drawn in
    rgb = image.get_array()
    assert rgb.shape == (128, 160, 3) and rgb.dtype == np.uint8 and rgb.min() < rgb.max()
    assert (rgb == GOOD_RGB).all(axis=2).any()  # outlines of good cells

    qtbot.keyClick(tab, Qt.Key.Key_Right)
    assert tab.frame_slider.value() == 1 and tab.frame_label.text().startswith("frame 1/11")
    qtbot.keyClick(tab, Qt.Key.Key_Left)
    assert tab.frame_slider.value() == 0

    labels = open_frames(fov_dir(run, 0) / "labels.zarr")[0]
    good_cells = [cell for cell, good in tab.good.items() if good and (labels == cell).any()]
    clicked = good_cells[0]
    ticked = next(cell for cell, good in tab.good.items() if good and cell != clicked)
    pixels = np.argwhere(labels == clicked)
    row, column = pixels[len(pixels) // 2]
    point = _widget_point(tab, row, column)
    qtbot.mouseClick(tab.image_canvas, Qt.MouseButton.LeftButton, pos=point)
    assert tab.selected == clicked and tab.good[clicked]
    qtbot.mouseClick(tab.image_canvas, Qt.MouseButton.RightButton, pos=point)
    assert tab.good[clicked] is False

    table_row = list(tab.good).index(ticked)
    tab.cell_table.item(table_row, 2).setCheckState(Qt.CheckState.Unchecked)
    assert tab.good[ticked] is False
    assert tab.unsaved_label.text() == "2 unsaved change(s)"
    assert len(tab.trace_plot.axes.lines) >= 1

    tab.save_button.click()
    assert tab.unsaved_label.text() == ""
    traces = pd.read_csv(fov_dir(run, 0) / "traces_ch_1.csv")
    assert not traces.loc[traces["cell"].isin([clicked, ticked]), "good"].any()
    assert traces.loc[~traces["cell"].isin([clicked, ticked]), "good"].any()
    assert not list(fov_dir(run, 0).glob("*.partial"))

    panel = window.processing.merge_panel
    panel.run_dir_edit.setText(str(run))
    panel.add_sample("all", "0-3")
    panel.min_length.setValue(5)
    with qtbot.waitSignal(panel.merged, timeout=10_000):
        panel.merge_button.click()
    merged = read_sample_table(run / "samples" / "all_intensity_total_ch_1.csv")
    assert f"fov_000_cell_{clicked}" not in merged.values.columns
    assert f"fov_000_cell_{ticked}" not in merged.values.columns
    assert (run / "samples.yaml").is_file()


def test_a_2048_pixel_frame_with_150_cells_is_drawn_in_under_250_ms(qtbot, window, tmp_path):
    folder = fov_dir(tmp_path, 0)
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = np.zeros((2048, 2048), np.uint16)
    rows = []
    for cell in range(1, 151):
        y, x = rng.integers(40, 2008, 2)
        labels[y - 30:y + 30, x - 30:x + 30] = cell
        rows += [{"fov": 0, "cell": cell, "frame": t, "time": 600.0 * t, "good": True,
                  "position_x": x, "position_y": y, "intensity_total": 1.0} for t in range(2)]
    label_frames = create_frames(folder / "labels.zarr", 2, labels.shape, np.uint16)
    phase = create_frames(folder / "pc.zarr", 2, labels.shape, np.uint16)
    for t in range(2):
        label_frames[t] = labels
        phase[t] = rng.integers(0, 4000, labels.shape, dtype=np.uint16)
    pd.DataFrame(rows).to_csv(folder / "traces_ch_1.csv", index=False)
    tab = window.visualization
    window.tabs.setCurrentWidget(tab)
    tab.open_run(tmp_path)
    timings = []
    for t in (1, 0, 1):
        start = time.perf_counter()
        tab.frame_slider.setValue(t)
        tab.image_canvas.draw()
        timings.append(time.perf_counter() - start)
    print(f"2048x2048 frame shown in {min(timings) * 1000:.0f}-{max(timings) * 1000:.0f} ms")
    assert max(timings) < 0.25
    assert max(tab.image_axes.images[0].get_array().shape[:2]) <= 1024  # downsampled


def test_a_damaged_traces_table_is_reported_and_the_frames_still_show(qtbot, window,
                                                                     finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    traces = fov_dir(run, 0) / "traces_ch_1.csv"
    traces.write_text(traces.read_text().replace("True", "maybe", 1))
    tab = window.visualization
    tab.open_run(run)
    assert "column 'good' must hold True/False" in window.statusBar().currentMessage()
    assert len(tab.image_axes.images) == 1 and tab.good == {}


def _mark_first_cell_bad(tab) -> int:
    cell = next(cell for cell, good in tab.good.items() if good)
    tab.set_good(cell, False)
    return cell


def test_closing_with_unsaved_marks_asks_and_cancel_keeps_the_window(qtbot, window,
                                                                      finished_run, tmp_path,
                                                                      monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    tab = window.visualization
    window.tabs.setCurrentWidget(tab)
    tab.open_run(run)
    cell = _mark_first_cell_bad(tab)
    asked = []

    def answer(button):
        return lambda *args: asked.append(args[2]) or button

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    window.close()
    assert window.isVisible() and tab.unsaved and "1 cell quality mark" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Save))
    window.close()
    assert not window.isVisible() and not tab.unsaved
    traces = pd.read_csv(fov_dir(run, 0) / "traces_ch_1.csv")
    assert not traces.loc[traces["cell"] == cell, "good"].any()


def test_discarding_unsaved_marks_closes_without_writing(qtbot, window, finished_run, tmp_path,
                                                         monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = (fov_dir(run, 0) / "traces_ch_1.csv").read_bytes()
    window.visualization.open_run(run)
    _mark_first_cell_bad(window.visualization)
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args: QMessageBox.StandardButton.Discard)
    window.close()
    assert not window.isVisible()
    assert (fov_dir(run, 0) / "traces_ch_1.csv").read_bytes() == before


def test_the_frame_label_gives_the_time_and_the_cursor_the_value_and_cell(qtbot, window,
                                                                          finished_run):
    tab = window.visualization
    window.tabs.setCurrentWidget(tab)
    tab.open_run(finished_run)
    tab.frame_slider.setValue(1)
    time = tab.traces.loc[tab.traces["frame"] == 1, "time"].iloc[0]
    assert tab.frame_label.text() == f"frame 1/11 · {time / 60:.1f} min"
    labels = open_frames(fov_dir(finished_run, 0) / "labels.zarr")[1]
    cell = int(labels.max())
    row, column = np.argwhere(labels == cell)[len(np.argwhere(labels == cell)) // 2]
    qtbot.mouseMove(tab.image_canvas, _widget_point(tab, row, column))
    qtbot.waitUntil(lambda: f"cell {cell}" in tab.hover_label.text(), timeout=2_000)
    assert tab.hover_label.text().startswith("x ")
