"""Processing tab end to end: run, progress, cancel, responsiveness, errors, closing."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gui_helpers import load_movie, set_up_run, statuses, wait_for_run, wait_until_a_fov_runs
from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QFormLayout, QMessageBox

from fovflow.gui.segmentation_fields import _HELP
from fovflow.gui.workers import running_handles
from fovflow.processing.segmentation import METHODS, method_defaults


def test_metadata_is_shown_when_a_file_is_loaded(qtbot, window, movie):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    assert "4 FOVs × 12 frames × 2 channels" in tab.metadata_label.text()
    assert "128 × 160 px" in tab.metadata_label.text()
    combo = tab.segment_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["0: Phase", "1: GFP"]
    labels = [form.labelForField(combo) for form in tab.findChildren(QFormLayout)]
    assert [label.text() for label in labels if label] == ["Segment channel"]


def test_four_fov_run_in_worker_processes_reaches_100_percent_with_traces_on_disk(
        qtbot, window, movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, tmp_path / "out", executor="process")
    tab.start_button.click()
    assert not tab.start_button.isEnabled() and tab.cancel_button.isEnabled()
    wait_for_run(qtbot, tab)
    assert tab.monitor.progress_bar.value() == tab.monitor.progress_bar.maximum()
    assert all(text.startswith("done") for text in statuses(tab).values())
    assert sorted(statuses(tab)) == [0, 1, 2, 3]
    for fov in range(4):
        traces = pd.read_csv(tmp_path / "out" / f"fov_{fov:03d}" / "traces_ch_1.csv")
        assert len(traces) and {"cell", "frame", "good"} <= set(traces.columns)
    assert "4 processed (0-3)" in tab.monitor.summary_label.text()
    assert "run finished" in window.log_dock.view.toPlainText()
    assert window.visualization.run_edit.text() == str(tmp_path / "out")  # offered, opened
    window.tabs.setCurrentWidget(window.visualization)  # when the tab is shown
    assert window.visualization.run_dir == tmp_path / "out"


def test_cancel_stops_the_run_within_two_seconds_and_the_ui_is_ready_again(
        qtbot, window, long_movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, long_movie)
    set_up_run(tab, tmp_path / "out", executor="thread")
    tab.start_button.click()
    wait_until_a_fov_runs(qtbot, tab)
    start = time.perf_counter()
    tab.cancel_button.click()
    wait_for_run(qtbot, tab, timeout_ms=2000)
    elapsed = time.perf_counter() - start
    print(f"cancel latency: {elapsed * 1000:.0f} ms")
    assert elapsed < 2.0
    assert tab.start_button.isEnabled() and not tab.cancel_button.isEnabled()
    assert "cancelled" in statuses(tab).values()
    summary, bar = tab.monitor.summary_label.text(), tab.monitor.progress_bar
    assert "cancelled" in summary and "processed" not in summary
    assert bar.value() < bar.maximum() // 2  # a cancelled FOV's work is not done
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_the_gui_thread_timer_fires_within_100_ms_while_a_run_is_going(
        qtbot, window, long_movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, long_movie)
    set_up_run(tab, tmp_path / "out", executor="thread")
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    tab.start_button.click()
    wait_until_a_fov_runs(qtbot, tab)
    timer.start()
    qtbot.wait(1500)
    timer.stop()
    assert tab.running  # the whole measurement happened during the run
    tab.cancel_button.click()
    wait_for_run(qtbot, tab)
    latencies = [b - a - 0.020 for a, b in itertools.pairwise(ticks)]
    print(f"timer ticks: {len(ticks)}, worst latency: {max(latencies) * 1000:.1f} ms")
    assert len(ticks) > 20
    assert max(latencies) < 0.100


def test_a_failing_fov_shows_its_error_and_the_others_finish(qtbot, window, movie, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "fov_002").write_text("a file where the FOV's folder should be")
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, output, executor="serial", workers=1)
    tab.start_button.click()
    wait_for_run(qtbot, tab)
    status = statuses(tab)
    assert status[2].startswith("failed: ") and "fov_002" in status[2]
    assert all(status[fov].startswith("done") for fov in (0, 1, 3))
    assert "1 failed (2)" in tab.monitor.summary_label.text()
    assert tab.start_button.isEnabled()


def test_a_bad_parameter_is_reported_without_starting(qtbot, window, movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, tmp_path / "out", executor="thread")
    tab.parameters.set_value("segmentation.window", "-4")
    tab.start_button.click()
    assert tab.handle is None  # no run was started
    assert "invalid segmentation parameters" in window.statusBar().currentMessage()
    assert tab.start_button.isEnabled()


def test_fluorescence_method_and_a_diameter_of_25_px_go_into_the_config(qtbot, window, movie,
                                                                       tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, tmp_path / "out", executor="thread")
    assert tab.segmentation.method_combo.findText("fluorescence") >= 0
    tab.segmentation.method_combo.setCurrentText("fluorescence")
    tab.segmentation.diameter_edit.setText("25")
    tab.segment_combo.setCurrentIndex(1)  # segment the GFP channel and measure it too
    config = tab.config()
    assert config.segmentation == {"method": "fluorescence", "diameter": 25}
    assert config.segment_channel == 1 and config.fl_channels == (1,)
    segmentation = config.step_parameters()["segmentation"]
    assert segmentation["method"] == "fluorescence" and segmentation["diameter"] == 25.0
    rows = [name for name in _row_names(tab) if name.startswith("segmentation.")]
    assert rows == [f"segmentation.{name}" for name in
                    ("threshold", "local", "smoothing", "neck", "min_area", "split")]
    assert tab.parameters.value("segmentation.threshold") == "triangle"
    assert tab.parameters.value("segmentation.smoothing") == "auto"  # derived from diameter
    assert tab.parameters.value("extraction.min_length") == "5"  # other rows keep their text
    tab.parameters.set_value("segmentation.smoothing", "")  # blank: still not overridden
    tab.parameters.set_value("segmentation.min_area", "40")
    assert tab.config().segmentation == {"method": "fluorescence", "diameter": 25,
                                         "min_area": 40}
    tab.segmentation.method_combo.setCurrentText("phase")
    assert "segmentation.window" in _row_names(tab)
    assert tab.parameters.value("segmentation.threshold") == "otsu"
    assert tab.config().segmentation == {"method": "phase", "diameter": 25}


def test_a_plugin_method_is_offered_with_its_own_parameter_rows(qtbot, window, movie, tmp_path,
                                                                monkeypatch):
    def toy(frame, *, diameter, level: float = 0.5, radius: int | None = None):
        return np.zeros(frame.shape, np.uint32)

    monkeypatch.setitem(METHODS, "toy", toy)
    tab = window.processing
    load_movie(qtbot, tab, movie)  # a file load lists the methods again
    set_up_run(tab, tmp_path / "out", executor="thread")
    tab.segmentation.set_method("toy")
    assert [name for name in _row_names(tab) if name.startswith("segmentation.")] == [
        "segmentation.level", "segmentation.radius"]
    assert tab.parameters.value("segmentation.radius") == "auto"
    tab.parameters.set_value("segmentation.level", "0.8")
    assert tab.config().segmentation == {"method": "toy", "diameter": "auto", "level": 0.8}


def test_a_run_segmented_by_fluorescence_in_microns_finishes(qtbot, window, movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, tmp_path / "out", executor="serial", workers=1)
    tab.segmentation.set_method("fluorescence")
    tab.segmentation.diameter_edit.setText("12um")
    tab.segment_combo.setCurrentIndex(1)
    tab.start_button.click()
    wait_for_run(qtbot, tab)
    assert all(text.startswith("done") for text in statuses(tab).values())
    traces = pd.read_csv(tmp_path / "out" / "fov_000" / "traces_ch_1.csv")
    assert len(traces)


_DIAMETER_RULE = "diameter must be auto, a positive number of pixels or microns like 12um"


@pytest.mark.parametrize(("diameter", "message"), [
    ("-3", f"{_DIAMETER_RULE}, not -3"),
    ("12 parsecs", f"{_DIAMETER_RULE}, not '12 parsecs'"),
    ("500", "diameter 500 px is larger than the frames of sim.ome.tif (160x128)"),
])
def test_a_bad_diameter_shows_the_config_error_and_starts_nothing(qtbot, window, movie,
                                                                 tmp_path, diameter, message):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, tmp_path / "out", executor="thread")
    tab.segmentation.diameter_edit.setText(diameter)
    tab.start_button.click()
    assert tab.handle is None  # no run was started
    assert window.statusBar().currentMessage() == f"error: {message}"
    dialog = tab.findChild(QMessageBox)
    assert dialog.text() == message and not dialog.detailedText()  # no traceback
    assert tab.start_button.isEnabled() and not (tmp_path / "out").exists()


def test_closing_the_window_during_a_run_cancels_it_cleanly(qtbot, qtlog, window, long_movie,
                                                            tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, long_movie)
    set_up_run(tab, tmp_path / "out", executor="thread")
    tab.start_button.click()
    wait_until_a_fov_runs(qtbot, tab)
    start = time.perf_counter()
    assert window.close() is False  # not yet: the run is cancelled first
    assert window.closing
    qtbot.waitUntil(lambda: not running_handles() and not window.isVisible(), timeout=3000)
    print(f"close during run: window closed {(time.perf_counter() - start) * 1000:.0f} ms later")
    assert "cancelled" in statuses(tab).values()
    assert not list(Path(tmp_path / "out").rglob("*.partial"))
    assert not [r for r in qtlog.records if "Destroyed while thread" in r.message]


def test_an_unreadable_file_is_reported_and_the_last_files_channels_are_gone(
        qtbot, window, movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    broken = tmp_path / "broken.ome.tif"
    broken.write_bytes(b"")
    tab.load_file(broken)
    qtbot.waitUntil(lambda: "cannot use this file" in tab.metadata_label.text(), timeout=5000)
    assert window.statusBar().currentMessage().startswith("error: ")
    assert "empty" in window.statusBar().currentMessage()
    assert tab.metadata is None and tab.start_button.isEnabled()
    assert tab.segment_combo.count() == 0 and tab.fl_list.count() == 0


class _WindowAfterEachEvent(QObject):
    """`seen`: (event type, summary, FOV statuses, Start enabled) after each event of a run."""

    def __init__(self, tab) -> None:
        super().__init__()
        self.tab = tab
        self.seen: list[tuple[str, str, dict[int, str], bool]] = []

    @Slot(object)
    def record(self, event: object) -> None:
        self.seen.append((type(event).__name__, self.tab.monitor.summary_label.text(),
                          statuses(self.tab), self.tab.start_button.isEnabled()))


def _row_names(tab) -> list[str]:
    table = tab.parameters
    return [table.item(row, 0).text() for row in range(table.rowCount())]


def test_the_run_says_what_it_waits_for_and_start_is_ready_when_the_run_reports(
        qtbot, window, movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, tmp_path / "out", executor="process")
    tab.start_button.click()
    # Connected after the tab's own slot, in the GUI thread too: each entry is the window as it
    # stands after an event.
    recorder = _WindowAfterEachEvent(tab)
    tab.handle.worker.progress.connect(recorder.record)
    seen = recorder.seen
    qtbot.waitUntil(lambda: bool(seen) and seen[-1][0] == "RunFinished", timeout=60_000)
    kind, summary, status, _ = seen[0]
    assert kind == "RunStarted" and summary == "4 FOV(s) queued; starting 2 worker processes…"
    assert set(status.values()) == {"queued: 2 worker processes starting…"}
    progress = [entry for entry in seen if entry[0] == "StepProgress"]
    assert progress and all("starting" not in entry[1] for entry in progress)
    assert all("running" in entry[1] and "FOV(s) done" in entry[1] for entry in progress)
    assert not any("workers starting" in text for _, _, status, _ in progress
                   for text in status.values())
    assert seen[-1][3]  # Start is enabled as soon as the run has reported
    tab.start_button.click()  # its worker processes may still be stopping: it starts after
    wait_for_run(qtbot, tab)
    assert "4 already complete (0-3)" in tab.monitor.summary_label.text()


def test_every_parameter_row_shows_its_unit_and_the_current_one_its_help(qtbot, window):
    table = window.processing.parameters
    units = {table.item(row, 0).text(): table.item(row, 2).text()
             for row in range(table.rowCount())}
    assert units["segmentation.window"] == "px" and units["tracking.max_gap"] == "frames"
    assert units["extraction.min_length"] == "frames" and units["fovs"] == ""
    table.setCurrentCell(_row_names(window.processing).index("tracking.max_gap"), 1)
    assert table.help_label.text().startswith("tracking.max_gap: most consecutive frames")
    assert "(default 1)" in table.help_label.text()


def test_every_built_in_method_parameter_has_its_own_help() -> None:
    # A parameter without an entry would fall back to a generic line.
    for method in ("phase", "bacteria", "fluorescence", "learned"):
        assert set(_HELP[method]) == set(method_defaults(method)), method


def test_the_help_of_a_method_parameter_goes_when_another_method_is_chosen(qtbot, window):
    tab = window.processing
    tab.segmentation.set_method("bacteria")
    tab.parameters.setCurrentCell(_row_names(tab).index("segmentation.pale"), 1)
    assert tab.parameters.help_label.text().startswith("segmentation.pale: ")
    tab.segmentation.set_method("learned")
    assert "segmentation.pale" not in tab.parameters.help_label.text()


def test_tracking_rows_show_the_defaults_that_suit_the_split_and_keep_what_the_user_set(
        qtbot, window, movie, tmp_path):
    tab = window.processing
    load_movie(qtbot, tab, movie)
    set_up_run(tab, tmp_path / "out", executor="thread")
    table = tab.parameters
    tab.segmentation.set_method("fluorescence")
    table.set_value("segmentation.split", "shape")
    assert table.value("tracking.rejoin_pieces") == "False"
    table.set_value("tracking.max_gap", "2")  # the user's own value stays through it all
    table.set_value("n_workers", "two")  # a bad value elsewhere does not stop the rows
    table.set_value("segmentation.split", "brightness")
    assert table.value("tracking.rejoin_pieces") == "True"
    assert table.value("tracking.min_daughter_overlap") == "0.4"
    assert table.value("tracking.max_gap") == "2"
    table.set_value("n_workers", "1")
    # What the rows show is what the run does: only the user's own values are sent.
    config = tab.config()
    assert config.tracking == {"max_gap": 2}
    tracking = config.step_parameters()["tracking"]
    assert tracking["rejoin_pieces"] and tracking["min_daughter_overlap"] == 0.4
    table.set_value("tracking.rejoin_pieces", "False")
    assert tab.config().tracking == {"max_gap": 2, "rejoin_pieces": False}
    tab.segmentation.set_method("phase")
    assert table.value("tracking.min_daughter_overlap") == "0.5"
    assert table.value("tracking.rejoin_pieces") == "False"
    assert tab.config().tracking == {"max_gap": 2}
    # Back to fluorescence, the user's False is kept though phase's default was False too.
    tab.segmentation.set_method("fluorescence")
    assert table.value("tracking.rejoin_pieces") == "False"
    assert tab.config().tracking == {"max_gap": 2, "rejoin_pieces": False}
    # A blank row goes back to the default that suits the split.
    table.set_value("tracking.rejoin_pieces", "")
    table.set_value("segmentation.split", "shape")
    assert table.value("tracking.rejoin_pieces") == "False"
    table.set_value("segmentation.split", "brightness")
    assert table.value("tracking.rejoin_pieces") == "True"
    # A saved session restores the split before the rows that follow it, in any key order.
    table.set_texts({"tracking.rejoin_pieces": "True", "segmentation.split": "shape"})
    assert tab.config().tracking == {"max_gap": 2, "rejoin_pieces": True}
