"""The evaluation commands: ``score`` (a run against simulated ground truth) and ``export-ctc``."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from fovflow.cli.console import console, progress_bar
from fovflow.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from fovflow.evaluation.divisions import DivisionScores
    from fovflow.evaluation.scores import CellValues, Scores


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to `app`."""
    app.command()(score)
    app.command("export-ctc")(export_ctc)


def score(
    run_dir: Annotated[Path, typer.Argument(help="Run folder of `fovflow run`.")],
    truth: Annotated[Path, typer.Option(help="Ground truth of `fovflow simulate` (sim.truth).")],
    fovs: Annotated[str | None, typer.Option(help="FOVs to score, e.g. 0-3 (default: all "
                                                  "FOVs of the run).")] = None,
    min_area: Annotated[int, typer.Option(help="Leave out true cells smaller than this many "
                                               "pixels in a frame (border slivers).", min=0)] = 0,
    ctc: Annotated[bool, typer.Option("--ctc", help="Also the Cell Tracking Challenge's "
                                                    "DET, SEG, TRA, BC(0), BC(1), CT, TF "
                                                    "(needs py-ctcmetrics).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score a run against simulated ground truth: segmentation, detection, tracking, traces,
    divisions (recall and precision, one frame of tolerance)."""
    from fovflow.evaluation.ctc import CTC_MEASURES, require_ctc_metrics
    from fovflow.evaluation.divisions import DivisionScores
    from fovflow.evaluation.scores import Scores
    from fovflow.io.ctc import read_truth_traces, require_fovs, run_fovs, truth_fovs
    from fovflow.ranges import parse_ranges

    in_run = run_fovs(run_dir)
    selected = parse_ranges(fovs) if fovs is not None else in_run
    require_fovs(selected, in_run, f"run {run_dir}")  # before any work, not at the bad FOV
    require_fovs(selected, truth_fovs(truth), f"ground truth {truth}")
    if ctc:
        require_ctc_metrics()  # before any work
    true_traces = read_truth_traces(truth)
    results: dict[int, tuple[Scores, DivisionScores]] = {}
    measures: dict[int, dict[str, float]] = {}
    with progress_bar() as bar:
        task = bar.add_task("scoring", total=len(selected))
        for fov in selected:
            found, divisions, measures[fov] = _score_fov(run_dir, truth, fov, true_traces,
                                                         min_area, ctc)
            results[fov] = found, divisions
            bar.update(task, advance=1)
    overall = (sum((s for s, _ in results.values()), start=Scores()),
               sum((d for _, d in results.values()), start=DivisionScores()))
    mean_measures = ({name: _mean([m[name] for m in measures.values()]) for name in CTC_MEASURES}
                     if ctc else {})
    if as_json:
        document = {"run": str(run_dir), "truth": str(truth), "min_area": min_area,
                    "fovs": {str(fov): _plain(_as_dict(*s) | measures[fov])
                             for fov, s in results.items()},
                    "all": _plain(_as_dict(*overall) | mean_measures)}
        print(json.dumps(document, indent=2))  # plain print: machine-readable stdout
        return
    table = Table("FOV", "Jaccard", "SEG", "recall", "precision", "complete tracks",
                  "ID switches", "trace error median, p95", "divisions recall, precision",
                  title=f"{run_dir} against {truth}", title_justify="left")
    for name, scores in [*((str(fov), s) for fov, s in results.items()), ("all", overall)]:
        table.add_row(name, *_row(*scores), end_section=name == str(selected[-1]))
    console.print(table)
    if ctc:
        table = Table("FOV", *CTC_MEASURES, title="Cell Tracking Challenge measures "
                      "(py-ctcmetrics; all: the mean over FOVs)", title_justify="left")
        for name, values in [*((str(fov), m) for fov, m in measures.items()),
                             ("all", mean_measures)]:
            table.add_row(name, *(_number(values[m]) for m in CTC_MEASURES),
                          end_section=name == str(selected[-1]))
        console.print(table)


def export_ctc(
    run_dir: Annotated[Path, typer.Argument(help="Run folder of `fovflow run`.")],
    out_dir: Annotated[Path, typer.Argument(help="New folder for the result, e.g. 01_RES.")],
    fov: Annotated[int, typer.Option(help="The FOV to export.", min=0)],
) -> None:
    """Write one FOV's tracked labels in the Cell Tracking Challenge result format."""
    from fovflow.io.ctc import export_run_ctc

    tracks = export_run_ctc(run_dir, fov, out_dir)
    split = len(tracks.cell) - len(np.unique(tracks.cell))
    console.print(f"wrote [bold]{out_dir}[/] ({len(tracks.label)} tracks"
                  f"{f', {split} of them parts of interrupted tracks' if split else ''})",
                  soft_wrap=True)


def _score_fov(run_dir: Path, truth: Path, fov: int, true_traces: pd.DataFrame,
               min_area: int, ctc: bool) -> tuple[Scores, DivisionScores, dict[str, float]]:
    """Scores of one FOV, trace errors pooled over the run's fluorescence channels, its
    division scores (none when the run or the truth predates lineage) and with `ctc` the
    Cell Tracking Challenge's measures (else none)."""
    from fovflow.evaluation.ctc import ctc_scores
    from fovflow.evaluation.divisions import DivisionScores, score_divisions, visible_lineage
    from fovflow.evaluation.scores import relative_errors, score_labels
    from fovflow.io.ctc import SmallCellsRemoved, run_labels, truth_labels, truth_lineage
    from fovflow.io.layout import trace_files
    from fovflow.io.lineage import run_lineage
    from fovflow.io.tables import read_traces

    predicted, true = run_labels(run_dir, fov), truth_labels(truth, fov)
    if predicted.shape != true.shape:
        raise ConfigError(f"FOV {fov}: the run's labels have shape {predicted.shape}, the "
                          f"ground truth's {true.shape}; is {truth} the truth of this run?")
    scored = SmallCellsRemoved(true, min_area) if min_area else true
    scores, matches = score_labels(scored, predicted)
    true_rows = true_traces[true_traces["fov"] == fov]
    errors = [np.empty(0)]
    for channel, path in trace_files(run_dir, fov).items():
        column = f"intensity_total_ch_{channel}"
        if column not in true_rows.columns:
            continue
        measured = read_traces(path)
        if "intensity_total" in measured.columns:
            errors.append(relative_errors(matches, _values(true_rows, column),
                                          _values(measured, "intensity_total")))
    true_lineage, found_lineage = truth_lineage(truth, fov), run_lineage(run_dir, fov)
    divisions = (DivisionScores() if true_lineage is None or found_lineage is None
                 else score_divisions(visible_lineage(true_lineage, scored), found_lineage,
                                      matches))
    measures = (ctc_scores(scored, predicted, truth_lineage=true_lineage,
                           predicted_lineage=found_lineage) if ctc else {})
    return replace(scores, trace_errors=np.concatenate(errors)), divisions, measures


def _mean(values: list[float]) -> float:
    """The mean of the defined values (NaN: none)."""
    defined = [value for value in values if not math.isnan(value)]
    return sum(defined) / len(defined) if defined else math.nan


def _values(table: pd.DataFrame, column: str) -> CellValues:
    from fovflow.evaluation.scores import CellValues

    return CellValues(table["frame"].to_numpy(np.int64), table["cell"].to_numpy(np.int64),
                      table[column].to_numpy(float))


def _row(scores: Scores, divisions: DivisionScores) -> list[str]:
    errors = (f"{100 * scores.trace_error_median:.1f} %, {100 * scores.trace_error_p95:.1f} %"
              if scores.trace_errors.size else "-")
    return [_number(scores.jaccard), _number(scores.seg), _number(scores.recall),
            _number(scores.precision), f"{scores.n_complete_tracks}/{scores.n_tracks}",
            str(scores.id_switches), errors,
            f"{_number(divisions.recall)}, {_number(divisions.precision)} "
            f"({divisions.n_found}/{divisions.n_true} found, {divisions.n_predicted} detected)"]


def _as_dict(scores: Scores, divisions: DivisionScores) -> dict[str, Any]:
    return {**scores.as_dict(), "division_recall": divisions.recall,
            "division_precision": divisions.precision, "n_true_divisions": divisions.n_true,
            "n_predicted_divisions": divisions.n_predicted,
            "n_found_divisions": divisions.n_found}


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: undefined scores become null."""
    return {key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in values.items()}
