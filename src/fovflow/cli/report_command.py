"""The ``report`` command: the QC page of a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fovflow.cli.console import console, progress_bar


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to `app`."""
    app.command()(report)


def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (`fovflow run -o`).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML page to write "
                                                         "(default RUN_DIR/report.html).",
                                  show_default=False),
    ] = None,
    pngs: Annotated[
        bool, typer.Option("--pngs", help="Also write the pictures as PNG files beside the page.")
    ] = False,
) -> None:
    """Write a self-contained HTML QC page of a run: per FOV cells per frame, track lengths,
    good traces, divisions, flagged frames, thumbnails, step times; fits where present."""
    # Imported here: matplotlib and the readers take a second to load.
    from fovflow.analysis.qc_report import REPORT_NAME, write_qc_report

    page = output if output is not None else run_dir / REPORT_NAME
    before = page.stat().st_mtime_ns if page.is_file() else None
    with progress_bar() as bar:
        task = bar.add_task("reporting", total=None)
        written = write_qc_report(run_dir, output, save_pngs=pngs,
                                  progress=lambda done, total: bar.update(
                                      task, completed=done, total=total))
    if written.in_progress:
        console.print("note: a run is still writing this folder; the report shows what exists "
                      "so far")
    flagged = [qc for qc in written.fovs if qc.problems]
    # A page that would differ only in when it was written is kept as it is.
    how = "up to date" if before == written.page.stat().st_mtime_ns else "wrote"
    console.print(f"{how} [bold]{written.page}[/] ({len(written.fovs)} FOVs, "
                  f"{len(flagged)} with problems)", soft_wrap=True)
