"""Segmentation methods from plugin files, as a user runs them: `fovflow run --plugins DIR
--method NAME`. A plugin whose labels are unusable is refused before anything runs."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from skimage.measure import label

from cli_assertions import assert_one_line_error
from fovflow.io.layout import LABELS, MASKS, PHASE, open_stack
from fovflow.io.synthetic import SimulationConfig, write_simulation
from fovflow.plugins import import_plugin

FOVFLOW = Path(sys.executable).with_name("fovflow")
EXAMPLES = Path(__file__).parents[2] / "examples"

# Labels of the frame: the pixels above its mean, 8-connected pieces numbered 1..n.
THRESHOLD_HALF = """\
from skimage.measure import label


def threshold_half(frame, *, diameter):
    return label(frame > frame.mean())


SEGMENTERS = {"threshold_half": threshold_half}
"""

FAULTY = {  # method name: the body of a plugin segmenter that returns unusable labels
    "extra_row": "return np.zeros((frame.shape[0] + 1, frame.shape[1]), np.int32)",
    "float_labels": "return (frame > frame.mean()).astype(np.float32)",
    "negative_labels": "return np.full(frame.shape, -1, np.int32)",
    "transposed": "return np.zeros(frame.shape[::-1], np.int32)",
}


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    """One FOV of 4 frames of 64x96 px (not square, so transposed labels do not fit)."""
    config = SimulationConfig(n_fovs=1, n_frames=4, height=64, width=96, seed=1)
    return write_simulation(tmp_path_factory.mktemp("plugin_run") / "sim.ome.tif", config).image


def fovflow(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FOVFLOW, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def plugins_folder(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "segmenters.py").write_text(source)
    return folder


def test_a_plugin_segmenter_runs_end_to_end_and_its_labels_are_the_runs(movie, tmp_path
                                                                        ) -> None:
    folder = plugins_folder(tmp_path, THRESHOLD_HALF)
    out = tmp_path / "out"
    result = fovflow("run", movie, "-o", out, "--plugins", folder, "--method", "threshold_half",
                     "--diameter", "20", "--fl", "1", "--min-length", "2",
                     "--executor", "process", "--workers", "1")  # loaded in a worker, too
    assert result.returncode == 0, result.stderr
    fov = out / "fov_000"
    segmented = open_stack(out, 0, PHASE)
    labels = open_stack(out, 0, MASKS)
    assert labels.shape == segmented.shape == (4, 64, 96)
    for t in range(4):
        frame = segmented[t]
        np.testing.assert_array_equal(labels[t], label(frame > frame.mean()))
    assert open_stack(out, 0, LABELS) is not None and (fov / "traces_ch_1.csv").exists()
    recorded = yaml.safe_load((out / "run_config.yaml").read_text())
    assert recorded["segmentation"] == {"method": "threshold_half", "diameter": 20.0}


@pytest.mark.parametrize("method", list(FAULTY))
def test_a_plugin_segmenter_returning_unusable_labels_is_refused_before_anything_runs(
        movie, tmp_path, method: str) -> None:
    source = (f"import numpy as np\n\n\ndef {method}(frame, *, diameter):\n"
              f"    {FAULTY[method]}\n\n\nSEGMENTERS = {{{method!r}: {method}}}\n")
    folder = plugins_folder(tmp_path, source)
    out = tmp_path / "out"
    result = fovflow("run", movie, "-o", out, "--plugins", folder, "--method", method,
                     "--diameter", "20")
    assert_one_line_error(result, f"segmentation method {method!r} returned")
    assert not out.exists()


def test_an_unknown_method_is_a_one_line_error_listing_the_plugins_methods(movie, tmp_path
                                                                           ) -> None:
    folder = plugins_folder(tmp_path, THRESHOLD_HALF)
    out = tmp_path / "out"
    result = fovflow("run", movie, "-o", out, "--plugins", folder, "--method", "threshold_hlaf")
    assert_one_line_error(result, "unknown segmentation method 'threshold_hlaf'",
                          "threshold_half", "phase", "fluorescence")
    assert not out.exists()


def test_the_cellpose_example_is_a_plugin_file_that_imports_without_cellpose() -> None:
    had_cellpose = "cellpose" in sys.modules
    module = import_plugin(EXAMPLES / "cellpose_segmenter.py")
    assert set(module.SEGMENTERS) == {"cellpose"} and callable(module.SEGMENTERS["cellpose"])
    assert ("cellpose" in sys.modules) == had_cellpose  # imported when segmenting, not before
    parameters = inspect.signature(module.SEGMENTERS["cellpose"]).parameters
    assert parameters["diameter"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["diameter"].default is inspect.Parameter.empty  # fovflow always gives it
    assert parameters["model_type"].default == "cyto3" and parameters["gpu"].default is False


@pytest.mark.skipif(importlib.util.find_spec("cellpose") is not None,
                    reason="Cellpose is installed here")
def test_the_cellpose_example_without_cellpose_says_how_to_install_it(movie, tmp_path) -> None:
    out = tmp_path / "out"
    result = fovflow("run", movie, "-o", out, "--plugins", EXAMPLES, "--method", "cellpose")
    assert_one_line_error(result, "segmentation method 'cellpose' needs Cellpose",
                          "pip install cellpose")
    assert not out.exists()
