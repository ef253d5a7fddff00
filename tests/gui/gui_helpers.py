"""Driving the processing tab the way a user would, and a simulated sample table to fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fovflow.analysis.simulate import simulate_traces
from fovflow.gui.processing_tab import ProcessingTab
from fovflow.io.tables import SampleTable, cell_column, write_sample_table


def load_movie(qtbot, tab: ProcessingTab, movie: Path) -> None:
    """Load `movie` and wait for its metadata (read in a worker thread)."""
    tab.load_file(movie)
    qtbot.waitUntil(lambda: (tab.metadata is not None and tab.metadata.path == movie.resolve())
                    or (tab.metadata is not None and tab.metadata.path == movie), timeout=10_000)


def set_up_run(tab: ProcessingTab, output: Path, *, executor: str, workers: int = 2) -> None:
    tab.output_edit.setText(str(output))
    tab.parameters.set_value("executor", executor)
    tab.parameters.set_value("n_workers", str(workers))
    tab.parameters.set_value("extraction.min_length", "5")


def wait_for_run(qtbot, tab: ProcessingTab, timeout_ms: int = 60_000) -> None:
    """Wait until the run's thread has ended and Start is enabled again."""
    qtbot.waitUntil(lambda: not tab.running and tab.start_button.isEnabled(), timeout=timeout_ms)


def wait_until_a_fov_runs(qtbot, tab: ProcessingTab) -> None:
    """Wait until some FOV of the started run shows "running"."""
    qtbot.waitUntil(lambda: any(s.startswith("running") for s in statuses(tab).values()),
                    timeout=10_000)


def merge(qtbot, panel, run: Path, fovs: str, *, sample: str = "all",
          min_length: int = 5) -> None:
    """Merge FOVs `fovs` of `run` into one sample with the merge panel, as a user would."""
    panel.run_dir_edit.setText(str(run))
    panel.add_sample(sample, fovs)
    panel.min_length.setValue(min_length)
    with qtbot.waitSignal(panel.merged, timeout=10_000):
        panel.merge_button.click()


def statuses(tab: ProcessingTab) -> dict[int, str]:
    table = tab.monitor.fov_table
    return {int(table.item(row, 0).text()): table.item(row, 1).text()
            for row in range(table.rowCount())}


TIMES_MIN = np.arange(72) * 10.0


def write_table(folder: Path, n_cells: int, name: str = "ctrl_intensity_total_ch_1") -> Path:
    """A wide sample table (time in minutes) of simulated maturation traces, km = 1.0."""
    values, _ = simulate_traces("maturation", n_cells, TIMES_MIN / 60, fixed={"km": 1.0},
                                seed=3)
    frame = pd.DataFrame(values, index=pd.Index(TIMES_MIN, name="time"),
                         columns=[cell_column(0, cell) for cell in range(1, n_cells + 1)])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    write_sample_table(SampleTable(frame, "min"), path)
    return path
