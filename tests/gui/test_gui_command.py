"""`fovflow gui`: listed in the CLI, and a missing gui extra gives advice instead of a traceback."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from fovflow.cli.main import app


def test_gui_command_is_registered() -> None:
    result = CliRunner().invoke(app, ["gui", "--help"])
    assert result.exit_code == 0
    assert "desktop window" in result.output


def test_missing_pyside6_is_reported_with_the_extra_to_install(monkeypatch) -> None:
    for name in [name for name in sys.modules if name.startswith("fovflow.gui")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ["PySide6", *(name for name in sys.modules if name.startswith("PySide6."))]:
        monkeypatch.setitem(sys.modules, name, None)  # importing PySide6 (or a part) now fails
    result = CliRunner().invoke(app, ["gui"])
    assert result.exit_code == 2
    assert "error: the GUI needs the gui extra: pip install 'fovflow[gui]'" in result.output


def test_no_display_is_one_line_with_what_to_do(monkeypatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    if not sys.platform.startswith("linux"):
        return
    result = CliRunner().invoke(app, ["gui"])
    assert result.exit_code == 2
    assert result.output.startswith("error: no display to open the window on")
    assert "xvfb-run" in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_x11_libraries_are_named_by_their_packages(monkeypatch) -> None:
    from fovflow.cli import gui_command
    from fovflow.errors import FovflowError

    monkeypatch.setattr(gui_command.ctypes.util, "find_library",
                        lambda name: None if name == "xcb-cursor" else f"lib{name}.so")
    with pytest.raises(FovflowError, match="libxcb-cursor0") as raised:
        gui_command.check_display({"DISPLAY": ":0"}, "linux")
    assert "libxcb-icccm4" not in str(raised.value)
    gui_command.check_display({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux")
    gui_command.check_display({}, "darwin")  # not X11: Qt finds its own display
