"""What the window remembers between sessions, where its dialogs open, and its Help menu."""

from __future__ import annotations

from pathlib import Path

from fovflow import __version__
from fovflow.gui.widgets import near


def _new_window(qtbot):
    from fovflow.gui.app import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    return window


def test_the_next_window_has_the_last_folders_parameters_and_size(qtbot, settings_folder,
                                                                  tmp_path):
    first = _new_window(qtbot)
    first.resize(1100, 750)
    first.processing.input_edit.setText(str(tmp_path / "movie.nd2"))
    first.visualization.run_edit.setText(str(tmp_path / "run"))
    first.analysis.path_edit.setText(str(tmp_path / "run" / "samples"))
    first.processing.segmentation.set_method("fluorescence")
    first.processing.segmentation.diameter_edit.setText("12um")
    first.processing.parameters.set_value("segmentation.min_area", "40")
    first.processing.parameters.set_value("extraction.min_length", "7")
    first.analysis.model_combo.setCurrentText("trivial")
    first.analysis.interval_spin.setValue(5.0)
    assert first.close()
    assert list(settings_folder.rglob("*.ini"))  # in the test's folder, not the user's

    second = _new_window(qtbot)
    # Qt fits a restored window to the screen: the offscreen one is narrower than 1100 px.
    assert second.height() == 750 and second.width() != 1280  # not the default 1280 x 820
    assert second.processing.input_edit.text() == str(tmp_path / "movie.nd2")
    assert second.visualization.run_edit.text() == str(tmp_path / "run")
    assert second.visualization.run_dir is None  # remembered, not opened
    assert second.analysis.path_edit.text() == str(tmp_path / "run" / "samples")
    assert second.processing.segmentation.method() == "fluorescence"
    assert second.processing.segmentation.diameter_edit.text() == "12um"
    assert second.processing.parameters.texts() == {"segmentation.min_area": "40",
                                                    "extraction.min_length": "7"}
    assert second.analysis.model_combo.currentText() == "trivial"
    assert second.analysis.interval_spin.value() == 5.0
    assert second.processing.output_edit.text() == ""  # named after the next file instead


def test_file_dialogs_open_where_the_field_points(tmp_path):
    movie = tmp_path / "movie.nd2"
    movie.write_bytes(b"")
    assert near(str(movie)) == str(tmp_path)  # a file: its folder
    assert near(str(tmp_path)) == str(tmp_path)
    assert near(str(tmp_path / "not yet" / "out")) == ""  # nothing there: Qt's default
    assert near("") == ""


def test_the_help_menu_gives_the_version_and_the_readme(qtbot, window):
    menu = next(action.menu() for action in window.menuBar().actions()
                if action.text() == "&Help")
    assert [action.text() for action in menu.actions()] == ["&README", "&About fovflow"]
    about = window.show_about()
    assert f"fovflow {__version__}" in about.text() and "README" in about.text()
    from fovflow.gui.app import readme_url

    readme = Path(readme_url().toLocalFile())
    assert readme.is_file() and "fovflow" in readme.read_text(encoding="utf-8")
