"""Divisions, lineage and stage jumps: scores on simulated dividing cells, and their cost.

Usage::

    .venv/bin/python benchmarks/bench_divisions.py [--size 512] [--frames 40] [--cycle 6]
        [--seeds 0,1] [--timing-size 1024]

Per seed, a FOV of the ``nuclei`` kind (fluorescent nuclei, the fluorescence segmentation,
`--density` nuclei per megapixel at first, so the doubled population still has room) whose
cells divide about once per `--cycle` hours over a movie of `--frames` frames 10 minutes apart,
once as is and once with a stage jump of a cell's diameter at the middle frame, is segmented
(`segment_cells`, method ``fluorescence``, diameter ``auto``) and tracked (`track_cells`,
defaults). Reported: division recall and precision (`fovflow.evaluation.divisions`, one frame
of tolerance) and py-ctcmetrics DET, TRA, BC(0), CT against the true labels and lineage (every
true cell of at least 30 px), for tracking with defaults and with divisions and drift off.

Timing: `track_cells` per frame on the segmented labels of a `--timing-size` FOV, with the
defaults and with ``divisions=False, drift=False``, best of 5, on one core.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402 - thread limits must be set before numpy is imported
import contextlib  # noqa: E402
import io  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from ctc_metrics import evaluate_sequence  # noqa: E402

from fovflow.evaluation.divisions import score_divisions  # noqa: E402
from fovflow.evaluation.scores import score_labels  # noqa: E402
from fovflow.io.ctc import SmallCellsRemoved, write_ctc_result, write_ctc_truth  # noqa: E402
from fovflow.io.synthetic import SimulationConfig, simulate_fov  # noqa: E402
from fovflow.processing.segmentation import segment_cells  # noqa: E402
from fovflow.processing.tracking import track_cells  # noqa: E402

MIN_TRUE_AREA = 30  # px: border slivers below this are left out of the truth
OFF = {"divisions": False, "drift": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--cycle", type=float, default=6.0, help="cell-cycle time, hours")
    parser.add_argument("--density", type=float, default=250.0,
                        help="nuclei per megapixel at frame 0 (they double by the end)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--timing-size", type=int, default=1024)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"{'seed':>4} {'jump':>5} {'tracking':<9} {'divisions':>9} {'recall':>6} "
          f"{'precision':>9} {'DET':>6} {'TRA':>6} {'BC(0)':>6} {'CT':>6}")
    for seed in map(int, args.seeds.split(",")):
        for jump in (None, args.frames // 2):
            config = SimulationConfig(n_fovs=1, n_frames=args.frames, height=args.size,
                                      width=args.size, kind="nuclei", cell_cycle_h=args.cycle,
                                      cells_per_megapixel=args.density, stage_jump_frame=jump,
                                      seed=seed)
            sim = simulate_fov(config, 0)
            segmented = np.asarray(segment_cells(sim.phase,
                                                 method="fluorescence"))
            for name, keywords in (("defaults", {}), ("off", OFF)):
                print(f"{seed:>4} {jump!s:>5} {name:<9} " + _scores(sim, segmented, keywords),
                      flush=True)
    _timing(args.timing_size, args.frames, args.cycle, args.density)


def _scores(sim: Any, segmented: np.ndarray, keywords: dict[str, Any]) -> str:
    tracking = track_cells(segmented, **keywords)
    truth = SmallCellsRemoved(sim.labels, MIN_TRUE_AREA)
    _, matches = score_labels(truth, tracking.labels)
    divisions = score_divisions(sim.lineage, tracking.lineage, matches)
    with tempfile.TemporaryDirectory() as folder:
        write_ctc_truth(truth, Path(folder) / "GT", lineage=sim.lineage)
        write_ctc_result(tracking.labels, Path(folder) / "RES", lineage=tracking.lineage)
        with contextlib.redirect_stdout(io.StringIO()):
            ctc = evaluate_sequence(str(Path(folder) / "RES"), str(Path(folder) / "GT"),
                                    ["DET", "TRA", "BC", "CT"], threads=0)
    return (f"{divisions.n_true:>9} {divisions.recall:>6.3f} {divisions.precision:>9.3f} "
            f"{ctc['DET']:>6.3f} {ctc['TRA']:>6.3f} {ctc['BC(0)']:>6.3f} {ctc['CT']:>6.3f}")


def _timing(size: int, n_frames: int, cycle: float, density: float) -> None:
    config = SimulationConfig(n_fovs=1, n_frames=n_frames, height=size, width=size,
                              kind="nuclei", cell_cycle_h=cycle, cells_per_megapixel=density,
                              seed=0)
    segmented = np.asarray(segment_cells(simulate_fov(config, 0).phase, method="fluorescence"))
    n_cells = np.mean([len(np.unique(frame)) - 1 for frame in segmented])
    out = np.empty(segmented.shape, np.uint32)
    times = {}
    for name, keywords in (("defaults", {}), ("off", OFF), ("divisions only", {"drift": False}),
                           ("drift only", {"divisions": False})):
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            track_cells(segmented, out=out, **keywords)
            best = min(best, time.perf_counter() - start)
        times[name] = 1000 * best / n_frames
    print(f"\ntracking {size}x{size}, {n_cells:.0f} cells per frame, ms per frame: "
          + ", ".join(f"{name} {ms:.2f}" for name, ms in times.items())
          + f"; divisions and drift cost {100 * (times['defaults'] / times['off'] - 1):.1f} %")


if __name__ == "__main__":
    main()
