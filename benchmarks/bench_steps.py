"""Time each processing step per frame on one core, with its peak memory.

Usage: ``taskset -c 0 .venv/bin/python benchmarks/bench_steps.py [--frames N] [--cpu]
[--method phase|learned|...]``

Frames are simulated (``fovflow.io.synthetic``) with about 100 cells per frame at 1024x1024 and
2048x2048. Each step runs over the whole stack, in memory, into a preallocated output, so the
peak memory is that of the step's temporaries. Times are the best of 3 rounds, per frame:
wall time, or with ``--cpu`` this process's CPU time, which other programs on a shared
machine disturb less (every step runs on one thread here, so on a quiet machine the two
agree).
Peak memory comes from a separate round under ``tracemalloc``, which sees numpy allocations
(including OpenCV's output arrays) but not OpenCV's internal buffers.
"""

from __future__ import annotations

from one_thread import limit_threads

limit_threads()

import argparse  # noqa: E402 - thread limits must be set before numpy is imported
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fovflow.io.synthetic import SimulationConfig, simulate_fov  # noqa: E402
from fovflow.processing import (  # noqa: E402
    correct_background,
    extract_features,
    segment_cells,
    track_cells,
)

# (size, cell radius, cells per megapixel): about 100 cells in view per frame.
SCENES = ((1024, 22.0, 110.0), (2048, 35.0, 27.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--cpu", action="store_true", help="CPU time instead of wall time")
    parser.add_argument("--method", default="phase", help="segmentation method to time")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    clock = time.process_time if args.cpu else time.perf_counter
    print(f"one core: cv2 threads = {cv2.getNumThreads()}, frames per stack = {args.frames}, "
          f"{'CPU' if args.cpu else 'wall'} time")
    print(f"{'size':>9} {'cells':>6} {'step':<12} {'ms/frame':>9} {'peak MiB':>9}")
    for size, radius, density in SCENES:
        _bench_scene(size, radius, density, args.frames, clock, args.method)


def _bench_scene(size: int, radius: float, density: float, n_frames: int,
                 clock: Callable[[], float], method: str) -> None:
    sim = simulate_fov(SimulationConfig(n_frames=n_frames, height=size, width=size,
                                        cell_radius_px=radius, cells_per_megapixel=density,
                                        seed=0), fov=0)
    n_cells = np.mean([len(np.unique(frame)) - 1 for frame in sim.labels])
    shape = sim.phase.shape
    cells, corrected = np.empty(shape, np.uint32), np.empty(shape, np.float32)
    labels = np.empty(shape, np.uint32)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("segment", lambda: segment_cells(sim.phase, method=method, diameter=2 * radius,
                                          out=cells)),
        ("background", lambda: correct_background(sim.fluorescence[0], cells, out=corrected)),
        ("track", lambda: track_cells(cells, out=labels)),
        ("extract", lambda: extract_features(labels, corrected)),
    ]
    total = 0.0
    for name, step in steps:
        seconds = min(_timed(step, clock) for _ in range(3)) / n_frames
        total += seconds
        print(f"{size:>4}x{size:<4} {n_cells:>6.0f} {name:<12} {seconds * 1e3:>9.1f} "
              f"{_peak_mib(step):>9.1f}")
    frame_mib = size * size * 4 / 2**20
    print(f"{size:>4}x{size:<4} {n_cells:>6.0f} {'all four':<12} {total * 1e3:>9.1f} "
          f"{'':>9}  (one float32 frame = {frame_mib:.0f} MiB)")


def _timed(step: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    step()
    return clock() - start


def _peak_mib(step: Callable[[], object]) -> float:
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


if __name__ == "__main__":
    main()
