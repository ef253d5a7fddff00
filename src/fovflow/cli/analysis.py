"""The analysis commands: ``merge``, ``fit`` and ``models``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from fovflow.cli.console import console, progress_bar
from fovflow.errors import ConfigError

if TYPE_CHECKING:
    from fovflow.analysis.tables_fit import TableFitted

T = TypeVar("T")
log = logging.getLogger("fovflow.cli")

_PLUGINS = typer.Option("--plugins", help="Folder of model plugin files (repeatable).")


def register(app: typer.Typer) -> None:
    """Add the analysis commands to `app`."""
    app.command()(merge)
    app.command()(fit)
    app.command()(models)


def merge(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with fov_XXX/traces_ch_C.csv.")],
    samples: Annotated[Path, typer.Option(help="samples.yaml: names and FOV ranges.")],
    min_length: Annotated[int, typer.Option(help="Minimum good frames per cell.", min=1)] = 10,
    time_unit: Annotated[
        str | None, typer.Option(help="Time unit of the traces (s or frame) when the run's "
                                      "processing_results.yaml does not record it.")
    ] = None,
    lineage: Annotated[str, typer.Option(help="split: every cell apart; sum: one column per "
                                              "lineage, daughters' intensity_total and area "
                                              "summed after a division.")] = "split",
) -> None:
    """Merge traces into per-sample tables (wide and long) in RUN_DIR/samples.

    Exits with status 1 when no table holds a cell.
    """
    from fovflow.analysis.merge import merge_run, read_samples
    from fovflow.io.layout import SAMPLES_DIR
    from fovflow.io.tables import read_sample_table

    groups = read_samples(samples)
    before = {path: path.stat().st_mtime_ns for path in (run_dir / SAMPLES_DIR).glob("*.csv")}
    with progress_bar() as bar:
        task = bar.add_task("merging", total=len(groups))
        written = merge_run(run_dir, groups, min_length=min_length, time_unit_name=time_unit,
                            lineage=lineage,
                            progress=lambda done, total: bar.update(task, completed=done),
                            on_note=lambda note: console.print(f"note: {escape(note)}",
                                                               soft_wrap=True))
    n_cells = 0
    for path in written:
        cells = read_sample_table(path).values.shape[1]
        n_cells += cells
        # A table that would be written as it is stays untouched (its time too).
        how = "up to date" if before.get(path) == path.stat().st_mtime_ns else "wrote"
        console.print(f"{how} [bold]{path}[/] ({cells} cells)", soft_wrap=True)
    if not n_cells:
        log.warning("no cell has %d good frames in %s: lower --min-length, or check the run's "
                    "traces (cells are good after the run's own minimum length)", min_length,
                    run_dir)
        raise typer.Exit(1)


def fit(
    table: Annotated[Path, typer.Argument(help="Sample table, or a folder of them.")],
    model: Annotated[str, typer.Option(help="Model name (see `fovflow models`).")] = "maturation",
    fix: Annotated[list[str] | None, typer.Option(help="Fix a parameter: NAME=VALUE.")] = None,
    bounds: Annotated[
        list[str] | None, typer.Option(help="Re-bound a parameter: NAME=LOW:HIGH (this also "
                                            "frees one fixed by default, e.g. km).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: cores).")
                       ] = None,
    feature: Annotated[
        str | None, typer.Option(help="In a folder, fit the tables of this feature (default "
                                      "intensity_total; 'all': every table).")
    ] = None,
    frame_interval: Annotated[
        float | None, typer.Option(help="Minutes per frame, for tables timed in frames.")
    ] = None,
    curves: Annotated[bool, typer.Option("--curves", help="Also write fitted curves.")] = False,
    report: Annotated[bool, typer.Option("--report", help="Write plots and summaries.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Refit complete outputs.")] = False,
    plugins: Annotated[list[Path] | None, _PLUGINS] = None,
) -> None:
    """Fit a kinetic model to every cell of a sample table (or of every table in a folder).

    A fit with other settings keeps the previous result (renamed ..._previous_<time>). Exits
    with status 1 when no table held a cell to fit.
    """
    from fovflow.analysis.fitting import FitSettings
    from fovflow.analysis.tables_fit import DEFAULT_FEATURE, fit_tables, sample_tables

    settings = FitSettings.create(model, fixed=_pairs(fix, "--fix", _number),
                                  bounds=_pairs(bounds, "--bounds", _interval),
                                  plugins=[str(p) for p in plugins or ()])
    interval_h = frame_interval / 60 if frame_interval else None
    paths = sample_tables(table, feature=None if feature == "all"
                          else feature or DEFAULT_FEATURE)
    cells = 0
    with progress_bar() as bar:
        def progress_for(path: Path) -> Callable[[int, int], None]:
            task = bar.add_task(path.name, total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)

        def announce(event: TableFitted) -> None:
            nonlocal cells
            cells += event.n_cells
            _announce(event)

        fit_tables(paths, settings, n_workers=workers, frame_interval_h=interval_h,
                   curves=curves, report=report, force=force, on_event=announce,
                   progress=progress_for)
    if not cells:
        log.warning("no cells to fit in %s: merge with a smaller --min-length, or check the "
                    "run's traces", table)
        raise typer.Exit(1)


def _announce(event: TableFitted) -> None:
    how = "up to date" if event.skipped else "wrote"
    console.print(f"{how} [bold]{event.output}[/] ({event.n_success}/{event.n_cells} "
                  f"fits converged)", soft_wrap=True)
    if event.previous is not None:
        console.print(f"  kept the previous fit (other settings or table) as "
                      f"[bold]{event.previous}[/]", soft_wrap=True)
    for note in event.notes:
        console.print(f"  {escape(note)}", soft_wrap=True)
    if event.report:  # a fit that is up to date keeps its report
        what = "report (up to date)" if event.skipped else "wrote report"
        console.print(f"  {what} {event.report[0].parent}", soft_wrap=True)


def models(
    plugins: Annotated[list[Path] | None, _PLUGINS] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the kinetic models (built-in and plugins) with defaults, bounds and why."""
    from fovflow.analysis.models import available_models

    found = available_models(plugins or ())
    if as_json:
        print(json.dumps({name: {"source": m.source, "description": m.description,
                                 "swappable": [list(pair) for pair in m.swappable],
                                 "parameters": {
            p.name: {"default": p.default, "lower": p.lower, "upper": p.upper,
                     "fixed": p.fixed, "unit": p.unit, "description": p.description,
                     "rationale": p.rationale} for p in m.parameters}}
            for name, m in found.items()}, indent=2))  # plain print: machine-readable stdout
        return
    for name, m in found.items():
        listing = Table("parameter", "default", "bounds", "meaning", "why",
                        title=f"{name}: {m.description} ({m.source})", title_justify="left")
        for p in m.parameters:
            default = f"{p.default:g} {p.unit}".strip() + (" fixed" if p.fixed else "")
            listing.add_row(p.name, escape(default), escape(f"[{p.lower:g}, {p.upper:g}]"),
                            escape(p.description), escape(p.rationale))
        console.print(listing)
        for first, second in m.swappable:
            console.print(f"  the data cannot always tell {first} from {second}: the fit "
                          f"calls the larger {first}", soft_wrap=True)


def _pairs(
    items: list[str] | None, option: str, parse: Callable[[str, str], T]
) -> dict[str, T]:
    result = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{option} {item!r}: write NAME=VALUE")
        result[name.strip()] = parse(value, f"{option} {item!r}")
    return result


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a number") from None


def _interval(text: str, where: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    if not sep:
        raise ConfigError(f"{where}: write NAME=LOW:HIGH")
    return _number(low, where), _number(high, where)
