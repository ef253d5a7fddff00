"""The QC numbers of a run (pure functions) and the page `write_qc_report` writes from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fovflow.analysis.qc import (
    FovQc,
    FrameStatistics,
    assess_fov,
    flag_frames,
    lost_track_fraction,
    problems_first,
    summarise_fits,
)
from fovflow.analysis.qc_report import write_qc_report
from fovflow.errors import ConfigError, FovflowError, MissingFileError


def _traces(spans: dict[int, range], parents: dict[int, int] | None = None) -> pd.DataFrame:
    """A traces table: each cell present in the frames of its span, all good."""
    parents = parents or {}
    rows = [{"fov": 0, "cell": cell, "frame": frame, "good": True,
             "parent": parents.get(cell, 0)} for cell, frames in spans.items()
            for frame in frames]
    return pd.DataFrame(rows)


def _steady(n_frames: int, level: float, seed: int) -> np.ndarray:
    return level * (1 + 0.01 * np.random.default_rng(seed).standard_normal(n_frames))


def test_an_empty_dark_frame_is_flagged_and_no_other() -> None:
    counts = np.full(20, 10)
    counts[7] = 0
    mean, focus = _steady(20, 100.0, 0), _steady(20, 50.0, 1)
    mean[7], focus[7] = 0.0, 0.0
    flags = flag_frames(counts, FrameStatistics(mean, focus), np.zeros(20))
    assert [flag.frame for flag in flags] == [7]
    reasons = " ".join(flags[0].reasons)
    assert "no cells" in reasons
    assert "mean intensity off trend (low" in reasons
    assert "focus off trend (low" in reasons


def test_a_steady_noisy_fov_has_no_flagged_frame() -> None:
    counts = 10 + np.random.default_rng(2).integers(-1, 2, 40)
    statistics = FrameStatistics(_steady(40, 100.0, 3), _steady(40, 50.0, 4))
    assert flag_frames(counts, statistics, np.zeros(40)) == ()


def test_a_stage_jump_shows_as_the_frame_where_most_cells_lose_their_track() -> None:
    before = {cell: range(10) for cell in range(1, 6)}
    after = {cell: range(10, 20) for cell in range(6, 11)}
    traces = _traces(before | after)
    lost = lost_track_fraction(traces, 20)
    assert lost[10] == 1.0 and np.count_nonzero(lost) == 1
    qc = assess_fov(0, status="done", traces=traces, has_lineage=False, statistics=None,
                    n_frames=20)
    assert [flag.frame for flag in qc.flags] == [10]
    assert "lost their track" in qc.flags[0].reasons[0]


def test_divisions_are_counted_from_parents_and_unknown_without_lineage() -> None:
    traces = _traces({1: range(5), 2: range(5, 10), 3: range(5, 10), 4: range(10)},
                     parents={2: 1, 3: 1})
    with_lineage = assess_fov(0, status="done", traces=traces, has_lineage=True,
                              statistics=None, n_frames=10)
    assert with_lineage.divisions == 1
    assert with_lineage.track_lengths.tolist() == [5, 5, 5, 10]
    assert with_lineage.cells_per_frame.tolist() == [2] * 5 + [3] * 5
    assert assess_fov(0, status="done", traces=traces, has_lineage=False, statistics=None,
                      n_frames=10).divisions is None


def test_short_fragments_do_not_make_a_fov_whose_cells_are_followed_a_problem() -> None:
    # Four cells followed through 40 frames, and ten one-frame fragments of a dim cell.
    spans = {cell: range(40) for cell in range(1, 5)} | {
        cell: range(cell, cell + 1) for cell in range(5, 15)}
    traces = _traces(spans)
    traces["good"] = traces["cell"] <= 4
    qc = assess_fov(0, status="done", traces=traces, has_lineage=False, statistics=None,
                    n_frames=40)
    assert (qc.good_tracks, qc.track_lengths.size) == (4, 14)
    assert qc.good_fraction == pytest.approx(160 / 170)
    assert qc.problems == []
    traces["good"] = traces["cell"] == 1  # three of the four lost: a problem
    qc = assess_fov(0, status="done", traces=traces, has_lineage=False, statistics=None,
                    n_frames=40)
    assert qc.problems == ["good tracks hold only 24% of the cell-frames"]


def test_a_fov_without_traces_reports_no_cells_and_its_failure() -> None:
    qc = assess_fov(4, status="failed", error="out of memory", traces=None, has_lineage=False,
                    statistics=None, n_frames=5)
    assert qc.problems == ["status failed: out of memory", "no cells"]


def test_failed_fits_do_not_pass_the_r_squared_threshold() -> None:
    fitted = pd.DataFrame({"success": [True, True, True, False],
                           "r_squared": [0.99, 0.95, 0.5, 0.99]})
    fits = summarise_fits("a_fitted_maturation", fitted)
    assert (fits.n_cells, fits.success_fraction, fits.r_squared_pass_fraction) == (4, 0.75, 0.5)
    assert fits.median_r_squared == pytest.approx(0.95)


def test_fovs_are_ordered_failed_first_then_by_number_of_problems() -> None:
    def fov(number: int, status: str, counts: list[int]) -> FovQc:
        return FovQc(fov=number, status=status, error=None,
                     cells_per_frame=np.array(counts), track_lengths=np.array([len(counts)]),
                     good_tracks=1, good_fraction=1.0, divisions=None, flags=())

    order = problems_first([fov(0, "done", [3, 3]), fov(1, "done", [0, 0]),
                            fov(2, "failed", [3, 3]), fov(3, "done", [3, 3])])
    assert [qc.fov for qc in order] == [2, 1, 0, 3]


def test_a_traces_only_run_gets_a_page_naming_every_fov(run_dir: Path) -> None:
    report = write_qc_report(run_dir, save_pngs=True)
    page = report.page.read_text(encoding="utf-8")
    assert report.page == run_dir / "report.html"
    for fov in ("fov_000", "fov_001", "fov_002"):
        assert f"id='{fov}'" in page
    assert "no lineage in the traces" in page  # these traces have no parent column
    assert "No fitted tables" in page
    assert sorted(path.name for path in report.pngs) == [
        f"fov_00{fov}_plots.png" for fov in range(3)]  # no frames: no thumbnails


def test_fit_results_are_shown_with_their_r_squared_pass_rate(run_dir: Path) -> None:
    samples = run_dir / "samples"
    samples.mkdir()
    (samples / "a_intensity_total_ch_1_fitted_trivial.csv").write_text(
        '# Fit: {"model": "trivial"}\nfov,cell,model,success,r_squared,rmse\n'
        "0,1,trivial,True,0.99,1\n0,2,trivial,True,0.4,1\n")
    report = write_qc_report(run_dir)
    assert [(fit.name, fit.r_squared_pass_fraction) for fit in report.fits] == [
        ("a_intensity_total_ch_1_fitted_trivial", 0.5)]
    assert "a_intensity_total_ch_1_fitted_trivial" in report.page.read_text(encoding="utf-8")


def test_a_run_in_progress_is_reported_with_what_exists(run_dir: Path) -> None:
    (run_dir / "run.lock").write_text("pid 12 on host since today: fovflow run")
    report = write_qc_report(run_dir)
    assert report.in_progress
    assert "still writing this folder (pid 12" in report.page.read_text(encoding="utf-8")


def test_a_folder_without_manifest_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a run folder"):
        write_qc_report(tmp_path)
    with pytest.raises(MissingFileError, match="no such folder"):
        write_qc_report(tmp_path / "missing")


def test_a_run_without_fovs_is_refused_and_says_a_run_is_writing(tmp_path: Path) -> None:
    (tmp_path / "processing_results.yaml").write_text("format: 1\nfovs: {}\n")
    with pytest.raises(FovflowError, match=r"holds no FOV yet$"):
        write_qc_report(tmp_path)
    (tmp_path / "run.lock").write_text("pid 7")
    with pytest.raises(FovflowError, match=r"still writing it \(pid 7\)"):
        write_qc_report(tmp_path)


def test_a_stage_jump_tracking_undid_is_still_reported() -> None:
    shifts = np.zeros((12, 2))
    shifts[6] = (3.0, -40.0)
    shifts[3] = (1.0, 2.0)  # the usual drift
    flags = flag_frames(np.full(12, 5), FrameStatistics(_steady(12, 100.0, 5),
                                                         _steady(12, 50.0, 6)),
                        np.zeros(12), shifts=shifts)
    assert [(flag.frame, flag.reasons) for flag in flags] == [
        (6, ("stage moved 40 px (tracking undid it)",))]
