"""How well can the processing steps alone scale on this machine? The ceiling for the engine.

Runs the four steps on an in-memory stack (no file, no Zarr, no events) in 1 process, then in
N processes at once, and prints the time per frame and the speedup N processes give. A
cache-resident arithmetic loop is run the same way as a control: it scales by N when the
cores are truly free, so a lower figure for the steps means they contend for something the
cores share (memory bandwidth, the last-level cache).

    .venv/bin/python benchmarks/bench_ceiling.py [--size 1024] [--frames 10] [--processes 2]
"""

from __future__ import annotations

from one_thread import limit_threads

limit_threads()

import argparse  # noqa: E402 - thread limits must be set before numpy is imported
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: time one workload
    args = parser.parse_args()
    if args.case:
        print(_time_case(args.case, args.size, args.frames))
        return
    print(f"{args.size}x{args.size}, {args.frames} frames per round; "
          f"1 process, then {args.processes} at once")
    print(f"{'workload':<10}{'1 process ms':>14}{f'{args.processes} at once ms':>16}"
          f"{'speedup':>9}")
    for case in ("control", "steps"):
        alone = _run(case, args, 1)[0]
        together = max(_run(case, args, args.processes))
        speedup = args.processes * alone / together
        print(f"{case:<10}{alone:>14.1f}{together:>16.1f}{speedup:>8.2f}x")


def _run(case: str, args: argparse.Namespace, processes: int) -> list[float]:
    command = [sys.executable, __file__, "--case", case, "--size", str(args.size),
               "--frames", str(args.frames)]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
               for _ in range(processes)]
    return [float(process.communicate()[0]) for process in running]


def _time_case(case: str, size: int, n_frames: int) -> float:
    """Milliseconds per frame (steps) or per round (control), best of 3 rounds."""
    import cv2

    from fovflow.execution.allocator import reuse_freed_buffers
    from fovflow.io.synthetic import SimulationConfig, simulate_fov
    from fovflow.processing import (
        correct_background,
        extract_features,
        segment_cells,
        track_cells,
    )

    cv2.setNumThreads(1)
    reuse_freed_buffers()  # as in the engine's workers
    sim = simulate_fov(SimulationConfig(n_frames=n_frames, height=size, width=size,
                                        cells_per_megapixel=90.0, seed=0), fov=0)
    shape = sim.phase.shape
    cells, corrected = np.empty(shape, np.uint32), np.empty(shape, np.float32)
    labels = np.empty(shape, np.uint32)

    def steps() -> None:
        segment_cells(sim.phase, method="phase", diameter=60, out=cells)
        correct_background(sim.fluorescence[0], cells, out=corrected)
        track_cells(cells, out=labels)
        extract_features(labels, corrected)

    def control() -> None:
        values = np.random.default_rng(0).random(20_000)  # 160 kB: stays in the core's cache
        for _ in range(3000):
            values = np.sqrt(values * 1.0001 + 0.1)

    work, per = (steps, n_frames) if case == "steps" else (control, 1)
    work()  # warm up
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        work()
        rounds.append((time.perf_counter() - start) / per * 1e3)
    return min(rounds)


if __name__ == "__main__":
    main()
