"""The fit's parameter table: per parameter a value, a "fixed" box, bounds and the unit, and a
help line saying what the current row's parameter is."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QWidget

from fovflow.analysis.fitting import FitSettings
from fovflow.analysis.models import Model
from fovflow.errors import ConfigError

_COLUMNS = ["parameter", "value", "fixed", "lower", "upper", "unit"]


class FitParameterTable(QTableWidget):
    """Shows a model's parameters; `settings()` turns the edits into `FitSettings`.
    `help_label` (for the caller to place) describes the current row's parameter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(_COLUMNS), parent)
        self.setHorizontalHeaderLabels(_COLUMNS)
        self.verticalHeader().hide()
        # Every column as wide as its text; the caller lets the table be as wide as them all.
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.help_label = QLabel("")
        self.help_label.setWordWrap(True)
        self.currentCellChanged.connect(self._show_help)
        self.model: Model | None = None

    def show_model(self, model: Model) -> None:
        """Show `model`'s own defaults and bounds."""
        self._show(model, model)

    def show_recorded(self, model: Model, record: Mapping[str, Any]) -> None:
        """Show `model` with the fixed values and bounds a fitted table's record holds."""
        fixed = {name: float(value) for name, value in record.get("fixed", [])}
        bounds = {name: (float(low), float(high)) for name, (low, high) in
                  record.get("bounds", [])}
        self._show(model, model.constrain(fixed=fixed, bounds=bounds))

    def constrained(self) -> Model:
        """The model with the table's edits, as the fit would use it."""
        return self.settings().resolve()

    def _show(self, model: Model, shown: Model) -> None:
        self.model = model  # edits are compared with the model's own values
        self.setRowCount(len(shown.parameters))
        for row, parameter in enumerate(shown.parameters):
            name = QTableWidgetItem(parameter.name)
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            name.setToolTip(_help(parameter.description, parameter.unit, parameter.rationale))
            fixed = QTableWidgetItem()
            fixed.setFlags(fixed.flags() & ~Qt.ItemFlag.ItemIsEditable)
            fixed.setCheckState(Qt.CheckState.Checked if parameter.fixed
                                else Qt.CheckState.Unchecked)
            value = QTableWidgetItem(f"{parameter.default:g}")
            value.setToolTip("used when the parameter is fixed")
            self.setItem(row, 0, name)
            self.setItem(row, 1, value)
            self.setItem(row, 2, fixed)
            self.setItem(row, 3, QTableWidgetItem(f"{parameter.lower:g}"))
            self.setItem(row, 4, QTableWidgetItem(f"{parameter.upper:g}"))
            unit = QTableWidgetItem(parameter.unit)
            unit.setFlags(unit.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.setItem(row, 5, unit)
        self._show_help(0, 0, -1, -1)
        self.resizeColumnsToContents()
        # As wide as its columns: a splitter or a small window then cannot clip a value.
        self.setMinimumWidth(self.horizontalHeader().length()
                             + self.verticalScrollBar().sizeHint().width()
                             + 2 * self.frameWidth())
        self.setMaximumHeight(self.horizontalHeader().height() + self.verticalHeader().length()
                              + self.horizontalScrollBar().sizeHint().height()
                              + 2 * self.frameWidth())  # no empty rows below the parameters

    def settings(self) -> FitSettings:
        """`FitSettings` with the fixed values and the bounds that differ from the model's.

        Raises
        ------
        ConfigError
            On a value that is not a number, or settings the model refuses.
        """
        if self.model is None:
            raise ConfigError("choose a model")
        fixed: dict[str, float] = {}
        bounds: dict[str, tuple[float, float]] = {}
        for row, parameter in enumerate(self.model.parameters):
            lower, upper = self._number(row, 3), self._number(row, 4)
            if (lower, upper) != (parameter.lower, parameter.upper):
                bounds[parameter.name] = (lower, upper)
            if self.item(row, 2).checkState() == Qt.CheckState.Checked:
                fixed[parameter.name] = self._number(row, 1)
        return FitSettings.create(self.model.name, fixed=fixed, bounds=bounds)

    def _show_help(self, row: int, _column: int, _previous_row: int, _previous: int) -> None:
        if 0 <= row < self.rowCount():
            self.help_label.setText(f"{self.item(row, 0).text()}: {self.item(row, 0).toolTip()}")

    def _number(self, row: int, column: int) -> float:
        text = self.item(row, column).text().strip()
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{self.item(row, 0).text()} {_COLUMNS[column]}: {text!r} is not "
                              f"a number (inf and -inf are allowed)") from None
        if math.isnan(value):
            raise ConfigError(f"{self.item(row, 0).text()} {_COLUMNS[column]} must not be nan")
        return value


def _help(description: str, unit: str, rationale: str) -> str:
    text = f"{description} ({unit})" if unit else description
    return f"{text} — {rationale}" if rationale else text
