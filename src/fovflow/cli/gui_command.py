"""`fovflow gui`: open the desktop window (needs the ``gui`` extra: PySide6 and matplotlib)."""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Mapping

import typer

from fovflow.errors import FovflowError

_GUI_PACKAGES = ("PySide6", "shiboken6", "matplotlib")  # what the gui extra installs
# Qt 6.5+ on X11 loads these system libraries; without them it fails with a message about its
# "xcb" plugin that names none of them. Debian/Ubuntu package names.
_XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4",
                  "xcb-keysyms": "libxcb-keysyms1"}


def gui() -> None:
    """Open the desktop window: processing, visualization and analysis tabs."""
    try:
        from fovflow.gui.app import main
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in _GUI_PACKAGES:
            raise FovflowError("the GUI needs the gui extra: pip install 'fovflow[gui]'") from exc
        raise
    check_display(os.environ, sys.platform)
    raise typer.Exit(main())


def check_display(environment: Mapping[str, str], platform: str) -> None:
    """Refuse in one line what would make Qt abort: no display to open a window on, or the
    X11 libraries Qt needs missing (their packages named)."""
    if not platform.startswith("linux"):
        return
    chosen = environment.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):  # offscreen, wayland, vnc...: Qt's own choice
        return
    if not environment.get("DISPLAY") and not (environment.get("WAYLAND_DISPLAY") and not chosen):
        raise FovflowError("no display to open the window on (DISPLAY is not set): run it in a "
                           "desktop session, over ssh -X, or under xvfb-run")
    missing = [package for library, package in _XCB_LIBRARIES.items()
               if ctypes.util.find_library(library) is None]
    if missing and not environment.get("WAYLAND_DISPLAY"):
        raise FovflowError(f"Qt needs the system packages {', '.join(missing)} for X11: install "
                           f"them (e.g. sudo apt install {' '.join(missing)})")


def register(app: typer.Typer) -> None:
    """Add the ``gui`` command to `app`."""
    app.command()(gui)
