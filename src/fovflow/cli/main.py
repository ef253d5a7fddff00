"""The `fovflow` command line.

A user mistake (`fovflow.errors.FovflowError`, or a command line click cannot parse) prints
one line and exits with status 2; with ``--verbose`` its traceback is shown too. Anything else
is a bug and keeps its traceback. Log records reach the console as one line each.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.logging import RichHandler
from rich.table import Table
from typer.core import TyperGroup

from fovflow import __version__
from fovflow.cli.console import console, err_console, progress_bar
from fovflow.errors import ConfigError, FovflowError


class _ErrorReportingGroup(TyperGroup):
    """Turns user errors into one line on stderr and exit status 2: fovflow's own
    (`FovflowError`) and the command line's (an unknown option, a missing argument, a value
    of the wrong type), which typer would draw as a boxed panel under the usage."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as exc:  # click's exceptions, as typer vendors them
            _print_error(_usage_problem(exc))
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:  # end of input at a prompt
            _print_error("aborted")
            sys.exit(1)
        sys.exit(status if isinstance(status, int) else 0)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FovflowError as exc:
            if (ctx.obj or {}).get("verbose"):
                err_console.print_exception()
            _print_error(str(exc))
            raise typer.Exit(2) from None


def _print_error(problem: str) -> None:
    err_console.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)


def _usage_problem(exc: typer.TyperException) -> str:
    """Click's message in one line, with where to read the usage."""
    message = " ".join(getattr(exc, "format_message", exc.__str__)().split())
    context = getattr(exc, "ctx", None)
    if context is None:
        return message
    return f"{message.removesuffix('.')}; see {context.command_path} --help"


class _FirstLineHandler(RichHandler):
    """The console's log handler: the first line of each record, no traceback (those go to
    run.log, and to the console with --verbose)."""

    def emit(self, record: logging.LogRecord) -> None:
        short = copy.copy(record)  # the record is shared with run.log's handler
        short.msg, short.args = record.getMessage().split("\n", 1)[0], None
        short.exc_info = short.exc_text = short.stack_info = None
        super().emit(short)


app = typer.Typer(
    cls=_ErrorReportingGroup,
    help="Single-cell time-lapse microscopy: from raw files to per-cell traces and kinetics.",
    rich_markup_mode=None,  # plain help: rewrapped paragraphs, option names never cut short
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"fovflow {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _main(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show debug logs and tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:  # plain `fovflow`: what it can do
        console.print(ctx.get_help(), markup=False, highlight=False)
        raise typer.Exit()
    ctx.obj = {"verbose": verbose}
    # The console shows warnings and errors, one line each; --verbose mirrors the full log,
    # tracebacks included (run.log gets INFO and tracebacks).
    handler_class = RichHandler if verbose else _FirstLineHandler
    console_handler = handler_class(console=err_console, show_path=False, show_time=False)
    console_handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[console_handler], force=True)
    if not verbose:
        # tifffile and bioio log every oddity they recover from; our own errors say what matters.
        noisy_loggers = ("tifffile", "bioio", "bioio_base", "bioio_nd2", "bioio_czi", "ome_types")
        for noisy in noisy_loggers:
            logging.getLogger(noisy).setLevel(logging.CRITICAL)


@app.command()
def simulate(
    output: Annotated[Path, typer.Argument(help="OME-TIFF to write, e.g. sim.ome.tif.")],
    n_fovs: Annotated[int, typer.Option(
        "--n-fovs", "--fovs", help="Number of fields of view (--fovs is its old name; in "
                                   "run, --fovs selects FOVs).", min=1,
    )] = 4,
    frames: Annotated[int, typer.Option(help="Frames per FOV.", min=1)] = 60,
    size: Annotated[int, typer.Option(help="Frame height and width in pixels.", min=32)] = 512,
    fluorescence: Annotated[int, typer.Option(help="Fluorescence channels.", min=1, max=4)] = 1,
    model: Annotated[
        str, typer.Option(help="Kinetic model: trivial, maturation or maturation_blocked.")
    ] = "maturation",
    kind: Annotated[
        str,
        typer.Option(help="Cells to draw: isolated (separate cells, phase contrast), crowded "
                          "(touching mammalian-like cells), bacteria (rods in microcolonies), "
                          "nuclei (fluorescent nuclei, channel 0 is the nuclear marker) or small "
                          "(small round cells, bright with a dark rim)."),
    ] = "isolated",
    cell_radius: Annotated[
        float | None,
        typer.Option(help="Cell radius in pixels, half the width of rods "
                          "(default: set by --kind).", min=4, max=500, show_default=False),
    ] = None,
    density: Annotated[
        float | None,
        typer.Option(help="Cells per megapixel (default: set by --kind).", min=0,
                     show_default=False),
    ] = None,
    interval: Annotated[float, typer.Option(help="Minutes between frames.", min=0.001)] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    divisions: Annotated[
        float | None,
        typer.Option(help="Cell-cycle time in hours: cells divide about once per cycle, with "
                          "true parent links in the ground truth (not for --kind isolated).",
                     min=0.01, show_default=False),
    ] = None,
    stage_jump: Annotated[
        int | None,
        typer.Option(help="Frame from which the stage has jumped by a cell's diameter.", min=1,
                     show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing output.")] = False,
) -> None:
    """Write a simulated multi-FOV time-lapse with ground truth (labels, traces, parameters)."""
    from fovflow.io.synthetic import SimulationConfig, write_simulation

    config = SimulationConfig(
        n_fovs=n_fovs, n_frames=frames, height=size, width=size, n_fluorescence=fluorescence,
        model=model, frame_interval_s=interval * 60.0, seed=seed, kind=kind,
        cell_radius_px=cell_radius, cells_per_megapixel=density, cell_cycle_h=divisions,
        stage_jump_frame=stage_jump,
    )
    with progress_bar() as bar:
        task = bar.add_task(f"simulating {kind}", total=n_fovs * frames)
        files = write_simulation(
            output, config, overwrite=force,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    channels = ", ".join(config.channel_names)
    console.print(f"wrote [bold]{files.image}[/] ({n_fovs} FOVs x {frames} frames x "
                  f"{1 + fluorescence} channels: {channels}, {size}x{size}, kind {kind}) and "
                  f"ground truth in {files.truth}")


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="Microscopy file (OME-TIFF, ND2, CZI).")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the metadata (and the estimate, under 'estimate') as JSON.",
    )] = False,
    estimate: Annotated[bool, typer.Option(
        "--estimate", help="Also suggest, per channel, a segmentation method and the cell "
                           "diameter, from a few frames, and the run command that uses them.",
    )] = False,
    fov: Annotated[int | None, typer.Option(
        help="FOV --estimate reads (default 0).", show_default=False,
    )] = None,
    z: Annotated[str | None, typer.Option(
        "--z", help="Z stacks: the plane, or max or mean, that --estimate reads.",
    )] = None,
) -> None:
    """Show what a microscopy file holds: FOVs, frames, channels, size, times, pixel size."""
    from fovflow.io.microscopy import describe_sizes, open_dataset

    if fov is not None and not estimate:
        raise ConfigError("--fov chooses the FOV that --estimate reads; add --estimate")
    with open_dataset(file, z=z) as dataset:
        meta = dataset.metadata
        found = None
        if estimate:
            # Imported here: the algorithms and scipy take a second to load.
            from fovflow.cli.estimate import estimate_channels

            found = estimate_channels(dataset, fov=0 if fov is None else fov)
    if as_json:
        data = meta.as_dict() | ({"estimate": found.as_dict()} if found else {})
        print(json.dumps(data, indent=2))  # plain print: machine-readable stdout
        return
    table = Table(title=str(meta.path), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("format", meta.format)
    table.add_row("FOVs", str(meta.n_fovs))
    table.add_row("frames", str(meta.n_frames))
    channels = ", ".join(f"{i}: {name}" for i, name in enumerate(meta.channel_names))
    table.add_row("channels", f"{meta.n_channels} ({channels})")
    if meta.fov_sizes:
        table.add_row("frame size", f"differs per FOV: {describe_sizes(meta.fov_sizes)}; "
                                    f"{meta.dtype} (each FOV is processed at its own size)")
    else:
        table.add_row("frame size", f"{meta.height} x {meta.width} px, {meta.dtype}")
    if meta.n_z > 1:
        table.add_row("Z planes", f"{meta.n_z} (run with --z 0 to {meta.n_z - 1}, max or mean)")
    pixel = f"{meta.pixel_size_um:g} µm" if meta.pixel_size_um else "not recorded"
    table.add_row("pixel size", pixel)
    table.add_row("times", _describe_times(meta.times[0], meta.time_unit))
    console.print(table)
    if found:
        from fovflow.cli.estimate import print_estimate

        print_estimate(found, console)


def _describe_times(times: tuple[float, ...], unit: str) -> str:
    if unit == "frame":
        return "not recorded in the file: frame indices are used"
    if len(times) < 2:
        return f"one frame at {times[0]:g} s"
    steps = [b - a for a, b in pairwise(times)]
    median = sorted(steps)[len(steps) // 2]
    return (f"{times[0] / 60:g} to {times[-1] / 60:g} min, "
            f"every {median / 60:g} min (median)")



# Commands defined in their own modules register themselves on `app`.
from fovflow.cli import analysis as _analysis  # noqa: E402
from fovflow.cli import evaluation as _evaluation  # noqa: E402
from fovflow.cli import gui_command as _gui_command  # noqa: E402
from fovflow.cli import report_command as _report_command  # noqa: E402
from fovflow.cli import run_command as _run_command  # noqa: E402

_run_command.register(app)
_analysis.register(app)
_evaluation.register(app)
_gui_command.register(app)
_report_command.register(app)
