"""Driving the processing tab the way a user would."""

from __future__ import annotations

from pathlib import Path

from fovflow.gui.processing_tab import ProcessingTab


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


def statuses(tab: ProcessingTab) -> dict[int, str]:
    table = tab.fov_table
    return {int(table.item(row, 0).text()): table.item(row, 1).text()
            for row in range(table.rowCount())}
