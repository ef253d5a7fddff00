"""Data for the analysis tests: a run folder as the engine writes it, and a plugin file.

Imported by name (``from analysis_helpers import ...``): a module called ``conftest`` is not
unique across test folders, so importing from it breaks when several folders are collected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TIMES_H = np.arange(181) / 6.0  # 181 frames, 10 minutes apart, like the lab's recordings

PLUGIN = '''
import numpy as np
from fovflow.analysis.models import Model, Parameter

def decay(t, *, t0, amplitude, rate, offset):
    dt = np.maximum(t - t0, 0.0)
    return np.where(dt > 0, amplitude * np.exp(-rate * dt), 0.0) + offset

MODELS = [Model("decay", decay, (
    Parameter("t0", 0.0, -5.0, 50.0, fixed=True),
    Parameter("amplitude", 100.0, 0.0, np.inf, linear=True),
    Parameter("rate", 0.1, 1e-4, 5.0),
    Parameter("offset", 0.0, linear=True),
))]
'''


def write_run(run_dir: Path, *, fovs: tuple[int, ...] = (0, 1, 2), n_cells: int = 4,
              n_frames: int = 30, manifest: bool = True, seed: int = 0) -> Path:
    """A run folder as the engine writes it: fov_XXX/traces_ch_1.csv (+ manifest, time in s).

    Cell 1 of every FOV has frames 5 and 6 marked not good; cell 3 exists for 6 frames only.
    """
    rng = np.random.default_rng(seed)
    for fov in fovs:
        rows = []
        for cell in range(1, n_cells + 1):
            frames = range(6) if cell == 3 else range(n_frames)
            for frame in frames:
                rows.append({
                    "fov": fov, "cell": cell, "frame": frame, "time": 600.0 * frame + fov,
                    "good": not (cell == 1 and frame in (5, 6)),
                    "position_x": rng.uniform(0, 100), "position_y": rng.uniform(0, 100),
                    "intensity_total": 1000.0 * fov + 10.0 * cell + frame,
                    "intensity_mean": rng.uniform(1, 2), "area": 100.0 + cell,
                })
        folder = run_dir / f"fov_{fov:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(folder / "traces_ch_1.csv", index=False)
    if manifest:
        (run_dir / "processing_results.yaml").write_text("time_unit: s\n")
    return run_dir
