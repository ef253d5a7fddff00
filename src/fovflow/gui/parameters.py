"""The processing parameters table: FOV range, Z plane, workers, batch size, executor, step
parameters.

Each row shows a parameter, its value as text and its unit; the line under the table says what
the current row's parameter does. A step parameter whose text is blank or still equals its
default is not sent, so defaults keep living in the algorithms' signatures. The
segmentation rows are those of the chosen method (`set_segmentation_method`); its method and
diameter are chosen beside the table (`fovflow.gui.segmentation_fields`).
"""

from __future__ import annotations

from typing import Any

import yaml
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QWidget

from fovflow.errors import ConfigError
from fovflow.execution.knobs import usable_cores
from fovflow.gui.parameter_help import STEP_HELP
from fovflow.gui.segmentation_fields import segmentation_rows
from fovflow.workflow.config import effective_parameters

STEPS = ("segmentation", "background", "tracking", "extraction")
_GENERAL = {"fovs": "all", "z": "none", "n_workers": str(usable_cores()), "max_in_flight": "auto",
            "executor": "process"}


class ParameterTable(QTableWidget):
    """Three columns, parameter, value and unit; values are edited in place. `help_label` (for
    the caller to place under the table) says what the current row's parameter does."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["parameter", "value", "unit"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.help_label = QLabel("")
        self.help_label.setWordWrap(True)
        self.currentCellChanged.connect(self._show_help)
        self.itemChanged.connect(self._edited_row)
        self._defaults: dict[str, str] = {}
        # Rows the user set, even to a default: the rows that follow a method or split keep
        # them (a tracking value equal to one split's default is still the user's choice).
        self._set_by_user: set[str] = set()
        self._method = "phase"
        # Rows being filled in by the table, not the user (as they are added, the later
        # rows may not be there yet).
        self._filling = False
        self._fill(self._rows("phase"), {})

    def set_segmentation_method(self, method: str) -> None:
        """Show `method`'s parameter rows, at their defaults. The later steps' rows keep the
        text the user changed; the others show the defaults that suit `method` (e.g. the
        fluorescence method's tracking)."""
        kept = {name: text for name, text in self.texts().items()
                if not name.startswith("segmentation.")}
        self._set_by_user = {name for name, text in kept.items() if text}
        self.setRowCount(0)
        self._defaults = {}
        self._method = method
        self._fill(self._rows(method), kept)

    def set_value(self, name: str, value: str) -> None:
        """Set the text of parameter `name` (e.g. ``"extraction.min_length"``)."""
        self.item(self._row(name), 1).setText(value)

    def value(self, name: str) -> str:
        return self.item(self._row(name), 1).text().strip()

    def texts(self) -> dict[str, str]:
        """The values the user set or that differ from their defaults, by parameter name."""
        return {name: self.value(name) for name, default in self._defaults.items()
                if self.value(name) != default or name in self._set_by_user}

    def set_texts(self, texts: dict[str, str]) -> None:
        """Set the values of the parameters in `texts` that the table has (others are
        ignored: a plugin's method that is gone, a parameter renamed). The segmentation's
        first, since the later steps' defaults follow them."""
        for name, text in sorted(texts.items(),
                                 key=lambda item: not item[0].startswith("segmentation.")):
            if name in self._defaults:
                self.set_value(name, str(text))

    def overrides(self) -> dict[str, Any]:
        """The `WorkflowConfig` keys for the current values (step parameters only if changed;
        the segmentation method and diameter are not the table's).

        Raises
        ------
        ConfigError
            When a value cannot be read as a number, text or list.
        """
        in_flight = self.value("max_in_flight")
        config: dict[str, Any] = {
            "fovs": self.value("fovs") or "all",
            "z": None if self.value("z").lower() in ("", "none") else self.value("z"),
            "n_workers": _integer("n_workers", self.value("n_workers")),
            "max_in_flight": (None if in_flight.lower() in ("", "auto")
                              else _integer("max_in_flight", in_flight)),
            "executor": self.value("executor"),
        }
        for step in STEPS:
            if changed := self._changed(step):
                config[step] = changed
        return config

    def _changed(self, step: str) -> dict[str, Any]:
        """The parameters of `step` whose text is neither blank nor its default, read."""
        return {name.partition(".")[2]: _parse(name, self.value(name))
                for name, default in self._defaults.items()
                if name.startswith(f"{step}.") and self.value(name) not in ("", default)}

    def _rows(self, method: str) -> dict[str, tuple[str, str, str]]:
        general = {name: _row(name, default) for name, default in _GENERAL.items()}
        return {**general, **segmentation_rows(method), **_later_rows(method, {})}

    def _edited_row(self, item: QTableWidgetItem) -> None:
        """Note a value the user set (a blank one hands the row back to its default); after
        a segmentation row's edit, `_follow_segmentation`."""
        name = self.item(item.row(), 0)
        if self._filling or item.column() != 1 or name is None:
            return
        if item.text().strip():
            self._set_by_user.add(name.text())
        else:
            self._set_by_user.discard(name.text())
        if name.text().startswith("segmentation."):
            self._follow_segmentation()

    def _follow_segmentation(self) -> None:
        """The later steps' rows that the user did not set show the defaults that suit the
        segmentation rows' values (the tracking of a split)."""
        try:  # only the segmentation rows: a bad value elsewhere must not stop this
            rows = _later_rows(self._method, self._changed("segmentation"))
        except ConfigError:  # a value being typed; the run's checks will say what is wrong
            return
        self._filling = True  # the texts set here are not the user's
        try:
            for later, (default, _unit, tip) in rows.items():
                row = self._row(later)
                if later not in self._set_by_user:
                    self.item(row, 1).setText(default)
                self._defaults[later] = default
                for column in range(3):
                    self.item(row, column).setToolTip(f"{tip} (default {default})")
        finally:
            self._filling = False

    def _fill(self, rows: dict[str, tuple[str, str, str]], texts: dict[str, str]) -> None:
        """Add `rows` (name: (default text, unit, help)), with `texts` in place of some
        defaults."""
        self._filling = True
        try:
            for name, (default, unit, tip) in rows.items():
                self._add_row(name, default, unit, tip)
                if name in texts:
                    self.set_value(name, texts[name])
        finally:
            self._filling = False

    def _add_row(self, name: str, value: str, unit: str, tip: str) -> None:
        row = self.rowCount()
        self.insertRow(row)
        for column, text in enumerate((name, value, unit)):
            item = QTableWidgetItem(text)
            if column != 1:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            item.setToolTip(f"{tip} (default {value})")
            self.setItem(row, column, item)
        self._defaults[name] = value

    def _show_help(self, row: int, _column: int, _previous_row: int, _previous: int) -> None:
        # No current row (the rows of another method were just filled in): no stale help.
        text = (f"{self.item(row, 0).text()}: {self.item(row, 0).toolTip()}"
                if 0 <= row < self.rowCount() else "")
        self.help_label.setText(text)

    def _row(self, name: str) -> int:
        return list(self._defaults).index(name)


def _later_rows(method: str, segmentation: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """The rows of the steps after segmentation, at the defaults that suit `method` with
    the `segmentation` parameters (`effective_parameters`)."""
    steps = effective_parameters({"segmentation": {**segmentation, "method": method}})
    return {f"{step}.{name}": _row(f"{step}.{name}", _text(value))
            for step, parameters in steps.items() if step != "segmentation"
            for name, value in parameters.items()}


def _row(name: str, default: str) -> tuple[str, str, str]:
    unit, tip = STEP_HELP.get(name, ("", name.replace(".", " step: ", 1)))
    return default, unit, tip


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
