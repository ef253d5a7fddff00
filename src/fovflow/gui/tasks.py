"""The long jobs of the window, each a `Worker`: read metadata, run, merge, fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.merge import Sample, merge_run
from fovflow.analysis.tables_fit import TableFitted, fit_tables
from fovflow.gui.workers import Worker
from fovflow.io.microscopy import DatasetMetadata, open_dataset
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import RunReport, run_workflow


@dataclass(frozen=True)
class ProgressEvent:
    """`progress` event of the merge and fit workers: `done` of `total` units of `label`."""

    label: str
    done: int
    total: int


class MetadataWorker(Worker):
    """Reads a microscopy file's metadata (seconds for ND2 or CZI through bioio: never in the GUI
    thread)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def work(self) -> DatasetMetadata:
        with open_dataset(self.path) as dataset:
            return dataset.metadata


class RunWorker(Worker):
    """Runs the workflow; every engine event is re-emitted as `progress` (a `RunFinished`
    event, with the report, comes last even when the run was cancelled)."""

    def __init__(self, config: WorkflowConfig, metadata: DatasetMetadata | None = None) -> None:
        super().__init__()
        self.config, self.metadata = config, metadata

    def work(self) -> RunReport:
        # The metadata the tab already read: reading the file again would stall the window.
        return run_workflow(self.config, on_event=self.progress.emit, cancel=self.cancel_token,
                            metadata=self.metadata)


class MergeWorker(Worker):
    """Merges a run's traces into sample tables; the result is the list of wide tables."""

    def __init__(self, run_dir: Path, samples: list[Sample], min_length: int) -> None:
        super().__init__()
        self.run_dir, self.samples, self.min_length = run_dir, samples, min_length

    def work(self) -> list[Path]:
        return merge_run(self.run_dir, self.samples, min_length=self.min_length,
                         progress=self._progress)

    def _progress(self, done: int, total: int) -> None:
        self.cancel_token.raise_if_cancelled()
        self.progress.emit(ProgressEvent("samples", done, total))


class FitWorker(Worker):
    """Fits every table in turn; `file_processed(table, TableFitted)` after each one."""

    def __init__(self, tables: list[Path], settings: FitSettings, *, n_workers: int,
                 frame_interval_h: float | None) -> None:
        super().__init__()
        self.tables, self.settings = tables, settings
        self.n_workers, self.frame_interval_h = n_workers, frame_interval_h

    def work(self) -> list[Path]:
        return fit_tables(self.tables, self.settings, n_workers=self.n_workers,
                          frame_interval_h=self.frame_interval_h, force=True,
                          on_event=self._table_fitted, progress=self._progress_for,
                          cancel=self.cancel_token)

    def _table_fitted(self, event: TableFitted) -> None:
        self.file_processed.emit(str(event.table), event)

    def _progress_for(self, table: Path) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            self.progress.emit(ProgressEvent(table.name, done, total))

        return progress

