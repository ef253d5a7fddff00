"""Kinetic models for fitting: the built-ins, a registry, and plugins.

Example of a plugin file (``plugins/decay.py``)::

    import numpy as np
    from fovflow.analysis.models import Model, Parameter

    def decay(t, *, t0, amplitude, rate, offset):
        dt = np.maximum(t - t0, 0.0)
        return amplitude * np.exp(-rate * dt) * (t > t0) + offset

    MODELS = [Model("decay", decay, (
        Parameter("t0", 0.0, -5.0, 50.0),
        Parameter("amplitude", 100.0, 0.0, np.inf, linear=True),
        Parameter("rate", 0.1, 1e-4, 5.0),
        Parameter("offset", 0.0, linear=True),
    ))]
"""

from fovflow.analysis.models.base import Model, Parameter
from fovflow.analysis.models.builtin import BUILTIN_MODELS
from fovflow.analysis.models.registry import (
    ENTRY_POINT_GROUP,
    available_models,
    get_model,
    load_plugin_file,
    validate_model,
)
from fovflow.plugins import PLUGINS_ENV, plugin_folders

__all__ = [
    "BUILTIN_MODELS",
    "ENTRY_POINT_GROUP",
    "PLUGINS_ENV",
    "Model",
    "Parameter",
    "available_models",
    "get_model",
    "load_plugin_file",
    "plugin_folders",
    "validate_model",
]
