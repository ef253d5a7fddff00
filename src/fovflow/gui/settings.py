"""What the window remembers between sessions (QSettings): its geometry and dock, the last files
and folders of each tab (where the file dialogs then open) and the parameters typed.

Only texts are restored: no file is read and no run is opened at start-up, so a moved or deleted
file costs nothing until it is used.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QLineEdit

if TYPE_CHECKING:
    from fovflow.gui.app import MainWindow

ORGANIZATION = APPLICATION = "fovflow"


def open_settings() -> QSettings:
    """The user's fovflow settings, an INI file in Qt's per-user configuration folder."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION,
                     APPLICATION)


def save_session(window: MainWindow) -> None:
    """Remember the window's layout, paths and parameters."""
    settings = open_settings()
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState())
    processing, analysis = window.processing, window.analysis
    for key, text in _paths(window).items():
        settings.setValue(key, text)
    settings.setValue("processing/method", processing.segmentation.method())
    settings.setValue("processing/diameter", processing.segmentation.diameter_edit.text())
    settings.setValue("processing/parameters", json.dumps(processing.parameters.texts()))
    settings.setValue("analysis/model", analysis.model_combo.currentText())
    settings.setValue("analysis/interval_min", analysis.interval_spin.value())
    settings.setValue("analysis/workers", analysis.workers_spin.value())
    settings.sync()


def restore_session(window: MainWindow) -> None:
    """Put back what `save_session` remembered (anything missing keeps its default)."""
    settings = open_settings()
    if isinstance(geometry := settings.value("window/geometry"), QByteArray):
        window.restoreGeometry(geometry)
    if isinstance(state := settings.value("window/state"), QByteArray):
        window.restoreState(state)
    edits = _edits(window)
    for key in edits:
        if text := str(settings.value(key, "") or ""):
            edits[key].setText(text)
    processing, analysis = window.processing, window.analysis
    method = str(settings.value("processing/method", "") or "")
    if processing.segmentation.method_combo.findText(method) >= 0:
        processing.segmentation.set_method(method)  # its rows first, then their texts
    if diameter := str(settings.value("processing/diameter", "") or ""):
        processing.segmentation.diameter_edit.setText(diameter)
    try:
        texts = json.loads(str(settings.value("processing/parameters", "{}")))
    except json.JSONDecodeError:  # a hand-edited settings file: the defaults then
        texts = {}
    processing.parameters.set_texts(texts if isinstance(texts, dict) else {})
    if analysis.model_combo.findText(model := str(settings.value("analysis/model", ""))) >= 0:
        analysis.model_combo.setCurrentText(model)
    analysis.interval_spin.setValue(float(settings.value("analysis/interval_min",
                                                         analysis.interval_spin.value())))
    analysis.workers_spin.setValue(int(settings.value("analysis/workers",
                                                      analysis.workers_spin.value())))


def _edits(window: MainWindow) -> dict[str, QLineEdit]:
    # Not the output folder: a new file's run folder is named after the file, and another
    # file's run folder would be refused.
    return {"processing/input": window.processing.input_edit,
            "merge/run_dir": window.processing.merge_panel.run_dir_edit,
            "visualization/run_dir": window.visualization.run_edit,
            "analysis/path": window.analysis.path_edit}


def _paths(window: MainWindow) -> dict[str, str]:
    return {key: edit.text().strip() for key, edit in _edits(window).items()}
