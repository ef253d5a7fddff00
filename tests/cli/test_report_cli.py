"""`fovflow report`: the QC page of a real (small, simulated) run, and its one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import zarr

from cli_assertions import assert_one_line_error, fovflow
from fovflow.io.layout import IMAGE_NAME


def test_report_names_every_fov_and_flags_a_dark_frame(small_image: Path,
                                                       tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ran = fovflow("run", small_image, "-o", run_dir, "--pc", "0", "--fl", "1",
                  "--min-length", "3", "--executor", "serial")
    assert ran.exit_code == 0, ran.stderr
    assert f"QC report: {run_dir / 'report.html'}" in ran.stdout  # every run writes its page
    assert "fov_002" in (run_dir / "report.html").read_text(encoding="utf-8")
    image = zarr.open_array(run_dir / "fov_001" / IMAGE_NAME / "0", mode="r+")
    image[4, 0] = 0  # the lamp failed in one frame (of the phase channel, channel 0)

    result = fovflow("report", run_dir, "-o", tmp_path / "qc.html", "--pngs")

    assert result.exit_code == 0, result.stderr
    assert re.search(r"3 FOVs, \d with problems", result.stdout)
    page = (tmp_path / "qc.html").read_text(encoding="utf-8")
    assert [fov for fov in ("fov_000", "fov_001", "fov_002") if f"id='{fov}'" in page] == [
        "fov_000", "fov_001", "fov_002"]
    assert "<tr class='bad'><td><a href='#fov_001'>" in page
    section = page.split("<h3 id='fov_001'")[1].split("<h3")[0]
    flagged = re.findall(r"<tr><td class='number'>(\d+)</td><td>([^<]*)</td>", section)
    assert [frame for frame, _ in flagged] == ["4"]
    assert "mean intensity off trend (low" in flagged[0][1]
    assert page.count("data:image/png;base64,") == 6  # plots and thumbnails of 3 FOVs
    assert len(list((tmp_path / "qc_files").glob("*.png"))) == 6


def test_report_of_a_folder_that_is_not_a_run_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(fovflow("report", tmp_path), "not a run folder")


def test_a_run_with_no_report_writes_none(small_image: Path, tmp_path: Path) -> None:
    ran = fovflow("run", small_image, "-o", tmp_path / "run", "--fovs", "0", "--no-report",
                  "--executor", "serial")
    assert ran.exit_code == 0, ran.stderr
    assert "QC report" not in ran.stdout and not (tmp_path / "run" / "report.html").exists()
