"""The processing parameters table: FOV range, Z plane, workers, batch size, executor, step
parameters.

Each row shows a parameter and its value as text; a step parameter whose text is blank or still
equals its default is not sent, so defaults keep living in the algorithms' signatures. The
segmentation rows are those of the chosen method (`set_segmentation_method`); its method and
diameter are chosen beside the table (`fovflow.gui.segmentation_fields`).
"""

from __future__ import annotations

from typing import Any

import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from fovflow.errors import ConfigError
from fovflow.gui.segmentation_fields import segmentation_rows
from fovflow.workflow.config import EXECUTORS, WorkflowConfig

STEPS = ("segmentation", "background", "tracking", "extraction")
_GENERAL = {
    "fovs": ("all", "FOVs to process, e.g. 0-9,12 (all: every FOV of the file)"),
    "z": ("none", "Z stacks: a plane index, max or mean, per frame (none: a 2-D file)"),
    "n_workers": ("2", "worker processes or threads"),
    "batch_size": ("auto", "most FOVs in flight at once (auto: n_workers)"),
    "executor": ("process", f"how FOVs run in parallel: {', '.join(EXECUTORS)}"),
}


class ParameterTable(QTableWidget):
    """Two columns, parameter and value; values are edited in place."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["parameter", "value"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self._defaults: dict[str, str] = {}
        self._others: dict[str, tuple[str, str]] = {}  # rows of the steps after segmentation
        probe = WorkflowConfig(input=".", output=".")
        for step, parameters in probe.step_parameters().items():
            if step != "segmentation":
                self._others.update({f"{step}.{name}": (_text(value), f"{step} step")
                                     for name, value in parameters.items()})
        self._fill({**_GENERAL, **segmentation_rows("phase"), **self._others}, {})

    def set_segmentation_method(self, method: str) -> None:
        """Show `method`'s parameter rows, at their defaults; the other rows keep their text."""
        kept = {name: self.value(name) for name in self._defaults
                if not name.startswith("segmentation.")}
        self.setRowCount(0)
        self._defaults = {}
        self._fill({**_GENERAL, **segmentation_rows(method), **self._others}, kept)

    def set_value(self, name: str, value: str) -> None:
        """Set the text of parameter `name` (e.g. ``"extraction.min_length"``)."""
        self.item(self._row(name), 1).setText(value)

    def value(self, name: str) -> str:
        return self.item(self._row(name), 1).text().strip()

    def overrides(self) -> dict[str, Any]:
        """The `WorkflowConfig` keys for the current values (step parameters only if changed;
        the segmentation method and diameter are not the table's).

        Raises
        ------
        ConfigError
            When a value cannot be read as a number, text or list.
        """
        batch = self.value("batch_size")
        config: dict[str, Any] = {
            "fovs": self.value("fovs") or "all",
            "z": None if self.value("z").lower() in ("", "none") else self.value("z"),
            "n_workers": _integer("n_workers", self.value("n_workers")),
            "batch_size": None if batch.lower() in ("", "auto") else _integer("batch_size", batch),
            "executor": self.value("executor"),
        }
        for name, default in self._defaults.items():
            step, _, parameter = name.partition(".")
            if step in STEPS and self.value(name) not in ("", default):
                config.setdefault(step, {})[parameter] = _parse(name, self.value(name))
        return config

    def _fill(self, rows: dict[str, tuple[str, str]], texts: dict[str, str]) -> None:
        """Add `rows` (name: (default text, help)), with `texts` in place of some defaults."""
        for name, (default, tip) in rows.items():
            self._add_row(name, default, tip)
            if name in texts:
                self.set_value(name, texts[name])

    def _add_row(self, name: str, value: str, tip: str) -> None:
        row = self.rowCount()
        self.insertRow(row)
        key = QTableWidgetItem(name)
        key.setFlags(key.flags() & ~Qt.ItemFlag.ItemIsEditable)
        key.setToolTip(tip)
        self.setItem(row, 0, key)
        item = QTableWidgetItem(value)
        item.setToolTip(f"{tip} (default {value})")
        self.setItem(row, 1, item)
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
