"""The napari plugin opens a run folder: images, labels and tracks at the file's scale.

napari's `ViewerModel` is the viewer without its window: `napari.Viewer(show=False)` still
needs an OpenGL context, which the offscreen Qt platform of CI machines does not give.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fovflow.io.layout import LABELS, fov_dir, open_stack, stack_scale
from fovflow.io.lineage import run_lineage
from fovflow.napari_plugin.reader import get_reader, read
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.run import run_workflow

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari")


@pytest.fixture(scope="module")
def run_dir(small_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("napari") / "out"
    assert run_workflow(WorkflowConfig(input=small_image, output=output, executor="serial",
                                       fovs="0-1", fl_channels=(1,),
                                       extraction={"min_length": 3})).ok
    return output


def test_the_reader_claims_run_and_fov_folders_only(run_dir: Path, tmp_path: Path) -> None:
    assert get_reader(str(run_dir)) is read
    assert get_reader(str(fov_dir(run_dir, 1))) is read
    assert get_reader(str(tmp_path)) is None
    assert get_reader(str(run_dir / "processing_results.yaml")) is None


def test_napari_opens_a_run_folder_through_the_plugin(run_dir: Path, small_config) -> None:
    from napari.components import ViewerModel
    from npe2 import PluginManager

    PluginManager.instance().discover()  # what napari.Viewer does at start: finds fovflow's
    viewer = ViewerModel()
    layers = viewer.open(str(run_dir), plugin="fovflow")
    names = [layer.name for layer in layers]
    assert names == [f"fov_00{f} {kind}" for f in (0, 1)
                     for kind in ("pc", "fl_ch_1", "fl_corrected_ch_1", "cells", "tracks")]
    by_name = {layer.name: layer for layer in layers}
    phase, cells, tracks = (by_name[f"fov_001 {kind}"] for kind in ("pc", "cells", "tracks"))
    assert isinstance(cells, napari.layers.Labels)
    assert isinstance(tracks, napari.layers.Tracks)
    shape = (small_config.n_frames, small_config.height, small_config.width)
    assert phase.data.shape == cells.data.shape == shape
    scale = stack_scale(run_dir, 1)
    assert scale[0] == pytest.approx(small_config.frame_interval_s)
    for layer in (phase, cells, tracks):
        np.testing.assert_allclose(layer.scale, scale)
    labels = np.asarray(open_stack(run_dir, 1, LABELS))
    np.testing.assert_array_equal(np.asarray(cells.data[3]), labels[3])
    tracked = set(np.unique(labels)) - {0}
    assert set(tracks.data[:, 0].astype(int)) <= tracked
    traces = pd.read_csv(fov_dir(run_dir, 1) / "traces_ch_1.csv")
    assert len(np.unique(tracks.data[:, 0])) == traces["cell"].nunique() > 0
    assert len(tracks.data) == len(traces)
    lineage = run_lineage(run_dir, 1)
    assert lineage is not None
    assert tracks.graph == {int(t): [int(p)] for t, p in zip(lineage.track, lineage.parent,
                                                             strict=True)
                            if p and t in tracked and p in tracked}
    assert not by_name["fov_001 pc"].visible and by_name["fov_000 pc"].visible


def test_tracks_link_each_daughter_to_its_mother(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    from fovflow.io.layout import LINEAGE_NAME
    from fovflow.io.lineage import write_lineage
    from fovflow.napari_plugin.reader import fov_tracks
    from fovflow.processing.lineage import Lineage

    output = tmp_path / "out"
    shutil.copytree(run_dir, output)
    traces = pd.read_csv(fov_dir(output, 0) / "traces_ch_1.csv")
    cells = np.unique(traces["cell"])
    assert len(cells) >= 2
    mother, daughter = int(cells[0]), int(cells[1])
    parents = np.where(cells == daughter, mother, 0)
    parents[-1] = 999 if len(cells) > 2 else parents[-1]  # a mother without a trace: left out
    write_lineage(fov_dir(output, 0) / LINEAGE_NAME,
                  Lineage(cells.astype(np.int64), parents.astype(np.int64),
                          np.zeros(len(cells), np.int64), np.ones(len(cells), np.int64)))
    found = fov_tracks(output, 0)
    assert found is not None
    data, graph = found
    assert graph == {daughter: [mother]}
    assert data.shape == (len(traces), 4)


def test_napari_shows_the_input_channels_of_a_run_that_did_not_copy_them(
        small_image: Path, tmp_path: Path, small_config) -> None:
    from napari.components import ViewerModel
    from npe2 import PluginManager

    from fovflow.io.microscopy import open_dataset

    output = tmp_path / "out"
    assert run_workflow(WorkflowConfig(input=small_image, output=output, executor="serial",
                                       fovs="1", fl_channels=(1,), copy="read",
                                       extraction={"min_length": 3})).ok
    PluginManager.instance().discover()
    layers = {layer.name: layer for layer in ViewerModel().open(str(output), plugin="fovflow")}
    assert list(layers) == [f"fov_001 {kind}" for kind in
                            ("pc", "fl_ch_1", "fl_corrected_ch_1", "cells", "tracks")]
    shape = (small_config.n_frames, small_config.height, small_config.width)
    with open_dataset(small_image) as dataset:
        for kind, channel in (("pc", 0), ("fl_ch_1", 1)):
            assert layers[f"fov_001 {kind}"].data.shape == shape
            np.testing.assert_array_equal(np.asarray(layers[f"fov_001 {kind}"].data[4]),
                                          dataset.frame(1, channel, 4))
    np.testing.assert_allclose(layers["fov_001 pc"].scale, stack_scale(output, 1))
    assert stack_scale(output, 1)[0] == pytest.approx(small_config.frame_interval_s)


def test_the_corrected_channel_is_computed_from_its_model_as_napari_shows_it(
        run_dir: Path, small_config) -> None:
    import dask.array as da

    from fovflow.io.layout import BACKGROUND_NAME, CORRECTED_NAME, corrected_stack
    from fovflow.napari_plugin.reader import fov_layers

    assert (fov_dir(run_dir, 1) / BACKGROUND_NAME).is_dir()  # the default: no pixels stored
    assert not (fov_dir(run_dir, 1) / CORRECTED_NAME).exists()
    layers = {meta["name"]: (data, meta, kind) for data, meta, kind in fov_layers(run_dir, 1)}
    data, meta, kind = layers["fov_001 fl_corrected_ch_1"]
    assert kind == "image" and isinstance(data, da.Array)
    assert data.shape == (small_config.n_frames, small_config.height, small_config.width)
    assert data.dtype == np.float32 and data.chunksize == (1, *data.shape[1:])
    np.testing.assert_allclose(meta["scale"], stack_scale(run_dir, 1))
    expected = open_stack(run_dir, 1, corrected_stack(1))
    np.testing.assert_array_equal(np.asarray(data[6]), expected[6])
    raw = np.asarray(layers["fov_001 fl_ch_1"][0][6], np.float32)
    assert np.abs(raw - np.asarray(data[6])).mean() > 0  # a background was taken off
