"""The main window: processing, visualization and analysis tabs, a log dock and a status bar."""

from __future__ import annotations

import platform
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import metadata
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, QUrl, Slot, qVersion
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QTabWidget

import fovflow
from fovflow import __version__
from fovflow.gui.analysis_tab import AnalysisTab
from fovflow.gui.log_panel import LogDock, show_error
from fovflow.gui.processing_tab import ProcessingTab
from fovflow.gui.settings import restore_session, save_session
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
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("&README", self.open_readme)
        help_menu.addAction("&About fovflow", self.show_about)
        restore_session(self)

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
        save_session(self)
        self.log_dock.detach()
        event.accept()

    @Slot()
    def open_readme(self) -> None:
        """Open the README (how to install, run, merge, fit and use this window)."""
        if not QDesktopServices.openUrl(readme_url()):
            self.show_status(f"no application opens {readme_url().toString()}")

    @Slot()
    def show_about(self) -> QMessageBox:
        """fovflow's version, with Python's and Qt's, and where the README is (non-blocking)."""
        box = QMessageBox(QMessageBox.Icon.Information, "About fovflow", (
            f"<b>fovflow {__version__}</b><br>Python {platform.python_version()}, Qt "
            f"{qVersion()}, PySide6 {PySide6.__version__}<br>"
            f'<a href="{readme_url().toString()}">README</a>: installing, the commands and '
            "this window"), QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

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


def readme_url() -> QUrl:
    """The README of this copy of fovflow: beside the package in a source checkout or an
    editable install, else the copy in the installed package's metadata, written out."""
    readme = Path(fovflow.__file__).resolve().parents[2] / "README.md"
    if not readme.is_file():
        readme = Path(tempfile.gettempdir()) / f"fovflow-{__version__}-README.md"
        record = metadata("fovflow")  # the long description: the body, or an old-style field
        readme.write_text(record.get_payload() or record.get("Description", ""), encoding="utf-8")
    return QUrl.fromLocalFile(str(readme))


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window and run the Qt event loop until it closes; return the exit status."""
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setApplicationName("fovflow")
    window = MainWindow()
    window.show()
    return app.exec()
