"""User plugin files: Python files in plugin folders that add models and extraction features.

A plugin folder is given with ``--plugins DIR`` or listed in the ``FOVFLOW_PLUGINS`` environment
variable (folders separated by ``os.pathsep``). Every ``*.py`` file in it not starting with ``_``
is a plugin and may define:

- ``MODELS = [Model(...), ...]``: kinetic models for fitting (`fovflow.analysis.models`);
- ``FEATURES = {"name": function, ...}``: extraction features, each ``function(cells) ->
  array`` with one value per cell of ``cells.ids`` (`fovflow.processing.extraction.Cells`).

A file is imported once per process however often it is asked for, so loading plugins again
(in every worker, for every FOV) is cheap and registers nothing twice.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from fovflow.errors import PluginError

PLUGINS_ENV = "FOVFLOW_PLUGINS"
_imported: dict[tuple[Path, int], ModuleType] = {}  # by path and modification time


def plugin_folders(extra: Iterable[str | Path] = ()) -> tuple[Path, ...]:
    """The folders named in ``FOVFLOW_PLUGINS`` followed by `extra`."""
    from_env = [part for part in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if part]
    return tuple(Path(folder) for folder in [*from_env, *extra])


def plugin_files(folders: Iterable[str | Path] = ()) -> list[Path]:
    """Every plugin file of the folders (``FOVFLOW_PLUGINS`` first), checked to exist."""
    files = []
    for folder in plugin_folders(folders):
        if not folder.is_dir():
            raise PluginError(f"plugins folder {folder} does not exist or is not a folder")
        files.extend(sorted(p for p in folder.glob("*.py") if not p.name.startswith("_")))
    return files


def import_plugin(path: str | Path) -> ModuleType:
    """Import one plugin file (once per process); any error in it is a `PluginError`."""
    path = Path(path).resolve()
    key = (path, path.stat().st_mtime_ns)
    if key in _imported:
        return _imported[key]
    spec = importlib.util.spec_from_file_location(f"fovflow_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any error in user code: report it as the plugin's fault
        raise PluginError(
            f"plugin {path}: cannot be imported: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, "MODELS") and not hasattr(module, "FEATURES"):
        raise PluginError(f"plugin {path}: defines neither MODELS nor FEATURES; write e.g. "
                          "MODELS = [Model(...)] or FEATURES = {'name': function}")
    _imported[key] = module
    return module


def load_feature_plugins(folders: Iterable[str | Path] = ()) -> list[str]:
    """Register the ``FEATURES`` of every plugin file; return the names they define.

    Raises
    ------
    PluginError
        When a file's ``FEATURES`` is not a mapping of names to callables, or a name clashes
        with a built-in feature or another plugin's.
    """
    from fovflow.processing.extraction import FEATURES, register_feature

    names = []
    for path in plugin_files(folders):
        features = getattr(import_plugin(path), "FEATURES", None)
        if features is None:
            continue
        if not isinstance(features, dict) or not all(
                isinstance(name, str) and name.isidentifier() and callable(function)
                for name, function in features.items()):
            raise PluginError(f"plugin {path}: FEATURES must map feature names (words) to "
                              "functions of the frame's cells")
        for name, function in features.items():
            if FEATURES.get(name) is not function:
                try:
                    register_feature(name)(function)
                except ValueError as exc:
                    raise PluginError(f"plugin {path}: {exc}; rename it") from exc
            names.append(name)
    return names
