"""`write_qc_report`: read a run folder, compute its QC numbers, write ``report.html``.

The page is self-contained (pictures embedded); with ``save_pngs`` the same pictures are also
written beside it, in ``<page name>_files/``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fovflow.analysis.qc import (
    FitQc,
    FovQc,
    assess_fov,
    measure_frames,
    summarise_fits,
)
from fovflow.analysis.qc_figures import Thumbnail, fov_plots_png, thumbnails_png
from fovflow.analysis.qc_page import FovSection, render_page
from fovflow.io.frames import Frames
from fovflow.io.layout import MASKS, PHASE, REPORT_NAME, open_stack
from fovflow.io.run_contents import RunContents, fov_shifts, fov_traces, open_run
from fovflow.io.store import write_text_atomically
from fovflow.io.tables import read_fitted_table


@dataclass(frozen=True)
class QcReport:
    """What `write_qc_report` wrote and found."""

    page: Path
    pngs: tuple[Path, ...]
    fovs: tuple[FovQc, ...]
    fits: tuple[FitQc, ...]
    in_progress: bool


def write_qc_report(run_dir: str | Path, output: str | Path | None = None, *,
                    save_pngs: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> QcReport:
    """Write the QC page of the run folder `run_dir` (default ``run_dir/report.html``).

    Parameters
    ----------
    run_dir
        A folder `fovflow run -o` wrote; a run may still be writing it.
    output
        The page to write.
    save_pngs
        Also write the pictures as PNG files in ``<page stem>_files/`` beside the page.
    progress
        Called with (FOVs done, FOVs) after every FOV.

    Raises
    ------
    FovflowError
        If `run_dir` is not a run folder, holds no FOV yet, or a table in it is damaged.

    Notes
    -----
    Reads every phase-contrast frame once (O(pixels) per frame for its statistics), and the
    segmentation of three frames per FOV.
    """
    run = open_run(run_dir)
    page = Path(output) if output is not None else run.folder / REPORT_NAME
    sections = []
    for done, record in enumerate(run.fovs, 1):
        sections.append(_fov_section(run, record.fov, record.status, record.error,
                                     record.step_seconds))
        if progress is not None:
            progress(done, len(run.fovs))
    fits = tuple(summarise_fits(path.stem, read_fitted_table(path)[0])
                 for path in run.fitted_tables)
    generated = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")

    def render(written: str) -> str:
        return render_page(folder=str(run.folder), input_path=run.input_path,
                           generated=written, sections=sections, fits=fits,
                           in_progress=run.lock_holder,
                           run_problems=run.log_problems.get(None, ()))

    page.parent.mkdir(parents=True, exist_ok=True)
    if not _same_but_for_the_time(page, render):  # a rerun that changed nothing keeps the page
        write_text_atomically(page, render(generated))
    pngs = _write_pngs(page, sections) if save_pngs else ()
    return QcReport(page, pngs, tuple(section.qc for section in sections), fits,
                    run.lock_holder is not None)


def _same_but_for_the_time(page: Path, render: Callable[[str], str]) -> bool:
    """Whether the page there shows the same as `render` would, except when it was written."""
    before, after = render("\0").split("\0")
    try:
        old = page.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # none yet, or not a page of ours
        return False
    middle = old[len(before):len(old) - len(after)]
    return (len(old) >= len(before) + len(after) and old.startswith(before)
            and old.endswith(after) and "<" not in middle)


def _fov_section(run: RunContents, fov: int, status: str, error: str | None,
                 step_seconds: dict[str, float]) -> FovSection:
    phase = open_stack(run.folder, fov, PHASE)
    statistics = measure_frames(phase) if phase is not None else None
    found = fov_traces(run.folder, fov)
    traces, has_lineage = found if found is not None else (None, False)
    n_frames = len(phase) if phase is not None else int(
        (run.manifest.get("input") or {}).get("n_frames", 0))
    if traces is not None and len(traces):
        n_frames = max(n_frames, int(traces["frame"].max()) + 1)
    qc = assess_fov(fov, status=status, error=error, traces=traces, has_lineage=has_lineage,
                    statistics=statistics, n_frames=n_frames, step_seconds=step_seconds,
                    shifts=fov_shifts(run.folder, fov),
                    log_problems=run.log_problems.get(fov, ()))
    return FovSection(qc, fov_plots_png(qc, statistics), _thumbnails(run, fov, phase))


def _thumbnails(run: RunContents, fov: int, phase: Frames | None) -> bytes | None:
    """The first, middle and last frame with the outlines of their segmented cells."""
    if phase is None or not len(phase):
        return None
    segmented = open_stack(run.folder, fov, MASKS)
    chosen = sorted({0, len(phase) // 2, len(phase) - 1})
    return thumbnails_png([Thumbnail(t, phase[t], segmented[t] if segmented is not None else None)
                           for t in chosen])


def _write_pngs(page: Path, sections: list[FovSection]) -> tuple[Path, ...]:
    folder = page.with_name(f"{page.stem}_files")
    folder.mkdir(exist_ok=True)
    written = []
    for section in sections:
        pictures = {"plots": section.plots_png, "frames": section.thumbnails_png}
        for kind, png in pictures.items():
            if png is not None:
                path = folder / f"fov_{section.qc.fov:03d}_{kind}.png"
                path.write_bytes(png)
                written.append(path)
    return tuple(written)
