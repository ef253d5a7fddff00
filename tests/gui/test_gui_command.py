"""`fovflow gui`: listed in the CLI, and a missing gui extra gives advice instead of a traceback."""

from __future__ import annotations

import sys

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
