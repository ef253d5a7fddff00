"""Peak memory per worker on full-size FOVs: does it stay bounded as a run gets longer?

Simulates 16 FOVs of 2048x2048 x 60 frames x 2 channels (phase contrast + one fluorescence
channel, about 16 GB of OME-TIFF), then processes 4 and then all 16 of them with the process
executor, each run in a fresh Python process (`bench_engine.py --case`), and prints the peak
RSS of the largest worker (``ru_maxrss`` of the ended children).

FOVs differ (cells, late cells), and so does the memory each needs, so every FOV is also run
alone in a fresh one-worker run: a worker that does not accumulate memory peaks at the
largest of its FOVs' own peaks, however many FOVs it runs.

    .venv/bin/python benchmarks/bench_memory.py [--size 2048] [--frames 60] [--workers 2]
        [--folder DIR]

Goal (issue 7): below 1.5 GB per worker, and the same for 4 and 16 FOVs (within 10 %).
`--folder` keeps the simulated file there for another round (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fovflow.io.synthetic import SimulationConfig, write_simulation

_ENGINE_BENCH = Path(__file__).with_name("bench_engine.py")
_GOAL_MB = 1500.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        folder = args.folder or Path(scratch)
        movie = folder / f"memory_{args.size}_{args.frames}.ome.tif"
        if not movie.exists():
            start = time.perf_counter()
            write_simulation(movie, SimulationConfig(
                n_fovs=16, n_frames=args.frames, height=args.size, width=args.size,
                cells_per_megapixel=90.0))
            print(f"simulated {movie.stat().st_size / 1e9:.1f} GB in "
                  f"{time.perf_counter() - start:.0f} s")
        rows = [_run(movie, Path(scratch) / f"out_{fovs}", fovs, args.workers) for fovs in (4, 16)]
        alone = [_run(movie, Path(scratch) / f"alone_{fov}", 1, 1, selection=str(fov))
                 for fov in range(16)]
    print(f"{args.size}x{args.size} x {args.frames} frames x 2 channels, process executor, "
          f"{args.workers} workers")
    print(f"{'FOVs':>5}{'wall s':>9}{'peak RSS per worker MB':>25}{'largest FOV alone MB':>23}")
    for fovs, row in zip((4, 16), rows, strict=True):
        own = max(run["peak_rss_mb"] for run in alone[:fovs])
        print(f"{fovs:>5}{row['wall']:>9.0f}{row['peak_rss_mb']:>25.0f}{own:>23.0f}")
    print("each FOV alone, MB: " + " ".join(f"{run['peak_rss_mb']:.0f}" for run in alone))
    small, large = rows[0]["peak_rss_mb"], rows[1]["peak_rss_mb"]
    print(f"16 vs 4 FOVs: {large / small - 1:+.1%} (goal within 10 %); largest "
          f"{max(small, large):.0f} MB (goal below {_GOAL_MB:.0f} MB)")


def _run(movie: Path, output: Path, fovs: int, workers: int,
         selection: str | None = None) -> dict[str, float]:
    case = {"input": str(movie), "output": str(output), "executor": "process",
            "workers": workers, "fovs": fovs, **({"selection": selection} if selection else {})}
    done = subprocess.run([sys.executable, str(_ENGINE_BENCH), "--case", json.dumps(case)],
                          capture_output=True, text=True, check=True)
    shutil.rmtree(output)  # 16 FOVs of outputs take ~20 GB
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
