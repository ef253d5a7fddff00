"""Built-in models, constraints, and plugins from folders and entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from analysis_helpers import PLUGIN, TIMES_H

from fovflow import kinetics
from fovflow.analysis.fitting import FitSettings, fit_traces
from fovflow.analysis.models import (
    BUILTIN_MODELS,
    PLUGINS_ENV,
    Model,
    available_models,
    get_model,
)
from fovflow.errors import ConfigError, PluginError


@pytest.mark.parametrize("model", BUILTIN_MODELS, ids=lambda m: m.name)
def test_builtin_models_are_the_kinetics_formulas(model: Model) -> None:
    values = {p.name: p.default for p in model.parameters}
    np.testing.assert_array_equal(model.evaluate(TIMES_H, values),
                                  kinetics.MODELS[model.name](TIMES_H, **values))
    assert model.names == kinetics.PARAMETERS[model.name]


def test_parameters_can_be_fixed_and_rebounded() -> None:
    model = get_model("maturation").constrain(fixed={"km": 1.28}, bounds={"delta": (0.3, 2.0)})
    assert [p.name for p in model.free] == ["t0", "ktl", "delta", "beta", "offset"]
    assert (model.parameter("delta").lower, model.parameter("delta").upper) == (0.3, 2.0)
    assert model.full_values([1, 2, 3, 4, 5])["km"] == 1.28
    blocked = get_model("maturation_blocked").constrain(bounds={"t0": (-1.0, 1.0)})
    assert "t0" in [p.name for p in blocked.free]  # bounds free a parameter fixed by default


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"fixed": {"kmm": 1.0}}, "has no parameter 'kmm'; its parameters are t0, ktl"),
    ({"fixed": {"delta": 50.0}}, "fixed value delta=50 is outside its bounds"),
    ({"bounds": {"beta": (1.0, 0.5)}}, "lower < upper"),
])
def test_bad_constraints_are_clear_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        get_model("maturation").constrain(**kwargs)


def test_unknown_model_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="unknown model 'matur'; available: trivial, maturation"):
        get_model("matur")


def test_plugin_folder_models_are_found_and_fitted(plugin_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_ENV, str(plugin_dir))
    model = available_models()["decay"]
    assert model.source == f"plugin {plugin_dir / 'decay.py'}"
    truth = {"t0": 0.0, "amplitude": 500.0, "rate": 0.3, "offset": 20.0}
    values = model.evaluate(TIMES_H, truth)[:, None]
    fitted = fit_traces(FitSettings.create("decay"), TIMES_H, values)
    assert fitted.success[0]
    assert fitted.rate[0] == pytest.approx(0.3, rel=1e-4)


@pytest.mark.parametrize(("source", "fragment"), [
    ("def broken(:\n", "cannot be imported: SyntaxError"),
    ("X = 1\n", "defines none of MODELS, FEATURES, SEGMENTERS"),
    ("MODELS = ['decay']\n", "is a str, not a fovflow.analysis.models.Model"),
    (PLUGIN.replace('Parameter("rate", 0.1,', 'Parameter("rate", 9.0,'),
     "parameter 'rate' needs lower < upper and a finite default within them"),
    (PLUGIN.replace("    return np.where(", "    return 1.0\n    np.where("),
     "one finite value per time"),
    (PLUGIN.replace('"decay", decay', '"trivial", decay'), "already used by built-in"),
    (PLUGIN.replace("np.inf, linear=True", "np.inf").replace(
        'Parameter("rate", 0.1, 1e-4, 5.0)', 'Parameter("rate", 0.1, 1e-4, 5.0, linear=True)'),
     "marked linear must make the model 0"),
])
def test_malformed_plugins_are_rejected_with_a_clear_message(tmp_path: Path, source: str,
                                                             fragment: str) -> None:
    (tmp_path / "bad.py").write_text(source)
    with pytest.raises(PluginError) as error:
        available_models([tmp_path])
    assert str(tmp_path / "bad.py") in str(error.value)
    assert fragment in str(error.value)


def test_entry_point_models_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lab_models.py").write_text(PLUGIN.replace("MODELS = [", "DECAY = ").replace(
        "))]\n", "))\n"))
    info = tmp_path / "lab_models-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-models\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fovflow.models]\ndecay = lab_models:DECAY\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    models = available_models()
    assert models["decay"].source == "entry point 'decay' (lab_models:DECAY)"
    sys.modules.pop("lab_models", None)
