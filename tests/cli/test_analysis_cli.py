"""`fovflow merge`, `fit` and `models` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cli_assertions import assert_one_line_error
from fovflow.analysis.simulate import simulate_traces
from fovflow.io.tables import SampleTable, cell_column, read_fitted_table, write_sample_table

FOVFLOW = Path(sys.executable).with_name("fovflow")
HELPERS = Path(__file__).parents[1] / "analysis" / "analysis_helpers.py"
PLUGIN = HELPERS.read_text().split("'''")[1]


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FOVFLOW, *map(str, args)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, **(env or {})})



def _table(folder: Path, name: str, n: int = 12) -> Path:
    times_min = np.arange(181) * 10.0
    values, _ = simulate_traces("maturation", n, times_min / 60, fixed={"km": 1.28}, seed=7)
    frame = pd.DataFrame(values, index=pd.Index(times_min, name="time"),
                         columns=[cell_column(0, i) for i in range(n)])
    path = folder / f"{name}.csv"
    write_sample_table(SampleTable(frame, "min"), path)
    return path


def test_merge_writes_sample_tables(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    folder = run_dir / "fov_000"
    folder.mkdir(parents=True)
    rows = [{"fov": 0, "cell": c, "frame": f, "time": 600.0 * f, "good": True, "position_x": 1,
             "position_y": 2, "intensity_total": 10.0 * f, "area": 50} for c in (1, 2)
            for f in range(12)]
    pd.DataFrame(rows).to_csv(folder / "traces_ch_1.csv", index=False)
    (tmp_path / "samples.yaml").write_text("samples:\n  - {name: ctrl, fovs: '0'}\n")
    result = run("merge", run_dir, "--samples", tmp_path / "samples.yaml", "--time-unit", "s")
    assert result.returncode == 0, result.stderr
    wide = run_dir / "samples" / "ctrl_intensity_total_ch_1.csv"
    assert wide.read_text().startswith("# Time units: s\ntime,fov_000_cell_1,fov_000_cell_2\n")
    assert (run_dir / "samples" / "long" / "ctrl_area_ch_1.csv").exists()


def test_fit_folder_with_report_then_skips_complete_outputs(tmp_path: Path) -> None:
    _table(tmp_path, "ctrl")
    _table(tmp_path, "drug")
    result = run("fit", tmp_path, "--model", "maturation", "--fix", "km=1.28", "--report",
                 "--curves")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("wrote ") >= 4 and "12/12 fits converged" in result.stdout
    fitted, settings = read_fitted_table(tmp_path / "ctrl_fitted_maturation.csv")
    assert settings["fixed"] == [["km", 1.28]]
    assert fitted.columns[:6].tolist() == ["fov", "cell", "model", "success", "r_squared", "rmse"]
    assert fitted.success.all() and fitted.r_squared.median() > 0.99
    assert (tmp_path / "ctrl_fitted_maturation_curves.csv").exists()
    assert (tmp_path / "report" / "drug_maturation_curves.png").exists()
    assert (tmp_path / "report" / "drug_maturation_summary.csv").exists()
    again = run("fit", tmp_path, "--model", "maturation", "--fix", "km=1.28")
    assert again.stdout.count("up to date") == 2, again.stdout
    forced = run("fit", tmp_path / "ctrl.csv", "--model", "maturation", "--fix", "km=1.28",
                 "--force")
    assert "wrote" in forced.stdout and "up to date" not in forced.stdout


def test_fit_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    table = _table(tmp_path, "ctrl", n=2)
    assert_one_line_error(run("fit", table, "--fix", "km"), "--fix 'km'", "NAME=VALUE")
    assert_one_line_error(run("fit", table, "--model", "nope"), "unknown model 'nope'")
    assert_one_line_error(run("fit", tmp_path / "missing.csv"), "no such table or folder")


def test_models_lists_plugins_and_rejects_malformed_ones(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "decay.py").write_text(PLUGIN)
    listed = json.loads(run("models", "--json", "--plugins", plugins).stdout)
    assert list(listed) == ["trivial", "maturation", "maturation_blocked", "decay"]
    from_env = run("models", env={"FOVFLOW_PLUGINS": str(plugins)})
    assert "decay" in from_env.stdout and "maturation_blocked" in from_env.stdout
    (plugins / "broken.py").write_text("MODELS = 3\n")
    assert_one_line_error(run("models", "--plugins", plugins), "broken.py", "no MODELS list")


def test_a_short_movie_gives_cells_to_fit(tmp_path: Path) -> None:
    # 20 frames: fewer than both minimum lengths (run 30, merge 25 here); both are capped
    movie = tmp_path / "short.ome.tif"
    assert run("simulate", movie, "--fovs", "1", "--frames", "20", "--size", "128").returncode == 0
    processed = run("run", movie, "-o", tmp_path / "out", "--pc", "0", "--fl", "1",
                    "--workers", "1")
    assert processed.returncode == 0, processed.stderr
    (tmp_path / "samples.yaml").write_text("samples:\n  - {name: a, fovs: '0'}\n")
    merged = run("merge", tmp_path / "out", "--samples", tmp_path / "samples.yaml",
                 "--min-length", "25")
    assert merged.returncode == 0, merged.stderr
    assert "20 frames, fewer than the minimum length 25" in merged.stdout
    table = tmp_path / "out" / "samples" / "a_intensity_total_ch_1.csv"
    assert "(0 cells)" not in merged.stdout
    fitted = run("fit", tmp_path / "out" / "samples")
    assert fitted.returncode == 0, fitted.stderr
    assert (tmp_path / "out" / "samples" / "a_intensity_total_ch_1_fitted_maturation.csv"
            ).is_file() and table.is_file()
    assert not (tmp_path / "out" / "samples" / "a_area_ch_1_fitted_maturation.csv").exists()


def test_merge_and_fit_without_cells_warn_and_exit_1(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "fov_000"
    folder.mkdir(parents=True)
    rows = [{"fov": 0, "cell": 1, "frame": f, "time": 600.0 * f, "good": False,
             "position_x": 1, "position_y": 2, "intensity_total": 10.0, "area": 50}
            for f in range(12)]
    pd.DataFrame(rows).to_csv(folder / "traces_ch_1.csv", index=False)
    (tmp_path / "samples.yaml").write_text("samples:\n  - {name: ctrl, fovs: '0'}\n")
    merged = run("merge", tmp_path / "run", "--samples", tmp_path / "samples.yaml",
                 "--time-unit", "s")
    assert merged.returncode == 1
    assert "no cell has" in merged.stdout + merged.stderr
    fitted = run("fit", tmp_path / "run" / "samples")
    assert fitted.returncode == 1
    assert "no cells to fit" in fitted.stdout + fitted.stderr


def test_models_explains_each_default(tmp_path: Path) -> None:
    listed = json.loads(run("models", "--json").stdout)
    km = listed["maturation"]["parameters"]["km"]
    assert km["fixed"] and km["default"] == 1.28 and "fluorescent protein" in km["rationale"]
    for name in ("delta", "beta"):
        rate = listed["maturation"]["parameters"][name]
        assert (rate["lower"], rate["upper"]) == (1e-3, 10.0) and rate["rationale"]
    assert listed["trivial"]["swappable"] == [["delta", "beta"]]
    shown = run("models").stdout
    assert "1.28 1/h fixed" in shown and "half-life" in shown
