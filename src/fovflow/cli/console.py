"""The consoles every command prints to, and its progress bar: one of each for the process.

Kept apart from `fovflow.cli.main`, which imports the command modules to register them: a
command that printed through `main` would import it back.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console()
err_console = Console(stderr=True)


def progress_bar() -> Progress:
    """A transient bar on stderr (stdout stays the command's output): label, bar, count, ETA."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err_console, transient=True,
    )
