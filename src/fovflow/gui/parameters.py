"""The processing parameters table: FOV range, workers, batch size, executor, step parameters.

Each row shows a parameter and its value as text; a step parameter whose text still equals its
default is not sent, so defaults keep living in the algorithms' signatures.
"""

from __future__ import annotations

from typing import Any

import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from fovflow.errors import ConfigError
from fovflow.workflow.config import WorkflowConfig

STEPS = ("segmentation", "background", "tracking", "extraction")
_GENERAL = {
    "fovs": ("all", "FOVs to process, e.g. 0-9,12 (all: every FOV of the file)"),
    "n_workers": ("2", "worker processes or threads"),
    "batch_size": ("auto", "most FOVs in flight at once (auto: n_workers)"),
    "executor": ("process", "process, thread or serial"),
}


class ParameterTable(QTableWidget):
    """Two columns, parameter and value; values are edited in place."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["parameter", "value"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().hide()
        self._defaults: dict[str, str] = {}
        probe = WorkflowConfig(input=".", output=".")
        rows = {name: value for name, (value, _) in _GENERAL.items()}
        for step, parameters in probe.step_parameters().items():
            rows.update({f"{step}.{name}": _text(value) for name, value in parameters.items()})
        for name, value in rows.items():
            self._add_row(name, value, _GENERAL.get(name, ("", f"{name.split('.')[0]} step"))[1])

    def set_value(self, name: str, value: str) -> None:
        """Set the text of parameter `name` (e.g. ``"extraction.min_length"``)."""
        self.item(self._row(name), 1).setText(value)

    def value(self, name: str) -> str:
        return self.item(self._row(name), 1).text().strip()

    def overrides(self) -> dict[str, Any]:
        """The `WorkflowConfig` keys for the current values (step parameters only if changed).

        Raises
        ------
        ConfigError
            When a value cannot be read as a number, text or list.
        """
        batch = self.value("batch_size")
        config: dict[str, Any] = {
            "fovs": self.value("fovs") or "all",
            "n_workers": _integer("n_workers", self.value("n_workers")),
            "batch_size": None if batch.lower() in ("", "auto") else _integer("batch_size", batch),
            "executor": self.value("executor"),
        }
        for name, default in self._defaults.items():
            step, _, parameter = name.partition(".")
            if step in STEPS and self.value(name) != default:
                config.setdefault(step, {})[parameter] = _parse(name, self.value(name))
        return config

    def _add_row(self, name: str, value: str, tip: str) -> None:
        row = self.rowCount()
        self.insertRow(row)
        key = QTableWidgetItem(name)
        key.setFlags(key.flags() & ~Qt.ItemFlag.ItemIsEditable)
        key.setToolTip(tip)
        self.setItem(row, 0, key)
        self.setItem(row, 1, QTableWidgetItem(value))
        self._defaults[name] = value

    def _row(self, name: str) -> int:
        return list(self._defaults).index(name)


def _text(value: Any) -> str:
    return "none" if value is None else str(value)


def _parse(name: str, text: str) -> Any:
    if text.lower() == "none":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"parameter {name}: cannot read {text!r}") from None


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {text!r}") from None
