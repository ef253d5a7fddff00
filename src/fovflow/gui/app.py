"""The main window: processing, visualization and analysis tabs, a log dock and a status bar."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QTabWidget

from fovflow import __version__
from fovflow.gui.analysis_tab import AnalysisTab
from fovflow.gui.log_panel import LogDock, show_error
from fovflow.gui.processing_tab import ProcessingTab
from fovflow.gui.visualization_tab import VisualizationTab
from fovflow.gui.workers import running_handles


class MainWindow(QMainWindow):
    """The fovflow window. Closing it while work runs cancels the work and closes once every
    worker thread has ended; it never waits in the GUI thread."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"fovflow {__version__}")
        self.resize(1280, 820)
        self.processing = ProcessingTab()
        self.visualization = VisualizationTab()
        self.analysis = AnalysisTab()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.processing, "Processing")
        self.tabs.addTab(self.visualization, "Visualization")
        self.tabs.addTab(self.analysis, "Analysis")
        self.setCentralWidget(self.tabs)
        self.log_dock = LogDock(self)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [140], Qt.Orientation.Vertical)
        self.statusBar().showMessage("ready")
        for tab in (self.processing, self.visualization, self.analysis):
            tab.status.connect(self.show_status)
        self.processing.run_finished.connect(self.visualization.offer_run)
        self.processing.merge_panel.merged.connect(self.analysis.offer_tables)
        self._closing = False

    @Slot(str)
    def show_status(self, message: str) -> None:
        self.statusBar().showMessage(message)

    @property
    def closing(self) -> bool:
        """True once a close was asked while work was still running."""
        return self._closing

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self._closing and not self._unsaved_marks_settled():
            event.ignore()
            return
        handles = running_handles()
        if handles:
            if not self._closing:
                self._closing = True
                self.show_status(f"cancelling {len(handles)} running job(s) before closing…")
                for handle in handles:
                    handle.ended.connect(self._close_when_idle)
                    handle.stop()
            event.ignore()
            return
        self.log_dock.detach()
        event.accept()

    def _unsaved_marks_settled(self) -> bool:
        """Ask what to do with good/bad marks not yet saved; False when the user cancels."""
        count = sum(len(edits) for edits in self.visualization.unsaved.values())
        if not count:
            return True
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        answer = QMessageBox.question(
            self, "fovflow", f"{count} cell quality mark(s) are not saved. Save them to the "
            "run's traces before closing?", buttons, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            try:
                self.visualization.save_quality()
            except OSError as exc:  # a full disk or a folder gone: keep the window and marks
                show_error(self, "fovflow", f"the marks could not be saved: {exc}")
                return False
        return answer != QMessageBox.StandardButton.Cancel

    @Slot()
    def _close_when_idle(self) -> None:
        if not running_handles():
            self.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window and run the Qt event loop until it closes; return the exit status."""
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setApplicationName("fovflow")
    window = MainWindow()
    window.show()
    return app.exec()
