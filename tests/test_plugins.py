"""Plugin files add extraction features once per process, and bad ones are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fovflow.errors import PluginError
from fovflow.plugins import load_processing_plugins
from fovflow.processing.extraction import FEATURES


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
