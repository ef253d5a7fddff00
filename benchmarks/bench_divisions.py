"""Divisions, lineage and stage jumps: scores on simulated dividing cells, and their cost.

Usage::

    .venv/bin/python benchmarks/bench_divisions.py [--kind nuclei] [--method METHOD]
        [--size 512] [--frames 40] [--cycle 6] [--density 250] [--seeds 0,1]
        [--param KEY=VALUE ...] [--track-param KEY=VALUE ...] [--timing-size 1024]
        [--no-timing]

Per seed, a FOV of the `--kind` of simulated cells (``nuclei``: fluorescent nuclei, segmented
by the ``fluorescence`` method; ``small``, ``crowded``: phase contrast, by ``phase``; ``bacteria``:
by ``bacteria``; `--method` chooses another), `--density` cells per megapixel at first (nuclei:
250, so the doubled population still has room; the other kinds: their own default), whose cells
divide about once per `--cycle` hours over a movie of `--frames` frames 10 minutes apart, once
as is and once with a stage jump of a cell's diameter at the middle frame, is segmented
(`segment_cells`, diameter ``auto``, `--param` keywords) and tracked (`track_cells` with the
tracking that suits the segmentation, `suited_tracking`, and the `--track-param` keywords over
it: ``tracked``; with divisions and drift off: ``off``), and the true labels are tracked the
same way (``truth``: what tracking does with a perfect segmentation). Reported against the true
labels and lineage (every true cell of at least 30 px, or of a fifth of a cell of the kind's
radius where that is less): division recall and precision (`fovflow.evaluation.divisions`, one
frame of tolerance, the divisions whose mother and two daughters the truth shows),
py-ctcmetrics DET, TRA, BC(0), CT (`fovflow.evaluation.ctc`), and where the true divisions the
tracking missed were lost: ``seg`` counts those whose mother (last frame) or a daughter (first
frame) the tracked labels (the segmentation after tracking's own splits and joins, e.g.
``split_merged``, ``rejoin_pieces``, ``split_joined_daughters``) do not hold at IoU > 0.5 (and
why: the mother missed, a daughter missed or one region with her sister or with another cell),
``track`` the others.

Timing: `track_cells` per frame on the segmented labels of a `--timing-size` FOV, with the
tracking above (``on``), with ``divisions=False, drift=False`` over it (``off``) and with each
alone, best of 7 rounds that run all four in turn, on one core.
"""

from __future__ import annotations

from one_thread import limit_threads

limit_threads()

import argparse  # noqa: E402 - thread limits must be set before numpy is imported
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from fovflow.evaluation.ctc import ctc_scores  # noqa: E402
from fovflow.evaluation.divisions import score_divisions, visible_lineage  # noqa: E402
from fovflow.evaluation.scores import Matches, score_labels  # noqa: E402
from fovflow.io.ctc import SmallCellsRemoved  # noqa: E402
from fovflow.io.synthetic import SimulatedFov, SimulationConfig, simulate_fov  # noqa: E402
from fovflow.processing.lineage import Lineage  # noqa: E402
from fovflow.processing.segmentation import segment_cells, suited_tracking  # noqa: E402
from fovflow.processing.tracking import track_cells  # noqa: E402

# px: border slivers below this are left out of the truth, or below this share of a cell of
# the kind's radius (small round cells' daughters measure 18-29 px)
MIN_TRUE_AREA = 30
MIN_TRUE_SHARE = 0.2
OFF = {"divisions": False, "drift": False}
METHOD_OF_KIND = {"nuclei": "fluorescence", "small": "phase", "crowded": "phase",
                  "bacteria": "bacteria"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="nuclei", choices=sorted(METHOD_OF_KIND))
    parser.add_argument("--method", help="segmentation method (default: the kind's)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--cycle", type=float, default=6.0, help="cell-cycle time, hours")
    parser.add_argument("--density", type=float,
                        help="cells per megapixel at frame 0 (they double by the end; "
                             "default: 250 nuclei, the kind's own for the others)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--param", action="append", default=[], type=_key_value,
                        metavar="KEY=VALUE", help="segmentation keyword (repeatable)")
    parser.add_argument("--track-param", action="append", default=[], type=_key_value,
                        metavar="KEY=VALUE", help="tracking keyword (repeatable)")
    parser.add_argument("--timing-size", type=int, default=1024)
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    method = args.method or METHOD_OF_KIND[args.kind]
    density = args.density if args.density or args.kind != "nuclei" else 250.0
    segmentation = {"method": method, **dict(args.param)}
    # Tracked as a run would: the defaults that suit the labels, under --track-param.
    tracking = {**suited_tracking(method, dict(args.param)), **dict(args.track_param)}
    print(f"kind {args.kind}, segmentation {segmentation}, tracking {tracking or 'defaults'}")
    print(f"{'seed':>4} {'jump':>5} {'labels':<8} {'divisions':>9} {'recall':>6} "
          f"{'precision':>9} {'DET':>6} {'TRA':>6} {'BC(0)':>6} {'CT':>6} {'lost seg':>8} "
          f"{'track':>5}")
    for seed in map(int, args.seeds.split(",")):
        for jump in (None, args.frames // 2):
            config = SimulationConfig(n_fovs=1, n_frames=args.frames, height=args.size,
                                      width=args.size, kind=args.kind, cell_cycle_h=args.cycle,
                                      cells_per_megapixel=density, stage_jump_frame=jump,
                                      seed=seed)
            sim = simulate_fov(config, 0)
            smallest = min(MIN_TRUE_AREA, round(MIN_TRUE_SHARE * np.pi
                                                * config.effective_cell_radius_px**2))
            truth = np.stack([SmallCellsRemoved(sim.labels, smallest)[t]
                              for t in range(len(sim.labels))])
            segmented = np.asarray(segment_cells(sim.phase, **segmentation))
            for name, labels, keywords in (("tracked", segmented, tracking),
                                           ("off", segmented, OFF),
                                           ("truth", truth, tracking)):
                print(f"{seed:>4} {jump!s:>5} {name:<8} "
                      + _scores(sim, truth, labels, keywords), flush=True)
    if not args.no_timing:
        _timing(args.timing_size, args.frames, args.cycle, args.kind, density, segmentation,
                tracking)


def _scores(sim: SimulatedFov, truth: np.ndarray, labels: np.ndarray,
            keywords: dict[str, Any]) -> str:
    tracking = track_cells(labels, **keywords)
    _, matches = score_labels(truth, tracking.labels)  # also: which true cells they hold
    divisions = score_divisions(visible_lineage(sim.lineage, truth), tracking.lineage, matches)
    ctc = ctc_scores(truth, tracking.labels, truth_lineage=sim.lineage,
                     predicted_lineage=tracking.lineage)
    why = _lost_in_segmentation(visible_lineage(sim.lineage, truth), truth,
                                np.asarray(tracking.labels), matches)
    lost, missed = sum(why.values()), divisions.n_true - divisions.n_found
    return (f"{divisions.n_true:>9} {divisions.recall:>6.3f} {divisions.precision:>9.3f} "
            f"{ctc['DET']:>6.3f} {ctc['TRA']:>6.3f} {ctc['BC(0)']:>6.3f} {ctc['CT']:>6.3f} "
            f"{min(lost, missed):>8} {max(missed - lost, 0):>5}  "
            + ", ".join(f"{reason} {n}" for reason, n in why.most_common()))


def _lost_in_segmentation(lineage: Lineage, truth: np.ndarray, labels: np.ndarray,
                          segmented: Matches) -> Counter[str]:
    """Why the true divisions whose mother in her last frame or a daughter in her first frame
    the labels do not hold (IoU > 0.5) are lost, by the first such cell: the mother
    ``missed``; a daughter ``with sister`` (one region with her sister), ``with other`` (one
    region with another cell) or ``missed`` (no region covers half of her). With these
    labels no tracking can have found those divisions."""
    present = set(zip(segmented.frame.tolist(), segmented.truth_id.tolist(), strict=True))
    last = dict(zip(lineage.track.tolist(), lineage.last_frame.tolist(), strict=True))
    why: Counter[str] = Counter()
    for mother in np.unique(lineage.parent[lineage.parent > 0]).tolist():
        daughters = lineage.parent == mother
        if mother not in last or daughters.sum() < 2:
            continue
        if (last[mother], mother) not in present:
            why["mother missed"] += 1
            continue
        sisters = set(lineage.track[daughters].tolist())
        for frame, daughter in zip(lineage.first_frame[daughters].tolist(),
                                   lineage.track[daughters].tolist(), strict=True):
            if (frame, daughter) not in present:
                why["daughter " + _fate(truth[frame], labels[frame], daughter, sisters)] += 1
                break
    return why


def _fate(truth: np.ndarray, labels: np.ndarray, cell: int, sisters: set[int]) -> str:
    """What the labels made of a true cell they do not hold."""
    under = np.bincount(labels[truth == cell])
    region = int(under[1:].argmax()) + 1 if len(under) > 1 else 0
    if not region or under[region] * 2 < under.sum():
        return "missed"
    inside = set(np.unique(truth[labels == region]).tolist()) - {0}
    return "with sister" if sisters <= inside else "with other"


def _timing(size: int, n_frames: int, cycle: float, kind: str, density: float | None,
            segmentation: dict[str, Any], tracking: dict[str, Any]) -> None:
    config = SimulationConfig(n_fovs=1, n_frames=n_frames, height=size, width=size,
                              kind=kind, cell_cycle_h=cycle, cells_per_megapixel=density,
                              seed=0)
    segmented = np.asarray(segment_cells(simulate_fov(config, 0).phase, **segmentation))
    n_cells = np.mean([len(np.unique(frame)) - 1 for frame in segmented])
    out = np.empty(segmented.shape, np.uint32)
    variants = {"on": tracking, "off": {**tracking, **OFF},
                "divisions only": {**tracking, "drift": False},
                "drift only": {**tracking, "divisions": False}}
    times = dict.fromkeys(variants, float("inf"))
    for _ in range(7):  # rounds of all four, so a busy moment of the machine hits each alike
        for name, keywords in variants.items():
            start = time.perf_counter()
            track_cells(segmented, out=out, **keywords)
            times[name] = min(times[name], 1000 * (time.perf_counter() - start) / n_frames)
    print(f"\ntracking {size}x{size}, {n_cells:.0f} cells per frame, ms per frame: "
          + ", ".join(f"{name} {ms:.2f}" for name, ms in times.items())
          + f"; divisions and drift cost {100 * (times['on'] / times['off'] - 1):.1f} %")


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, yaml.safe_load(value)


if __name__ == "__main__":
    main()
