"""Plugin files and installed packages add features and segmentation methods once per
process, and bad ones are clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from fovflow.errors import PluginError
from fovflow.plugins import load_processing_plugins
from fovflow.processing.extraction import FEATURES
from fovflow.processing.segmentation import METHODS, segment_cells


def plugin_folder(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "mine.py").write_text(source)
    return folder


def test_features_register_once_however_often_they_are_loaded(tmp_path) -> None:
    folder = plugin_folder(tmp_path, "FEATURES = {'twice_area': lambda cells: 2 * cells.area}\n")
    assert load_processing_plugins([folder]) == ["twice_area"]
    assert load_processing_plugins([folder]) == ["twice_area"]
    assert "twice_area" in FEATURES


@pytest.mark.parametrize(
    ("source", "message"),
    [("FEATURES = ['area']\n", "must map feature names"),
     ("FEATURES = {'bad name': len}\n", "must map feature names"),
     ("FEATURES = {'area': len}\n", "already defined"),
     ("import nothing_here\n", "cannot be imported"),
     ("X = 1\n", "none of MODELS, FEATURES, SEGMENTERS")],
)
def test_malformed_feature_plugins_name_the_file_and_problem(tmp_path, source, message) -> None:
    folder = plugin_folder(tmp_path, source)
    with pytest.raises(PluginError, match=message) as error:
        load_processing_plugins([folder])
    assert "mine.py" in str(error.value)


def test_missing_plugin_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(PluginError, match="does not exist"):
        load_processing_plugins([tmp_path / "absent"])


def test_an_installed_segmentation_method_is_found_by_its_entry_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lab_segmenters.py").write_text(
        "import numpy as np\n"
        "def halves(frame, *, diameter=None):\n"
        "    labels = np.zeros(frame.shape, np.uint32)\n"
        "    labels[:, frame.shape[1] // 2:] = 1\n"
        "    return labels\n")
    info = tmp_path / "lab_segmenters-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-segmenters\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fovflow.segmenters]\nhalves = lab_segmenters:halves\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "halves" in load_processing_plugins()
        labels = segment_cells(np.ones((1, 4, 6)), method="halves", diameter=2)
        assert labels[0].tolist() == [[0, 0, 0, 1, 1, 1]] * 4
    finally:
        METHODS.pop("halves", None)
        sys.modules.pop("lab_segmenters", None)


def test_a_broken_entry_point_is_a_plugin_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fovflow.segmenters]\nnope = not_a_module:nope\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"entry point 'nope' \(not_a_module:nope\)"):
        load_processing_plugins()
