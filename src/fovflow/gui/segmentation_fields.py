"""The processing tab's segmentation choices: the method and the cell diameter.

The method's own parameters are rows of the parameter table (`segmentation_rows` gives them,
with their help); changing the method replaces those rows with the new method's defaults.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QWidget

from fovflow.errors import PluginError
from fovflow.plugins import load_processing_plugins
from fovflow.processing.segmentation import METHODS, method_defaults

log = logging.getLogger(__name__)

METHOD_HELP = {
    "phase": "phase contrast: cells are textured (dark bodies, bright halos) on a smooth "
             "background",
    "bacteria": "bacteria: rod-shaped cells in phase contrast, dark rods parted by bright "
                "seams (microcolonies, filaments); the diameter is the rods' width",
    "fluorescence": "fluorescence: a nuclear or whole-cell marker, cells bright on dark",
    "learned": "learned: a small network trained on real cells (spread mammalian cells in "
               "phase contrast); slower, finds whole cells with their flat rims",
}
DIAMETER_HELP = (
    "Typical cell diameter, from which the method's sizes are derived.\n"
    "auto: estimated from a few frames of each FOV (a plugin's method may estimate it\n"
    "itself or need a number);\n"
    "a number: pixels of the file (e.g. 25);\n"
    "microns: a number with um (e.g. 12um), converted with the file's pixel size.")
_AUTO = "auto"  # the text of a parameter whose default (None) is derived from the diameter
_HELP: dict[str, dict[str, tuple[str, str]]] = {  # method -> parameter -> (unit, help)
    "phase": {
        "window": ("px", "side of the square of the local standard deviation (odd, >= 3)"),
        "threshold": ("", "otsu (any field, also confluent layers) or mode (mostly "
                          "background)"),
        "bins": ("", "histogram bins of the mode threshold"),
        "n_sigma": ("σ", "mode threshold: standard deviations above the background mode"),
        "opening": ("px", "side of the opening's square (odd)"),
        "closing": ("px", "side of the closing's square (odd)"),
        "min_border_area": ("px²", "smallest piece at the frame border kept as a cell"),
        "split": ("", "how touching cells are separated: bodies (dark bodies apart at the "
                      "bright seams, then by shape), bright (bright bodies: cells brighter "
                      "than their rim), intensity (flooded to the seams), distance (shape "
                      "alone) or none"),
        "neck": ("0-1", "bodies, bright and distance splits: how narrow a neck must be to cut (0 "
                        "keeps cells together)"),
        "min_area": ("px²", "smallest cell (bodies and bright splits: smallest body); "
                            "default: a disc of half the diameter (bright: a third)"),
        "min_texture": ("0-1", "drop regions fainter than this fraction of the frame's cells "
                               "(debris, out-of-focus particles; 0 keeps all)"),
        "working_diameter": ("px", "larger cells are split on the frame scaled down to this "
                                   "size (outlines stay full size); none: at full size"),
    },
    "bacteria": {
        "background": ("widths", "side of the square the rods' darkness is measured against "
                                 "(rods up to half of it wide are found)"),
        "low": ("σ", "darkness above the background's noise for a pixel to be part of a rod"),
        "high": ("σ", "darkness a rod must reach somewhere (hysteresis with low)"),
        "seam_scale": ("widths", "smoothing of the curvature that finds the bright seams "
                                 "between rods"),
        "seam_curvature": ("", "how sharply the image must peak across a bright line to "
                               "part rods there (larger: fewer cuts)"),
        "faint_seam": ("", "cut each piece again where the image peaks across a line by this "
                           "much of the piece's own darkness (pale rods pressed together in a "
                           "colony); 0: off"),
        "pale": ("0-1", "drop cells paler than this fraction of the rods' median darkness "
                        "(shadows, halo rims); 0 keeps all"),
        "min_area": ("px²", "smallest rod; default: 3/4 of a width squared"),
        "growth": ("widths", "how far the rods grow back into the dark pixels around them"),
        "filaments": ("true/false", "attach thin dark lines (stalks, filaments) to the rod "
                                    "they touch; long lone ones are cells"),
        "filament_scale": ("widths", "smoothing of the thin lines' curvature"),
        "filament_length": ("widths", "shortest lone filament kept as a cell"),
        "working_width": ("px", "wider rods are segmented on the frame scaled down to this "
                                "width (labels come back full size); none: at full size"),
    },
    "fluorescence": {
        "threshold": ("", "split: shape only: triangle, otsu or li (automatic), or a fixed "
                          "value in the frame's units (the brightness split sets its own "
                          "from the noise)"),
        "local": ("true/false", "subtract the local background first"),
        "smoothing": ("px", "Gaussian sigma"),
        "split": ("", "brightness (the hills of the brightness: touching and dim nuclei; "
                      "its tracking defaults follow) or shape (distance watershed with the "
                      "neck guard: whole cells of even brightness)"),
        "neck": ("0-1", "split: shape only: how narrow a neck between touching cells must "
                        "be to cut (0 keeps them together)"),
        "min_area": ("px²", "smallest cell"),
    },
    "learned": {
        "network": ("", "the trained network: phase_mammalian (spread and round mammalian "
                        "cells in phase contrast)"),
        "cell_probability": ("0-1", "a pixel is part of a cell where the network says so "
                                    "with more than this"),
        "seed_level": ("0-1", "cells grow from peaks of the network's centre map above this"),
        "seed_depth": ("0-1", "how far a peak must rise above the pass to a higher one to be "
                              "a cell of its own (lower: touching cells are cut more)"),
        "min_area": ("px²", "smallest cell; default: a disc of 2/5 of the diameter"),
    },
}


class SegmentationFields(QWidget):
    """A method chooser and a diameter field on one line.

    Signals: ``method_changed(str)`` with the new method's name.
    """

    method_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method_combo = QComboBox()
        self.diameter_edit = QLineEdit(_AUTO, placeholderText=_AUTO)
        self.diameter_edit.setToolTip(DIAMETER_HELP)
        diameter_label = QLabel("Diameter")
        diameter_label.setToolTip(DIAMETER_HELP)
        diameter_label.setBuddy(self.diameter_edit)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.method_combo, stretch=1)
        layout.addWidget(diameter_label)
        layout.addWidget(self.diameter_edit, stretch=1)
        self.refresh_methods()
        self._describe(self.method())
        self.method_combo.currentTextChanged.connect(self._on_method)

    def refresh_methods(self) -> str | None:
        """List the built-in methods and those of plugins ($FOVFLOW_PLUGINS, entry points);
        return a plugin's error message, or None."""
        error = None
        try:
            load_processing_plugins()
        except PluginError as exc:  # the built-in methods still work
            log.warning("segmentation plugins not loaded: %s", exc)
            error = str(exc)
        current = self.method_combo.currentText() or "phase"
        self.method_combo.blockSignals(True)
        self.method_combo.clear()
        for index, name in enumerate(METHODS):
            self.method_combo.addItem(name)
            self.method_combo.setItemData(index, _method_help(name), Qt.ItemDataRole.ToolTipRole)
        self.method_combo.setCurrentText(current)
        self.method_combo.blockSignals(False)
        if self.method_combo.currentText() != current:  # a plugin method that went away
            self._on_method(self.method_combo.currentText())
        return error

    def method(self) -> str:
        return self.method_combo.currentText()

    def set_method(self, name: str) -> None:
        """Choose method `name` (rows of the parameter table follow, via `method_changed`)."""
        if self.method_combo.findText(name) < 0:
            raise ValueError(f"unknown segmentation method {name!r}")
        self.method_combo.setCurrentText(name)

    def set_pixel_size(self, pixel_size_um: float | None) -> None:
        """Say in the diameter's help how microns convert for the loaded file."""
        note = (f"\nThis file: {pixel_size_um:g} µm per pixel." if pixel_size_um else
                "\nThis file records no pixel size: give the diameter in pixels.")
        self.diameter_edit.setToolTip(DIAMETER_HELP + note)

    def overrides(self) -> dict[str, Any]:
        """``{"method": ..., "diameter": ...}`` for `WorkflowConfig.segmentation`; the config
        checks the diameter (a number typed is sent as a number of pixels)."""
        return {"method": self.method(), "diameter": _diameter(self.diameter_edit.text())}

    @Slot(str)
    def _on_method(self, name: str) -> None:
        self._describe(name)
        self.method_changed.emit(name)

    def _describe(self, name: str) -> None:
        self.method_combo.setToolTip(f"Segmentation method, {_method_help(name)}.\n"
                                     "Plugins ($FOVFLOW_PLUGINS) add more.")


def _method_help(name: str) -> str:
    return METHOD_HELP.get(name, f"{name}: a plugin's method")


def segmentation_rows(method: str) -> dict[str, tuple[str, str, str]]:
    """The parameter table's rows of `method`:
    ``{"segmentation.name": (default text, unit, help)}``.

    A default of None shows as ``auto``: the method derives it from the diameter.
    """
    helps = _HELP.get(method, {})
    rows = {}
    for name, default in method_defaults(method).items():
        text = _AUTO if default is None else str(default)
        unit, tip = helps.get(name, ("", f"parameter of the {method} method"))
        if default is None:
            tip += "; auto or blank: derived from the diameter" if method in _HELP else \
                   "; auto or blank: the method's default"
        rows[f"segmentation.{name}"] = (text, unit, f"{method} segmentation: {tip}")
    return rows


def _diameter(text: str) -> int | float | str:
    text = text.strip()
    if not text:
        return _AUTO
    try:
        number = float(text)
    except ValueError:
        return text  # "auto", "12um", or something the config explains is wrong
    return int(text) if text.lstrip("+-").isdigit() else number  # -3, not -3.0, in errors
