"""Blosc settings for stored camera frames, on real recordings: size and speed.

Usage::

    .venv/bin/python benchmarks/bench_codecs.py DATA_DIR [--frames N] [--demo FILE]

``DATA_DIR`` holds the data sets of `bench_real.py` (the first `--frames` frames of each, or
of each Usiigaci set); ``--demo`` adds the simulated OME-TIFF of ``make demo``. Prints, per
data set and setting, the encoded size over the raw bytes and the encode / decode time in ms
per megapixel (best of 3 rounds, one thread: run it under ``taskset -c 0``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
from numcodecs import Blosc, blosc
from numpy.typing import NDArray

from one_thread import limit_threads
from real_data import C2C12_FILE, CTC_ROOT, ECOLI_ROOT, USIIGACI_ROOT

SETTINGS = (("lz4", 5, Blosc.BITSHUFFLE), ("zstd", 1, Blosc.SHUFFLE),
            ("zstd", 1, Blosc.BITSHUFFLE), ("zstd", 3, Blosc.SHUFFLE))


def recordings(data_dir: Path, frames: int, demo: Path | None) -> dict[str, NDArray]:
    """Name -> (T, Y, X) frames of each real recording (and the demo's first channel)."""
    def ctc(folder: str) -> NDArray:
        paths = sorted((data_dir / CTC_ROOT / folder / "01").glob("t*.tif"))[:frames]
        return np.stack([tifffile.imread(path) for path in paths])

    found = {
        "GOWT1 (fluorescence, uint8)": ctc("Fluo-N2DH-GOWT1"),
        "MSC (fluorescence, uint16)": ctc("Fluo-C2DL-MSC"),
        "SIM+ (fluorescence, uint16)": ctc("Fluo-N2DH-SIM+"),
        "Usiigaci (phase, uint16)": np.stack([
            tifffile.imread(data_dir / USIIGACI_ROOT / f"set{number}" / "raw.tif")
            for number in range(1, frames + 1)]),
        "E. coli (phase, uint16)": tifffile.imread(
            data_dir / ECOLI_ROOT / "trpL_150310-11_img.tif")[:frames],
    }
    with np.load(data_dir / C2C12_FILE) as data:
        found["C2C12 (phase, uint8)"] = data["images"][:frames]
    if demo is not None:
        found["demo (simulated, uint16)"] = tifffile.imread(demo, key=range(0, 2 * frames, 2))
    return found


def measure(frames: NDArray, cname: str, level: int, shuffle: int) -> tuple[float, float, float]:
    """Size ratio, encode and decode ms per megapixel (best of 3)."""
    codec = Blosc(cname=cname, clevel=level, shuffle=shuffle)
    frames = [np.ascontiguousarray(frame) for frame in frames]
    encode = decode = np.inf
    for _ in range(3):
        start = time.perf_counter()
        encoded = [codec.encode(frame) for frame in frames]
        encode = min(encode, time.perf_counter() - start)
        start = time.perf_counter()
        for chunk in encoded:
            codec.decode(chunk)
        decode = min(decode, time.perf_counter() - start)
    megapixels = sum(frame.size for frame in frames) / 1e6
    ratio = sum(map(len, encoded)) / sum(frame.nbytes for frame in frames)
    return ratio, 1e3 * encode / megapixels, 1e3 * decode / megapixels


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--demo", type=Path)
    args = parser.parse_args(argv)
    limit_threads()
    blosc.use_threads = False  # one core, as a worker encodes
    names = [f"{cname} {level}, {'bit' if shuffle == Blosc.BITSHUFFLE else 'byte'} shuffle"
             for cname, level, shuffle in SETTINGS]
    print("| data | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for name, frames in recordings(args.data_dir, args.frames, args.demo).items():
        cells = [measure(frames, *setting) for setting in SETTINGS]
        print(f"| {name} | " + " | ".join(f"{ratio:.3f} ({encode:.1f} / {decode:.1f})"
                                          for ratio, encode, decode in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
