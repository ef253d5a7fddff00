"""All models a fit can use: the built-ins, plugin files and installed entry points.

A plugin file is a Python file in a plugins folder (given with ``--plugins DIR`` or listed in the
``FOVFLOW_PLUGINS`` environment variable, folders separated by ``os.pathsep``) that defines
``MODELS = [Model(...), ...]``. An installed package can instead declare entry points in the
group ``fovflow.models``, each naming one `Model` object. Every model is checked when it is
loaded; a malformed one raises `PluginError` saying which file or entry point and what is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fovflow.analysis.models.base import Model, Parameter
from fovflow.analysis.models.builtin import BUILTIN_MODELS
from fovflow.errors import ConfigError, PluginError
from fovflow.plugins import PLUGINS_ENV, import_plugin, load_entry_points, plugin_files

ENTRY_POINT_GROUP = "fovflow.models"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CHECK_TIMES = np.linspace(0.0, 48.0, 25)


def available_models(plugins: Sequence[str | Path] = ()) -> dict[str, Model]:
    """Every model by name: built-ins, then entry points, then plugin files.

    Parameters
    ----------
    plugins : sequence of path
        Plugin folders besides those in ``FOVFLOW_PLUGINS``.

    Raises
    ------
    PluginError
        When a plugin cannot be imported, defines no valid model, or reuses a model's name.
    """
    models = {model.name: model for model in BUILTIN_MODELS}
    found = [*_entry_point_models(),
             *(model for path in plugin_files(plugins) for model in load_plugin_file(path))]
    for model in found:
        if model.name in models:
            raise PluginError(f"{model.source}: model name {model.name!r} is already used by "
                              f"{models[model.name].source}; rename it")
        models[model.name] = model
    return models


def get_model(name: str, plugins: Sequence[str | Path] = ()) -> Model:
    """The model called `name`; a `ConfigError` listing the available ones otherwise."""
    models = available_models(plugins)
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(models)} "
                          f"(plugins are loaded from --plugins DIR or ${PLUGINS_ENV})")
    return models[name]


def load_plugin_file(path: str | Path) -> tuple[Model, ...]:
    """Import one plugin file and return its checked ``MODELS`` (none for a features file)."""
    module = import_plugin(path)
    if not hasattr(module, "MODELS"):
        return ()
    models = module.MODELS
    if not isinstance(models, list | tuple) or not models:
        raise PluginError(f"plugin {path}: defines no MODELS list; write MODELS = [Model(...)] "
                          f"(from fovflow.analysis.models import Model)")
    return tuple(validate_model(model, f"plugin {path}") for model in models)


def validate_model(model: object, source: str) -> Model:
    """Check that `model` is a usable `Model` and return it labelled with its `source`.

    Raises
    ------
    PluginError
        Naming `source`, the model and the problem: wrong type, bad name, bad parameters (names,
        bounds, defaults), or a function that fails or returns non-finite or misshapen values.
    """
    if not isinstance(model, Model):
        raise PluginError(f"{source}: {model!r} is a {type(model).__name__}, not a "
                          f"fovflow.analysis.models.Model")
    where = f"{source}: model {model.name!r}"
    if not isinstance(model.name, str) or not _NAME.match(model.name):
        raise PluginError(f"{where}: the name must be a word of letters, digits and _")
    if not callable(model.function):
        raise PluginError(f"{where}: function is not callable")
    if not model.parameters or not all(isinstance(p, Parameter) for p in model.parameters):
        raise PluginError(f"{where}: parameters must be a non-empty tuple of Parameter")
    if len(set(model.names)) != len(model.names):
        raise PluginError(f"{where}: parameter names repeat: {', '.join(model.names)}")
    for p in model.parameters:
        if not (p.lower < p.upper and p.lower <= p.default <= p.upper and math.isfinite(p.default)):
            raise PluginError(f"{where}: parameter {p.name!r} needs lower < upper and a finite "
                              f"default within them, not default {p.default} in "
                              f"[{p.lower}, {p.upper}]")
    _check_function(model, where)
    return Model(model.name, model.function, model.parameters, model.description, source)


def _check_function(model: Model, where: str) -> None:
    defaults = {p.name: p.default for p in model.parameters}
    try:
        values = model.evaluate(_CHECK_TIMES, defaults)
        without_linear = model.evaluate(
            _CHECK_TIMES, {**defaults, **{p.name: 0.0 for p in model.parameters if p.linear}})
    except Exception as exc:  # user code: any failure means the plugin is malformed
        raise PluginError(f"{where}: calling it with its defaults failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    if values.shape != _CHECK_TIMES.shape or not np.all(np.isfinite(values)):
        raise PluginError(f"{where}: at its defaults it must return one finite value per time "
                          f"point; got shape {values.shape}")
    if any(p.linear for p in model.parameters) and np.any(np.abs(without_linear) > 1e-9):
        raise PluginError(f"{where}: parameters marked linear must make the model 0 when they "
                          f"are all 0 (the model must be a sum of them times other terms)")


def _entry_point_models() -> list[Model]:
    return [validate_model(loaded, source)
            for _, source, loaded in load_entry_points(ENTRY_POINT_GROUP)]
