"""Small widget helpers shared by the tabs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QListWidgetItem, QPushButton, QWidget


def with_button(edit: QLineEdit, text: str, slot: Callable[[], None],
                *more: tuple[str, Callable[[], None]]) -> QWidget:
    """`edit` with push buttons on its right: `text` calls `slot`, then each (text, slot) of
    `more`."""
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, stretch=1)
    for label, action in [(text, slot), *more]:
        button = QPushButton(label)
        button.clicked.connect(action)
        layout.addWidget(button)
    return box


def checkable(text: str, checked: bool) -> QListWidgetItem:
    """A list item with a check box."""
    item = QListWidgetItem(text)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
    return item


def is_checked(item: QListWidgetItem) -> bool:
    return item.checkState() == Qt.CheckState.Checked


def near(text: str) -> str:
    """Where a file dialog should open for the path typed in a field: that folder, or the
    folder of that file, if it exists (else "": Qt's default)."""
    path = Path(text.strip()).expanduser()
    for folder in (path, path.parent):
        if text.strip() and folder.is_dir():
            return str(folder)
    return ""
