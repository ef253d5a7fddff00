"""Real ND2 and CZI files through `fovflow inspect` and `fovflow run` (issue 21).

Looks for ``*.nd2`` and ``*.czi`` under a folder (the files that are GPL-licensed are not in
the repository: fetch them as benchmarks/RESULTS.md describes), skips byte-identical copies,
and for each file runs the commands a user would type: ``fovflow inspect FILE`` and
``fovflow run FILE -o OUT`` with ``--z max`` for a Z stack. Prints a Markdown table of the
outcomes (the first line of any error). Exits 0 when it has no folder.

    FOVFLOW_REAL_FORMATS=/work/data/nd2cz .venv/bin/python benchmarks/bench_real_formats.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FOVFLOW = Path(sys.executable).with_name("fovflow")
ENVIRONMENT_VARIABLE = "FOVFLOW_REAL_FORMATS"


@dataclass(frozen=True)
class Outcome:
    file: Path
    holds: str
    times: str
    command: str
    result: str
    seconds: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path,
                        default=os.environ.get(ENVIRONMENT_VARIABLE))
    args = parser.parse_args()
    if args.folder is None:
        print(f"no folder: give one or set {ENVIRONMENT_VARIABLE}; nothing measured")
        return
    files = unique_files(args.folder)
    print("| file | holds | times | command | outcome | s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for index, file in enumerate(files):
            outcome = try_file(file, Path(scratch) / f"run_{index}")
            print(f"| {file.name} | {outcome.holds} | {outcome.times} | `{outcome.command}` | "
                  f"{outcome.result} | {outcome.seconds:.1f} |", flush=True)


def unique_files(folder: Path) -> list[Path]:
    """ND2 and CZI files under `folder`, one of each set of byte-identical copies."""
    seen: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in (".nd2", ".czi") and path.is_file():
            seen.setdefault(hashlib.sha1(path.read_bytes()).hexdigest(), path)
    return sorted(seen.values(), key=lambda p: (p.suffix.lower(), p.name.lower()))


def try_file(file: Path, output: Path) -> Outcome:
    inspected = _fovflow("inspect", str(file), "--json")
    if inspected.returncode != 0:
        return Outcome(file, "-", "-", f"fovflow inspect {file.name}",
                       _first_error_line(inspected), 0.0)
    meta = json.loads(inspected.stdout)
    z_option = ["--z", "max"] if meta["n_z"] > 1 else []
    options = [*z_option, "--workers", "1"]
    start = time.perf_counter()
    ran = _fovflow("run", str(file), "-o", str(output), *options)
    seconds = time.perf_counter() - start
    result = "ok" if ran.returncode == 0 else _first_error_line(ran)
    if ran.returncode == 0:
        traces = sorted(output.glob("fov_*/traces_ch_*.csv"))
        result = f"ok: {len(traces)} traces tables"
    return Outcome(file, _holds(meta), _times(meta), " ".join(
        ["fovflow run", file.name, "-o OUT", *options]), result, seconds)


def _fovflow(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([str(FOVFLOW), *arguments], capture_output=True, text=True,
                          env=environment, check=False)


def _holds(meta: dict) -> str:
    sizes = {tuple(size) for size in meta["fov_sizes"]} or {(meta["height"], meta["width"])}
    size = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
    z = f" x {meta['n_z']} Z" if meta["n_z"] > 1 else ""
    channels = "/".join(meta["channel_names"])
    return (f"{meta['n_fovs']} FOV x {meta['n_frames']} T x {meta['n_channels']} C ({channels})"
            f"{z}, {size} {meta['dtype']}, {meta['pixel_size_um'] or 'no'} µm/px")


def _times(meta: dict) -> str:
    if meta["time_unit"] == "frame":
        return "none recorded"
    first = meta["times"][0]
    return ", ".join(f"{t:.2f}" for t in first[:3]) + (" ..." if len(first) > 3 else "") + " s"


def _first_error_line(process: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    text = lines[0] if lines else (process.stderr.strip().splitlines() or ["failed"])[-1]
    return text.replace("|", "/")


if __name__ == "__main__":
    main()
