"""`fovflow gui`: open the desktop window (needs the ``gui`` extra: PySide6 and matplotlib)."""

from __future__ import annotations

import typer

from fovflow.errors import FovflowError

_GUI_PACKAGES = ("PySide6", "shiboken6", "matplotlib")  # what the gui extra installs


def gui() -> None:
    """Open the desktop window: processing, visualization and analysis tabs."""
    try:
        from fovflow.gui.app import main
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in _GUI_PACKAGES:
            raise FovflowError("the GUI needs the gui extra: pip install 'fovflow[gui]'") from exc
        raise
    raise typer.Exit(main())


def register(app: typer.Typer) -> None:
    """Add the ``gui`` command to `app`."""
    app.command()(gui)
