"""User plugin files: Python files in plugin folders that add models, features and segmenters.

A plugin folder is given with ``--plugins DIR`` or listed in the ``FOVFLOW_PLUGINS`` environment
variable (folders separated by ``os.pathsep``). Every ``*.py`` file in it not starting with ``_``
is a plugin and may define:

- ``MODELS = [Model(...), ...]``: kinetic models for fitting (`fovflow.analysis.models`);
- ``FEATURES = {"name": function, ...}``: extraction features, each ``function(cells) ->
  array`` with one value per cell of ``cells.ids`` (`fovflow.processing.extraction.Cells`);
- ``SEGMENTERS = {"name": function, ...}``: segmentation methods, each ``function(frame, *,
  diameter, **parameters) -> labels`` (`fovflow.processing.segmentation.register_method`).

A file is imported once per process however often it is asked for, so loading plugins again
(in every worker, for every FOV) is cheap and registers nothing twice.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from fovflow.errors import PluginError

PLUGINS_ENV = "FOVFLOW_PLUGINS"
SEGMENTERS_ENTRY_POINT_GROUP = "fovflow.segmenters"
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
    if not any(hasattr(module, name) for name in ("MODELS", "FEATURES", "SEGMENTERS")):
        raise PluginError(f"plugin {path}: defines none of MODELS, FEATURES, SEGMENTERS; write "
                          "e.g. MODELS = [Model(...)] or FEATURES = {'name': function}")
    _imported[key] = module
    return module


def load_processing_plugins(folders: Iterable[str | Path] = ()) -> list[str]:
    """Register the ``FEATURES`` and ``SEGMENTERS`` of every plugin file, and the segmentation
    methods of the ``fovflow.segmenters`` entry points; return the names they define.

    Raises
    ------
    PluginError
        When a file's ``FEATURES`` or ``SEGMENTERS`` is not a mapping of names to callables,
        or a name clashes with a built-in one or another plugin's.
    """
    from fovflow.processing.extraction import FEATURES, register_feature
    from fovflow.processing.segmentation import METHODS, register_method

    names = []
    for path in plugin_files(folders):
        module = import_plugin(path)
        names += _register(f"plugin {path}", getattr(module, "FEATURES", None), FEATURES,
                           register_feature, "FEATURES must map feature names",
                           "functions of the frame's cells")
        names += _register(f"plugin {path}", getattr(module, "SEGMENTERS", None), METHODS,
                           register_method, "SEGMENTERS must map method names",
                           "functions of a frame returning its cells' labels")
    for name, source, function in load_entry_points(SEGMENTERS_ENTRY_POINT_GROUP):
        names += _register(source, {name: function}, METHODS, register_method,
                           "the entry point must name", "a function of a frame returning labels")
    return names


def load_entry_points(group: str) -> list[tuple[str, str, object]]:
    """``(name, source, object)`` of every installed entry point of `group`, loaded; a package
    whose entry point cannot be loaded is a `PluginError` naming it."""
    loaded = []
    for point in entry_points(group=group):
        source = f"entry point {point.name!r} ({point.value})"
        try:
            loaded.append((point.name, source, point.load()))
        except Exception as exc:  # a broken installed package: say which one
            raise PluginError(f"{source}: cannot be loaded: {type(exc).__name__}: {exc}") from exc
    return loaded


def _register(source: str, functions: object, registry: dict[str, Any],
              register: Callable[[str], Callable[[Any], Any]], rule: str, kind: str
              ) -> list[str]:
    """Register ``{name: function}`` of one source in `registry` (once however often asked)."""
    if functions is None:
        return []
    if not isinstance(functions, dict) or not all(
            isinstance(name, str) and name.isidentifier() and callable(function)
            for name, function in functions.items()):
        raise PluginError(f"{source}: {rule} (words) to {kind}")
    for name, function in functions.items():
        if registry.get(name) is not function:
            try:
                register(name)(function)
            except ValueError as exc:
                raise PluginError(f"{source}: {exc}; rename it") from exc
    return list(functions)
