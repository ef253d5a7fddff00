"""The log dock: fovflow's log records, from any thread, shown live in the window."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDockWidget, QMessageBox, QPlainTextEdit, QWidget

MAX_LINES = 5000


class _LineEmitter(QObject):
    line = Signal(str)


class QtLogHandler(logging.Handler):
    """Turns log records into a Qt signal; emitting is thread-safe, the slot runs in the GUI
    thread."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.emitter = _LineEmitter()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s",
                                            datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.emitter.line.emit(self.format(record))


class LogDock(QDockWidget):
    """A read-only, bounded view of the ``fovflow`` logger, attached while the dock exists."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Log", parent)
        self.setObjectName("log_dock")
        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(MAX_LINES)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setWidget(self.view)
        self.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea
                             | Qt.DockWidgetArea.RightDockWidgetArea)
        self.handler = QtLogHandler()
        self.handler.emitter.line.connect(self.view.appendPlainText)
        self._logger = logging.getLogger("fovflow")
        self._logger.addHandler(self.handler)
        if self._logger.level == logging.NOTSET or self._logger.level > logging.INFO:
            self._logger.setLevel(logging.INFO)

    def detach(self) -> None:
        """Stop receiving log records (when the window closes)."""
        self._logger.removeHandler(self.handler)


def show_error(parent: QWidget, title: str, message: str, details: str = "") -> QMessageBox:
    """A non-modal error dialog with the traceback under "Show Details"; it never blocks."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                      parent)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
