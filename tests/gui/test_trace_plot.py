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
    assert plot.axes.get_xlabel() == "time (min)" and plot.axes.get_ylabel() == "area"

    plot.select(PAGE_SIZE + 5)
    assert plot.page_spin.value() == 2
    widths = {line.get_label(): line.get_linewidth() for line in plot.axes.lines}
    assert widths[str(PAGE_SIZE + 5)] == 2.5 and widths[str(PAGE_SIZE + 1)] == 1.0

    good[PAGE_SIZE + 5] = False  # the tab edits the same mapping; the next redraw shows it
    plot.plot()
    dashed = {line.get_label() for line in plot.axes.lines if line.get_linestyle() == "--"}
    assert dashed == {str(PAGE_SIZE + 5)}
