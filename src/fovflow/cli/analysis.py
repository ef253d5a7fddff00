"""The analysis commands: ``merge``, ``fit`` and ``models``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from fovflow.cli.main import _progress_bar, console
from fovflow.errors import ConfigError

if TYPE_CHECKING:
    from fovflow.analysis.fitting import FitSettings
    from fovflow.analysis.tables_fit import TableFitted

T = TypeVar("T")

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
) -> None:
    """Merge traces into per-sample tables (wide and long) in RUN_DIR/samples."""
    from fovflow.analysis.merge import merge_run, read_samples

    groups = read_samples(samples)
    with _progress_bar() as bar:
        task = bar.add_task("merging", total=len(groups))
        written = merge_run(run_dir, groups, min_length=min_length, time_unit_name=time_unit,
                            progress=lambda done, total: bar.update(task, completed=done))
    for path in written:
        console.print(f"wrote [bold]{path}[/]", soft_wrap=True)


def fit(
    table: Annotated[Path, typer.Argument(help="Sample table, or a folder of them.")],
    model: Annotated[str, typer.Option(help="Model name (see `fovflow models`).")] = "maturation",
    fix: Annotated[list[str] | None, typer.Option(help="Fix a parameter: NAME=VALUE.")] = None,
    bounds: Annotated[
        list[str] | None, typer.Option(help="Re-bound a parameter: NAME=LOW:HIGH.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    frame_interval: Annotated[
        float | None, typer.Option(help="Minutes per frame, for tables timed in frames.")
    ] = None,
    curves: Annotated[bool, typer.Option("--curves", help="Also write fitted curves.")] = False,
    report: Annotated[bool, typer.Option("--report", help="Write plots and summaries.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Refit complete outputs.")] = False,
    plugins: Annotated[list[Path] | None, _PLUGINS] = None,
) -> None:
    """Fit a kinetic model to every cell of a sample table (or of every table in a folder)."""
    from fovflow.analysis.fitting import FitSettings
    from fovflow.analysis.tables_fit import fit_tables, sample_tables

    settings = FitSettings.create(model, fixed=_pairs(fix, "--fix", _number),
                                  bounds=_pairs(bounds, "--bounds", _interval),
                                  plugins=[str(p) for p in plugins or ()])
    interval_h = frame_interval / 60 if frame_interval else None
    paths = sample_tables(table)
    with _progress_bar() as bar:
        def progress_for(path: Path) -> Callable[[int, int], None]:
            task = bar.add_task(path.name, total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)

        def announce(event: TableFitted) -> None:
            how = "up to date" if event.skipped else "wrote"
            console.print(f"{how} [bold]{event.output}[/] ({event.n_success}/"
                          f"{event.n_cells} successful fits)", soft_wrap=True)
            if report and event.n_cells:
                _report(event, settings, interval_h)
            elif report:
                console.print(f"no report for [bold]{event.table}[/]: it holds no cells",
                              soft_wrap=True)

        fit_tables(paths, settings, n_workers=workers, frame_interval_h=interval_h,
                   curves=curves, force=force, on_event=announce, progress=progress_for)


def models(
    plugins: Annotated[list[Path] | None, _PLUGINS] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the kinetic models (built-in and plugins) with defaults and bounds."""
    from fovflow.analysis.models import available_models

    found = available_models(plugins or ())
    if as_json:
        print(json.dumps({name: {"source": m.source, "parameters": {
            p.name: {"default": p.default, "lower": p.lower, "upper": p.upper,
                     "fixed": p.fixed} for p in m.parameters}} for name, m in found.items()},
            indent=2))  # plain print: machine-readable stdout
        return
    listing = Table("model", escape("parameters: default [lower, upper]"), "source")
    for name, m in found.items():
        described = ", ".join(f"{p.name}={p.default:g}{' fixed' if p.fixed else ''} "
                              f"[{p.lower:g}, {p.upper:g}]" for p in m.parameters)
        listing.add_row(name, escape(described), escape(m.source))
    console.print(listing)


def _report(event: TableFitted, settings: FitSettings, interval_h: float | None) -> None:
    from fovflow.analysis.report import write_report
    from fovflow.analysis.tables_fit import fitted_curves
    from fovflow.io.tables import read_fitted_table, read_sample_table

    table = read_sample_table(event.table)
    fitted, _ = read_fitted_table(event.output)
    curves = fitted_curves(table, fitted, settings, interval_h)
    written = write_report(table, fitted, curves, [p.name for p in settings.resolve().free],
                           name=event.table.stem, model=settings.model,
                           out_dir=event.table.parent / "report")
    console.print(f"wrote report {written[0].parent}", soft_wrap=True)


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
