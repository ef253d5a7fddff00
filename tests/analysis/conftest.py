"""Shared fixtures: a run folder with traces, and plugin files."""

from __future__ import annotations

from pathlib import Path

import pytest
from analysis_helpers import PLUGIN, write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run")


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "decay.py").write_text(PLUGIN)
    return folder
