"""A configuration is a plain value; `prepare_run` is the one step that checks it against the
world (plugins, the steps, the input file, the run folder), reading the manifest once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fovflow.errors import ConfigError, PluginError
from fovflow.io import manifest as manifest_module
from fovflow.processing.segmentation import METHODS
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.prepare import check_steps, prepare_run
from fovflow.workflow.run import run_workflow

PLUGIN_THAT_SAYS_IT_WAS_IMPORTED = '''
from pathlib import Path

Path(__file__).with_suffix(".imported").write_text("yes")

def broken(cells):
    raise RuntimeError("never called")

FEATURES = {"broken_feature": broken}
'''


def small_run(image: Path, output: Path, **changes) -> WorkflowConfig:
    return WorkflowConfig(input=image, output=output, executor="serial", fl_channels=(1,),
                          extraction={"min_length": 1}, **changes)


def test_making_a_config_loads_no_plugin_and_runs_no_step(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "marker.py").write_text(PLUGIN_THAT_SAYS_IT_WAS_IMPORTED)
    config = WorkflowConfig(input="absent.ome.tif", output=tmp_path / "out",
                            plugins=(str(plugins),), features=("broken_feature",),
                            tracking={"min_iou": 5.0})  # a value only the step refuses
    assert not (plugins / "marker.imported").exists()
    assert WorkflowConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="invalid tracking parameters: min_iou"):
        check_steps(config)  # the plugin loads (its feature is known), then the steps run
    assert (plugins / "marker.imported").exists()


def test_a_plugin_folder_that_is_gone_fails_in_the_check_not_in_the_config(tmp_path) -> None:
    config = WorkflowConfig(input="movie.ome.tif", output="out", plugins=(str(tmp_path / "x"),))
    with pytest.raises(PluginError, match="does not exist"):
        check_steps(config)


def test_prepare_run_checks_the_steps_before_it_opens_the_input(tmp_path) -> None:
    # Both are wrong: the step's mistake is said first, as when the config made the check.
    config = small_run(tmp_path / "absent.ome.tif", tmp_path / "out",
                       segmentation={"method": "cellpos"})
    with pytest.raises(ConfigError, match="unknown segmentation method 'cellpos'"):
        prepare_run(config)
    assert not (tmp_path / "out").exists()


def test_prepare_run_gives_what_the_run_needs(small_image, tmp_path) -> None:
    prepared = prepare_run(WorkflowConfig(input=small_image, output=tmp_path / "out",
                                          fovs="1-2"))
    assert prepared.fovs == (1, 2)
    assert prepared.config.fl_channels == (1, 2)  # chosen for the file: all but the segmented
    assert prepared.metadata.path == small_image.resolve()
    assert prepared.parameters["segmentation"]["method"] == "phase"
    assert prepared.recorded.data is None  # no run in the folder yet
    assert not (tmp_path / "out").exists()


def test_a_run_reads_its_manifest_once(small_image, tmp_path, monkeypatch) -> None:
    output = tmp_path / "out"
    assert run_workflow(small_run(small_image, output, fovs="0")).processed == (0,)
    reads = []
    real_read = manifest_module.read_manifest

    def counted(*args):
        reads.append(args)
        return real_read(*args)

    monkeypatch.setattr(manifest_module, "read_manifest", counted)
    report = run_workflow(small_run(small_image, output, fovs="0"))
    assert report.skipped == (0,)
    assert len(reads) == 1


def test_a_manifest_another_run_wrote_after_the_check_is_read_again(small_image,
                                                                     tmp_path) -> None:
    output = tmp_path / "out"
    prepared = prepare_run(small_run(small_image, output, fovs="0"))
    assert prepared.recorded.data is None
    assert run_workflow(small_run(small_image, output, fovs="0")).processed == (0,)
    # The run prepared before that one goes on from what it wrote: nothing is redone.
    assert run_workflow(prepared).skipped == (0,)


def test_an_optional_step_parameter_takes_none_and_others_refuse_it(tmp_path) -> None:
    # `working_diameter: null` in a configuration file: phase contrast split at full size.
    full_size = WorkflowConfig(input="absent.ome.tif", output=tmp_path / "out",
                               segmentation={"working_diameter": None})
    assert check_steps(full_size)["segmentation"]["working_diameter"] is None
    with pytest.raises(ConfigError, match="split must be like 'bodies', not None"):
        check_steps(WorkflowConfig(input="absent.ome.tif", output=tmp_path / "out",
                                   segmentation={"split": None}))


PLUGIN_WITH_AN_OPTIONAL_LEVEL = '''
from typing import Optional

import numpy as np


def above_level(frame, *, diameter, level: Optional[float] = 0.5):
    cut = frame.mean() if level is None else level
    return (frame > cut).astype(np.int32)


SEGMENTERS = {"above_level": above_level}
'''


def test_a_plugin_parameter_annotated_optional_takes_none(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "above.py").write_text(PLUGIN_WITH_AN_OPTIONAL_LEVEL)
    config = WorkflowConfig(input="absent.ome.tif", output=tmp_path / "out",
                            plugins=(str(plugins),),
                            segmentation={"method": "above_level", "level": None})
    try:
        assert check_steps(config)["segmentation"]["level"] is None
    finally:  # the registry is the process's: leave no method to later tests
        METHODS.pop("above_level", None)
