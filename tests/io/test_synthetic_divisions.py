"""Simulated divisions and stage jumps: true parent links, halved fluorescence, CLI options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fovflow.cli.main import app
from fovflow.errors import ConfigError
from fovflow.io.ctc import export_truth_ctc, truth_lineage
from fovflow.io.synthetic import SimulationConfig, simulate_fov

CONFIG = SimulationConfig(n_fovs=1, n_frames=30, height=256, width=256, kind="nuclei",
                          cell_cycle_h=4.0, cells_per_megapixel=250)


def test_a_divided_cell_ends_where_its_daughters_begin_with_half_its_fluorescence() -> None:
    sim = simulate_fov(CONFIG, 0)
    lineage = sim.lineage
    assert lineage.n_divisions >= 10  # measured: 22
    params = {int(row["cell"]): row for row in sim.cells}
    checked = 0
    for mother in np.unique(lineage.parent[lineage.parent > 0]).tolist():
        daughters = lineage.track[lineage.parent == mother].tolist()
        if mother not in lineage.track:
            continue  # divided out of view
        start = int(lineage.first_frame[lineage.parent == mother].min())
        assert int(lineage.last_frame[lineage.track == mother][0]) == start - 1
        assert not (sim.labels[start:] == mother).any()
        for daughter in daughters:
            assert params[daughter]["parent"] == mother
            for key in ("ktl", "offset"):  # the maturation model's total is linear in them
                assert params[daughter][key] == pytest.approx(params[mother][key] / 2,
                                                              abs=1e-5)
            assert params[daughter]["delta"] == params[mother]["delta"]
            checked += 1
    assert checked >= 10


def test_newborn_nuclei_push_their_neighbours_aside_instead_of_covering_them() -> None:
    sim = simulate_fov(CONFIG, 0)
    shape = {int(row["cell"]): (row["parent"], row["semi_major_px"], row["semi_minor_px"])
             for row in sim.cells}
    lost = []
    for row in sim.traces:  # each daughter in her first frame, away from the frame's border
        parent, a, b = shape[int(row["cell"])]
        first = int(sim.lineage.first_frame[sim.lineage.track == row["cell"]][0])
        if parent and row["frame"] == first and all(
                25 < row[key] < 231 for key in ("position_x", "position_y")):
            lost.append(1 - row["area"] / (np.pi * a * b))
    assert len(lost) >= 10  # measured: 17
    # Measured: at most 3.3 % of a daughter's outline goes to a neighbour (the layout lets
    # neighbours overlap a little); drawn over her neighbours, before the push: up to 8.9 %.
    assert max(lost) < 0.05


def test_a_stage_jump_moves_every_cell_by_a_cell_diameter() -> None:
    plain = simulate_fov(SimulationConfig(n_fovs=1, n_frames=4, height=256, width=256,
                                          kind="nuclei"), 0)
    jumped = simulate_fov(SimulationConfig(n_fovs=1, n_frames=4, height=256, width=256,
                                           kind="nuclei", stage_jump_frame=2), 0)
    np.testing.assert_array_equal(plain.labels[:2], jumped.labels[:2])
    before = {(r["cell"], r["frame"]): (r["position_x"], r["position_y"]) for r in plain.traces}
    moved = [np.hypot(x - before[c, f][0], y - before[c, f][1])
             for c, f, x, y in ((r["cell"], r["frame"], r["position_x"], r["position_y"])
                                for r in jumped.traces if r["frame"] == 3 and r["area"] > 300)
             if (c, f) in before]
    assert np.median(moved) == pytest.approx(24.0, abs=1.0)  # 2 x the 12 px radius


def test_divisions_are_refused_for_isolated_cells() -> None:
    with pytest.raises(ConfigError, match="not isolated"):
        SimulationConfig(cell_cycle_h=10.0)


def test_simulate_divisions_writes_the_true_lineage_and_ctc_parents(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", str(tmp_path / "sim.ome.tif"), "--fovs", "1",
                                      "--frames", "20", "--size", "128", "--kind", "nuclei",
                                      "--divisions", "3", "--stage-jump", "10"])
    assert result.exit_code == 0, result.output
    truth = tmp_path / "sim.truth"
    lineage = truth_lineage(truth, 0)
    assert lineage is not None and lineage.n_divisions >= 1
    tracks = export_truth_ctc(truth, 0, tmp_path / "01_GT")
    text = (tmp_path / "01_GT" / "TRA" / "man_track.txt").read_text()
    assert any(line.split()[3] != "0" for line in text.splitlines())
    assert (tracks.parent > 0).sum() >= 2
