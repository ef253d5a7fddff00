"""The traces panel: a page of cells, the selected one bold, bad ones dashed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fovflow.gui.trace_plot import PAGE_SIZE, TracePlot


def _traces(n_cells: int, n_frames: int = 4) -> pd.DataFrame:
    cells = np.repeat(np.arange(1, n_cells + 1), n_frames)
    frames = np.tile(np.arange(n_frames), n_cells)
    return pd.DataFrame({"fov": 0, "cell": cells, "frame": frames, "time": frames * 10.0,
                         "good": True, "position_x": 1.0, "position_y": 1.0,
                         "area": cells * 100 + frames, "intensity_total": cells * 1.0})


def test_a_page_of_cells_is_plotted_and_selecting_a_cell_turns_to_its_page(qtbot) -> None:
    plot = TracePlot()
    qtbot.addWidget(plot)
    good = {cell: cell != 3 for cell in range(1, 2 * PAGE_SIZE + 4)}
    plot.show_fov(_traces(len(good)), good, "min")
    assert [plot.feature_combo.itemText(i) for i in range(2)] == ["area", "intensity_total"]
    assert plot.page_spin.maximum() == 3
    assert [line.get_label() for line in plot.axes.lines] == [str(c) for c in range(1, 11)]
    assert plot.axes.lines[2].get_linestyle() == "--"  # cell 3 is bad
    assert plot.axes.get_xlabel() == "time (h)" and plot.axes.get_ylabel() == "area"

    plot.select(PAGE_SIZE + 5)
    assert plot.page_spin.value() == 2
    widths = {line.get_label(): line.get_linewidth() for line in plot.axes.lines}
    assert widths[str(PAGE_SIZE + 5)] == 2.5 and widths[str(PAGE_SIZE + 1)] == 1.0

    good[PAGE_SIZE + 5] = False  # the tab edits the same mapping; the next redraw shows it
    plot.plot()
    dashed = {line.get_label() for line in plot.axes.lines if line.get_linestyle() == "--"}
    assert dashed == {str(PAGE_SIZE + 5)}


def _family_traces() -> pd.DataFrame:
    """Cell 1 divides at frame 4 into 3 and 4; cell 2 never divides."""
    rows = []
    for cell, parent, frames in [(1, 0, range(4)), (2, 0, range(8)), (3, 1, range(4, 8)),
                                 (4, 1, range(4, 8))]:
        rows += [{"fov": 0, "cell": cell, "frame": t, "time": 600.0 * t, "good": True,
                  "position_x": 1.0, "position_y": 1.0, "parent": parent, "area": 10.0 * t}
                 for t in frames]
    return pd.DataFrame(rows)


def test_divisions_are_marked_and_the_lineage_view_plots_mother_and_daughters(qtbot) -> None:
    plot = TracePlot()
    qtbot.addWidget(plot)
    traces = _family_traces()
    plot.show_fov(traces, {cell: True for cell in (1, 2, 3, 4)}, "s")
    starts = [line for line in plot.axes.lines if line.get_marker() == "^"]
    ends = [line for line in plot.axes.lines if line.get_marker() == "v"]
    assert sorted(line.get_xdata()[0] for line in starts) == [4 / 6, 4 / 6]  # frame 4, in h
    assert [line.get_xdata()[0] for line in ends] == [3 / 6]  # the mother's last frame

    plot.lineage_box.setChecked(True)
    plot.select(3)  # a daughter: her mother and her sister too
    assert [line.get_label() for line in plot.axes.lines if line.get_marker() == "None"] == [
        "1", "3", "4"]
    assert not plot.page_spin.isEnabled()
    plot.select(2)
    assert plot.shown_cells() == [2]  # no division: the cell alone


def test_the_lineage_file_names_daughters_without_a_trace(qtbot) -> None:
    from fovflow.processing.lineage import Lineage

    plot = TracePlot()
    qtbot.addWidget(plot)
    lineage = Lineage(np.array([1, 2, 3, 4, 5]), np.array([0, 0, 1, 1, 3]),
                      np.array([0, 0, 4, 4, 7]), np.array([3, 7, 7, 7, 7]))
    plot.show_fov(_family_traces(), {cell: True for cell in (1, 2, 3, 4)}, "s", lineage)
    plot.lineage_box.setChecked(True)
    plot.select(1)
    assert plot.shown_cells() == [1, 3, 4, 5]
    assert plot.note_label.text().startswith("no trace for cell(s) 5")
