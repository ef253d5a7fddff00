"""The QC report as one self-contained HTML page: pictures embedded as base64 PNG.

Plain string templating; every text that comes from the run (paths, messages, names) goes
through `html.escape`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fovflow.analysis.qc import MIN_R_SQUARED, FitQc, FovQc, problems_first

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-top: 1.4em; border-top: 1px solid #ccc; padding-top: .8em; }
table { border-collapse: collapse; font-size: .9em; margin: .4em 0; }
th, td { border: 1px solid #ccc; padding: .2em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.number { text-align: right; }
tr.bad td { background: #fdecea; } tr.ok td { background: #eef7ee; }
.banner { background: #fff4d6; border: 1px solid #e0b84d; padding: .5em .8em; }
.meta { color: #555; font-size: .9em; } img { max-width: 100%; }
ul.problems { color: #a61b1b; margin: .3em 0; }
"""


@dataclass(frozen=True)
class FovSection:
    """One FOV's numbers and pictures (PNG bytes; None when there is nothing to show)."""

    qc: FovQc
    plots_png: bytes
    thumbnails_png: bytes | None


def render_page(*, folder: str, input_path: str, generated: str, sections: Sequence[FovSection],
                fits: Sequence[FitQc], in_progress: str | None = None,
                run_problems: Sequence[str] = ()) -> str:
    """The whole page: a summary, the FOVs table (problems first), per-FOV sections, fits."""
    ordered = problems_first([section.qc for section in sections])
    with_problems = sum(bool(qc.problems) for qc in ordered)
    parts = [f"<h1>QC report of {html.escape(folder)}</h1>",
             f"<p class='meta'>input {html.escape(input_path)} · {len(ordered)} FOVs, "
             f"{with_problems} with problems · written {html.escape(generated)}</p>"]
    if in_progress:
        parts.append(f"<p class='banner'>A run is still writing this folder "
                     f"({html.escape(in_progress)}): this report shows what exists so far.</p>")
    if run_problems:
        parts.append("<h2>Warnings of the run</h2>" + _list(run_problems))
    parts.append("<h2>FOVs, problems first</h2>" + _fov_table(ordered))
    by_fov = {section.qc.fov: section for section in sections}
    parts.extend(_fov_section(by_fov[qc.fov]) for qc in ordered)
    parts.append(_fits(fits))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>fovflow QC: {html.escape(folder)}</title><style>{_STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def _fov_table(ordered: Sequence[FovQc]) -> str:
    rows = ["<tr><th>FOV</th><th>status</th><th>problems</th><th>cells per frame (median)</th>"
            "<th>tracks</th><th>good (share of cell-frames)</th><th>divisions</th>"
            "<th>flagged frames</th><th>time (s)</th></tr>"]
    for qc in ordered:
        counts = qc.cells_per_frame
        flagged = ", ".join(str(flag.frame) for flag in qc.flags) or "none"
        rows.append(
            f"<tr class='{'bad' if qc.problems else 'ok'}'>"
            f"<td><a href='#fov_{qc.fov:03d}'>fov_{qc.fov:03d}</a></td>"
            f"<td>{html.escape(qc.status)}</td>"
            f"<td>{html.escape('; '.join(qc.problems)) or 'none'}</td>"
            f"<td class='number'>{_median(counts)}</td>"
            f"<td class='number'>{qc.track_lengths.size}</td>"
            f"<td class='number'>{qc.good_tracks} ({qc.good_fraction:.0%})</td>"
            f"<td class='number'>{'n/a' if qc.divisions is None else qc.divisions}</td>"
            f"<td>{flagged}</td>"
            f"<td class='number'>{sum(qc.step_seconds.values()):.1f}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _fov_section(section: FovSection) -> str:
    qc = section.qc
    parts = [f"<h3 id='fov_{qc.fov:03d}'>fov_{qc.fov:03d} · {html.escape(qc.status)}</h3>"]
    if qc.problems:
        parts.append(_list(qc.problems))
    lineage = ("no lineage in the traces" if qc.divisions is None
               else f"{qc.divisions} division(s)")
    parts.append(f"<p class='meta'>{qc.track_lengths.size} tracks, {qc.good_tracks} good "
                 f"({qc.good_fraction:.0%} of the cell-frames), "
                 f"median length {_median(qc.track_lengths)} frames, {lineage}</p>")
    parts.append(_image(section.plots_png, f"plots of fov_{qc.fov:03d}"))
    if section.thumbnails_png is not None:
        parts.append(_image(section.thumbnails_png, f"frames of fov_{qc.fov:03d}"))
    if qc.flags:
        parts.append("<table><tr><th>flagged frame</th><th>why</th></tr>" + "".join(
            f"<tr><td class='number'>{flag.frame}</td>"
            f"<td>{html.escape('; '.join(flag.reasons))}</td></tr>" for flag in qc.flags)
            + "</table>")
    if qc.step_seconds:
        parts.append("<table><tr><th>step</th><th>time (s)</th></tr>" + "".join(
            f"<tr><td>{html.escape(step)}</td><td class='number'>{seconds:.2f}</td></tr>"
            for step, seconds in qc.step_seconds.items()) + "</table>")
    return "\n".join(parts)


def _fits(fits: Sequence[FitQc]) -> str:
    if not fits:
        return "<h2>Fits</h2><p class='meta'>No fitted tables in samples/ (run `fovflow fit`).</p>"
    rows = [f"<tr><th>fitted table</th><th>cells</th><th>converged</th>"
            f"<th>R² ≥ {MIN_R_SQUARED:g}</th><th>median R²</th></tr>"]
    rows.extend(f"<tr class='{'ok' if fit.r_squared_pass_fraction >= 0.5 else 'bad'}'>"
                f"<td>{html.escape(fit.name)}</td><td class='number'>{fit.n_cells}</td>"
                f"<td class='number'>{fit.success_fraction:.0%}</td>"
                f"<td class='number'>{fit.r_squared_pass_fraction:.0%}</td>"
                f"<td class='number'>{fit.median_r_squared:.3f}</td></tr>" for fit in fits)
    return "<h2>Fits</h2><table>" + "".join(rows) + "</table>"


def _image(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f"<p><img alt='{html.escape(alt)}' src='data:image/png;base64,{encoded}'></p>"


def _list(items: Sequence[str]) -> str:
    return "<ul class='problems'>" + "".join(
        f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _median(values: np.ndarray) -> str:
    return f"{np.median(values):g}" if values.size else "–"
