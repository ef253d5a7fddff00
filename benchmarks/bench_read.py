"""Frames per second of `Dataset.frame` against tifffile reading the same pages directly.

Writes a simulated 2048x2048 uint16 OME-TIFF (2 FOVs x 10 frames x 2 channels, 320 MB) into a
temporary folder, warms the page cache, then reads every plane three times with each reader
and reports the median rate. bioio's own per-frame path is measured too, for context.

    .venv/bin/python benchmarks/bench_read.py [--size 2048] [--frames 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile

from fovflow.io.microscopy import open_dataset
from fovflow.io.synthetic import SimulationConfig, write_simulation

Plane = tuple[int, int, int]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = SimulationConfig(n_fovs=2, n_frames=args.frames, height=args.size, width=args.size)
    with tempfile.TemporaryDirectory() as folder:
        path = write_simulation(Path(folder) / "bench.ome.tif", config).image
        planes = [(f, c, t) for f in range(2) for t in range(args.frames) for c in range(2)]
        path.read_bytes()  # warm the page cache so every reader sees the same storage

        with tifffile.TiffFile(path) as tif:
            pages = [tif.series[f].pages[t * 2 + c] for f, c, t in planes]
            direct = _rate(lambda i, _: pages[i].asarray(), planes, args.rounds)

        dataset = open_dataset(path)
        fovflow = _rate(lambda _, p: dataset.frame(*p), planes, args.rounds)
        reference = dataset.frame(1, 1, args.frames - 1)
        dataset.close()

        from bioio import BioImage

        image = BioImage(path)

        def bioio_frame(_: int, plane: Plane) -> np.ndarray:
            image.set_scene(plane[0])
            return image.get_image_dask_data("YX", T=plane[2], C=plane[1], Z=0).compute()

        via_bioio = _rate(bioio_frame, planes, 1)
        assert np.array_equal(bioio_frame(0, (1, 1, args.frames - 1)), reference)

    print(f"{len(planes)} planes of {args.size}x{args.size} uint16, median of {args.rounds} rounds")
    print(f"{'reader':<34}{'frames/s':>10}{'ms/frame':>10}{'vs tifffile':>13}")
    for name, rate in [("tifffile pages[i].asarray()", direct),
                       ("fovflow Dataset.frame()", fovflow),
                       ("bioio get_image_dask_data (1 round)", via_bioio)]:
        print(f"{name:<34}{rate:>10.1f}{1000 / rate:>10.2f}{direct / rate:>12.2f}x")


def _rate(read: Callable[[int, Plane], np.ndarray], planes: list[Plane], rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for index, plane in enumerate(planes):
            read(index, plane)
        rates.append(len(planes) / (time.perf_counter() - start))
    return statistics.median(rates)


if __name__ == "__main__":
    main()
