"""Engine scaling, overhead and memory on simulated data.

For each case a fresh Python process runs `run_workflow` on a simulated file and reports the
wall time, the sum of the steps' own times (from the manifest) and the peak RSS of the
largest worker process (``ru_maxrss`` of the ended children; the caller's own for serial).

    .venv/bin/python benchmarks/bench_engine.py [--size 1024] [--frames 30] [--fovs 8]
        [--repeats 5]

- scaling: process executor with 1 and 2 workers (goal: speedup >= 1.8x on 2 cores), run
  `--repeats` times alternately, as one run of ~20 s varies by up to 16 %: the table shows
  the median run of each case, and the speedups of each 1-and-2-worker pair are listed;
  thread and dask with 2 workers, once each, for comparison;
- overhead: wall time x workers minus the steps' time, over wall time x workers;
- memory: peak worker RSS for 4 and 16 FOVs (goal: equal within 10 %), also run `--repeats`
  times alternately, as one peak varies by up to 15 %: every pair is listed;
- cancel latency: time from `cancel()` to `run_workflow` returning, at 10 points spread over
  a run, counted from the first frame processed (goal: median <= 1 s).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from fovflow.io.synthetic import SimulationConfig, write_simulation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--fovs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_run_case(json.loads(args.case))))
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        movie = write_simulation(root / "bench.ome.tif", SimulationConfig(
            n_fovs=max(16, args.fovs), n_frames=args.frames, height=args.size, width=args.size,
            cells_per_megapixel=90.0)).image
        pairs = [("process", 1, args.fovs), ("process", 2, args.fovs)] * args.repeats
        memory_pairs = [("process", 2, 4), ("process", 2, 16)] * args.repeats
        cases = [*pairs, ("thread", 2, args.fovs), ("dask", 2, args.fovs), *memory_pairs]
        runs = []
        for index, (kind, workers, fovs) in enumerate(cases):
            case = {"input": str(movie), "output": str(root / f"out_{index}"), "executor": kind,
                    "workers": workers, "fovs": fovs}
            done = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)],
                                  capture_output=True, text=True, check=True)
            runs.append({**case, **json.loads(done.stdout.strip().splitlines()[-1])})
            shutil.rmtree(case["output"])  # 2048x2048 runs write ~5 GB each
        latencies = [_cancel_latency(movie, root / f"cancel_{i}", delay=0.5 + 0.6 * i)
                     for i in range(10)]
    results = _median_runs(runs)
    print(f"{args.fovs} FOVs x {args.frames} frames x {args.size}x{args.size}, 2 channels")
    print(f"{'executor':<9}{'workers':>8}{'FOVs':>6}{'wall s':>9}{'steps s':>9}"
          f"{'overhead':>10}{'speedup':>9}{'peak RSS MB':>13}")
    base = next(r["wall"] for r in results if r["executor"] == "process" and r["workers"] == 1)
    for r in results:
        overhead = (r["wall"] * r["workers"] - r["steps"]) / (r["wall"] * r["workers"])
        speedup = f"{base / r['wall']:.2f}x" if r["fovs"] == args.fovs else ""
        print(f"{r['executor']:<9}{r['workers']:>8}{r['fovs']:>6}{r['wall']:>9.1f}"
              f"{r['steps']:>9.1f}{overhead:>9.1%}{speedup:>9}{r['peak_rss_mb']:>13.0f}")
    walls = [r["wall"] for r in runs[:len(pairs)]]
    print("each pair, wall s with 1 and 2 process workers: " + ", ".join(
        f"{one:.1f}/{two:.1f} = {one / two:.2f}x"
        for one, two in zip(walls[::2], walls[1::2], strict=True)))
    peaks = [r["peak_rss_mb"] for r in runs[-len(memory_pairs):]]
    print("each pair, peak worker RSS MB with 4 and 16 FOVs: " + ", ".join(
        f"{four:.0f}/{sixteen:.0f} = {sixteen / four - 1:+.1%}"
        for four, sixteen in zip(peaks[::2], peaks[1::2], strict=True)))
    ordered = sorted(latencies)
    print(f"cancel latency over {len(ordered)} runs: median {statistics.median(ordered):.2f} s, "
          f"max {ordered[-1]:.2f} s")


def _median_runs(runs: list[dict]) -> list[dict]:
    """One run per case (executor, workers, FOVs): the one with the median wall time."""
    cases: dict[tuple, list[dict]] = {}
    for run in runs:
        cases.setdefault((run["executor"], run["workers"], run["fovs"]), []).append(run)
    return [sorted(same, key=lambda r: r["wall"])[len(same) // 2] for same in cases.values()]


def _cancel_latency(movie: Path, output: Path, *, delay: float) -> float:
    """Seconds from cancel() to run_workflow returning, `delay` s after the first frame."""
    import threading

    from fovflow.execution import CancelToken
    from fovflow.workflow.config import WorkflowConfig
    from fovflow.workflow.events import StepProgress
    from fovflow.workflow.run import run_workflow

    token, started, cancelled_at = CancelToken(), threading.Event(), []

    def on_event(event: object) -> None:
        if isinstance(event, StepProgress):
            started.set()

    def cancel_later() -> None:
        started.wait()
        time.sleep(delay)
        cancelled_at.append(time.perf_counter())
        token.cancel()

    threading.Thread(target=cancel_later, daemon=True).start()
    run_workflow(WorkflowConfig(input=movie, output=output, n_workers=2), on_event=on_event,
                 cancel=token)
    return time.perf_counter() - cancelled_at[0] if cancelled_at else float("nan")


def _run_case(case: dict) -> dict:
    from fovflow.workflow.config import WorkflowConfig
    from fovflow.workflow.run import run_workflow

    config = WorkflowConfig(input=case["input"], output=case["output"],
                            executor=case["executor"], n_workers=case["workers"],
                            fovs=case.get("selection", f"0-{case['fovs'] - 1}"),
                            extraction={"min_length": 5})
    start = time.perf_counter()
    report = run_workflow(config)
    wall = time.perf_counter() - start
    assert report.ok, report
    manifest = yaml.safe_load((Path(case["output"]) / "processing_results.yaml").read_text())
    steps = sum(step["seconds"] for fov in manifest["fovs"].values()
                for step in fov["steps"].values())
    who = resource.RUSAGE_SELF if case["executor"] in ("thread",) else resource.RUSAGE_CHILDREN
    peak_kb = resource.getrusage(who).ru_maxrss
    return {"wall": wall, "steps": steps, "peak_rss_mb": peak_kb / 1024}


if __name__ == "__main__":
    main()
