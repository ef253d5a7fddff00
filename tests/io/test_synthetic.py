"""The simulator is deterministic and its ground truth matches what it renders."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import zarr

from fovflow import kinetics
from fovflow.errors import Cancelled, ConfigError, FovflowError
from fovflow.io.synthetic import (
    SimulationConfig,
    SimulationFiles,
    simulate_fov,
    truth_dir_for,
    write_simulation,
)

CONFIG = SimulationConfig(n_fovs=2, n_frames=30, height=256, width=256, seed=3)


@pytest.fixture(scope="module")
def fov0():
    return simulate_fov(CONFIG, 0)


def test_same_seed_gives_identical_data_and_another_seed_does_not(fov0) -> None:
    again = simulate_fov(CONFIG, 0)
    other = simulate_fov(SimulationConfig(**{**CONFIG.__dict__, "seed": 4}), 0)
    assert np.array_equal(again.phase, fov0.phase)
    assert np.array_equal(again.fluorescence, fov0.fluorescence)
    assert np.array_equal(again.labels, fov0.labels)
    assert again.traces == fov0.traces
    assert not np.array_equal(other.phase, fov0.phase)


def test_fovs_differ_from_each_other(fov0) -> None:
    assert not np.array_equal(simulate_fov(CONFIG, 1).labels, fov0.labels)


def test_truth_rows_describe_the_rendered_labels(fov0) -> None:
    for row in fov0.traces:
        mask = fov0.labels[row["frame"]] == row["cell"]
        ys, xs = np.nonzero(mask)
        assert mask.sum() == row["area"]
        assert xs.mean() == pytest.approx(row["position_x"])
        assert ys.mean() == pytest.approx(row["position_y"])
    labelled = {(t, int(c)) for t in range(CONFIG.n_frames) for c in np.unique(fov0.labels[t]) if c}
    assert labelled == {(row["frame"], row["cell"]) for row in fov0.traces}


def test_cells_appear_late_enter_and_leave_the_field() -> None:
    config = SimulationConfig(n_frames=60, height=384, width=384, late_fraction=0.3, seed=0)
    sim = simulate_fov(config, 0)
    frames_of = defaultdict(list)
    for row in sim.traces:
        frames_of[row["cell"]].append(row["frame"])
    late = {c["cell"] for c in sim.cells if c["appear_frame"] > 0}
    first_frames = {cell: min(frames) for cell, frames in frames_of.items()}
    last_frames = {cell: max(frames) for cell, frames in frames_of.items()}
    assert late and all(first_frames[cell] > 0 for cell in late)
    assert any(first > 0 for cell, first in first_frames.items() if cell not in late)  # entered
    assert any(last < 59 for last in last_frames.values())  # left the field
    assert all(frames == list(range(min(frames), max(frames) + 1)) for frames in frames_of.values())


def test_whole_cells_carry_their_model_total_intensity(fov0) -> None:
    params = {(c["cell"], c["channel"]): c for c in fov0.cells}
    checked = 0
    for row in fov0.traces:
        mask = fov0.labels[row["frame"]] == row["cell"]
        ys, xs = np.nonzero(mask)
        if ys.min() == 0 or xs.min() == 0 or ys.max() == 255 or xs.max() == 255:
            continue  # partly outside the field: only the visible share is recorded
        cell = params[(row["cell"], 1)]
        expected = kinetics.maturation(
            row["time_h"], **{k: cell[k] for k in kinetics.PARAMETERS["maturation"]}
        )
        assert row["intensity_total_ch_1"] == pytest.approx(float(expected), rel=1e-5)
        checked += 1
    assert checked > 10


def test_fluorescence_above_background_sums_to_the_true_total(fov0) -> None:
    frame = 25
    image = fov0.fluorescence[0, frame].astype(float)
    labels = fov0.labels[frame]
    background = np.median(image[labels == 0])  # the background is smooth and nearly flat
    for row in (r for r in fov0.traces if r["frame"] == frame):
        measured = (image[labels == row["cell"]] - background).sum()
        assert measured == pytest.approx(row["intensity_total_ch_1"], rel=0.15)


def test_phase_contrast_cells_are_darker_and_more_textured_than_background(fov0) -> None:
    image = np.log(fov0.phase[10].astype(float))
    inside, outside = image[fov0.labels[10] > 0], image[fov0.labels[10] == 0]
    assert inside.mean() < outside.mean() - 0.2
    assert np.diff(inside).std() > 5 * np.diff(outside).std()


@pytest.mark.parametrize("model", list(kinetics.MODELS))
def test_every_model_simulates_with_positive_unsaturated_signal(model: str) -> None:
    config = SimulationConfig(n_fovs=1, n_frames=12, height=128, width=128, model=model, seed=2)
    sim = simulate_fov(config, 0)
    assert {c["model"] for c in sim.cells} == {model}
    assert set(kinetics.PARAMETERS[model]) <= set(sim.cells[0])
    assert sim.fluorescence.max() < np.iinfo(np.uint16).max
    assert max(row["intensity_total_ch_1"] for row in sim.traces) > 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_fovs", 0), ("n_frames", 0), ("height", 16), ("n_fluorescence", 0),
     ("n_fluorescence", 9), ("model", "linear"), ("frame_interval_s", 0.0), ("late_fraction", 2.0)],
)
def test_invalid_configuration_is_a_clear_error(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        SimulationConfig(**{field: value})


def test_written_files_hold_the_ground_truth_beside_the_image(
    small_files: SimulationFiles, small_config: SimulationConfig
) -> None:
    assert small_files.truth == truth_dir_for(small_files.image)
    names = sorted(p.name for p in small_files.truth.iterdir())
    assert names == ["cells.csv", "labels_fov_000.zarr", "labels_fov_001.zarr",
                     "labels_fov_002.zarr", "lineage_fov_000.csv", "lineage_fov_001.csv",
                     "lineage_fov_002.csv", "simulation.yaml", "traces.csv"]
    in_memory = simulate_fov(small_config, 2)
    stored = zarr.open_array(small_files.truth / "labels_fov_002.zarr", mode="r")
    assert stored.chunks == (1, small_config.height, small_config.width)
    assert np.array_equal(stored[:], in_memory.labels)
    header = (small_files.truth / "traces.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["fov", "cell", "frame", "time_h"]
    assert "intensity_total_ch_2" in header


def test_existing_output_is_never_overwritten_without_force(tmp_path: Path) -> None:
    config = SimulationConfig(n_fovs=1, n_frames=2, height=32, width=32)
    first = write_simulation(tmp_path / "a.ome.tif", config)
    before = first.image.read_bytes()
    with pytest.raises(FovflowError, match="already exists"):
        write_simulation(tmp_path / "a.ome.tif", SimulationConfig(n_fovs=1, n_frames=3, height=32,
                                                                  width=32))
    assert first.image.read_bytes() == before
    write_simulation(tmp_path / "a.ome.tif", config, overwrite=True)


def test_cancelled_simulation_leaves_no_file(tmp_path: Path) -> None:
    def cancel_at_third_frame(done: int, total: int) -> None:
        if done == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        write_simulation(tmp_path / "c.ome.tif", CONFIG, progress=cancel_at_third_frame)
    assert list(tmp_path.iterdir()) == []


def test_output_must_be_named_as_ome_tiff(tmp_path: Path) -> None:
    with pytest.raises(FovflowError, match=r"\.ome\.tif"):
        write_simulation(tmp_path / "c.tif", CONFIG)
