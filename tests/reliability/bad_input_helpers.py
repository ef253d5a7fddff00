"""Helpers for the bad-input catalogue: run the CLI in-process, check one-line errors and that
nothing on disk changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from typer.testing import Result


def assert_success(result: Result) -> None:
    """Exit status 0 and no traceback."""
    unexpected = result.exception if not isinstance(result.exception, SystemExit) else None
    assert unexpected is None, f"{type(unexpected).__name__}: {unexpected}"
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.stdout)
    assert "Traceback" not in result.stderr + result.stdout


def snapshot(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file under `paths` (files or folders), by path; folders as entries."""
    state: dict[str, str] = {}
    for root in paths:
        if not root.exists():
            state[str(root)] = "absent"
            continue
        for path in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            state[str(path)] = ("folder" if path.is_dir()
                                else hashlib.sha256(path.read_bytes()).hexdigest())
    return state


@contextmanager
def nothing_changes(*paths: Path) -> Iterator[None]:
    """Assert that no file under `paths` is added, removed or changed by the block."""
    before = snapshot(*paths)
    yield
    after = snapshot(*paths)
    changed = sorted(key for key in before.keys() | after.keys()
                     if before.get(key) != after.get(key))
    assert not changed, f"changed on disk: {changed}"


def write_ome(path: Path, data: np.ndarray, axes: str = "TCYX", **metadata: Any) -> Path:
    """One-scene OME-TIFF with `axes`, frames 10 minutes apart."""
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(data, metadata={"axes": axes, "TimeIncrement": 10,
                                     "TimeIncrementUnit": "min", **metadata})
    return path
