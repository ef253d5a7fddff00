"""The progress callback every long operation takes, from reading a file to fitting.

``progress(done, total)`` is called as work advances (``done == total`` at the end); it may
raise `fovflow.errors.Cancelled` to stop the work, which then leaves no partial output.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]
