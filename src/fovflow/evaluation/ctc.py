"""The Cell Tracking Challenge's measures of a tracked label stack, by py-ctcmetrics.

DET, SEG and TRA score detection, segmentation and tracking; BC(i) the branching (division)
correctness with i frames of tolerance (the F1 of found against true divisions), CT the share
of true tracks followed completely, TF how much of each true track its best predicted track
follows. Truth and result are written in the challenge's layout to a temporary folder and
scored by py-ctcmetrics (the optional ``fovflow[ctc]`` extra), so the figures are the
challenge's own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import tempfile
from pathlib import Path

import numpy as np

from fovflow.errors import ConfigError
from fovflow.io.ctc import write_ctc_result, write_ctc_truth
from fovflow.processing._stacks import Stack
from fovflow.processing.lineage import Lineage

__all__ = ["CTC_MEASURES", "ctc_scores", "require_ctc_metrics"]

CTC_MEASURES = ("DET", "SEG", "TRA", "BC(0)", "BC(1)", "CT", "TF")
"""The measures `ctc_scores` returns, in this order."""

_METRICS = ["DET", "SEG", "TRA", "BC", "CT", "TF"]  # py-ctcmetrics' names for them


def ctc_scores(truth: Stack, predicted: Stack, *, truth_lineage: Lineage | None = None,
               predicted_lineage: Lineage | None = None) -> dict[str, float]:
    """The `CTC_MEASURES` of `predicted` (with its lineage) against `truth` (with its own).

    Parameters
    ----------
    truth, predicted : (T, Y, X) stacks of integer labels, one id per cell across frames
        Ids below 65536 (the challenge's 16-bit masks).
    truth_lineage, predicted_lineage : Lineage, optional
        Parents of the tracks (None: no track has a parent).

    Returns
    -------
    Each measure in [0, 1]; NaN where py-ctcmetrics gives none (BC(i) of a truth without
    divisions). A result without a single cell scores 0 (py-ctcmetrics cannot read it).

    Raises
    ------
    ConfigError
        If py-ctcmetrics is not installed.

    Notes
    -----
    Writing both folders is O(pixels); py-ctcmetrics' own matching dominates: 16 s for 40
    frames of 512x512 with 100 cells (a busy 2-core machine).
    """
    require_ctc_metrics()
    from ctc_metrics import evaluate_sequence

    if not any(np.any(predicted[t]) for t in range(len(predicted))):
        return dict.fromkeys(CTC_MEASURES, 0.0)
    with tempfile.TemporaryDirectory(prefix="fovflow-ctc-") as scratch:
        folder = Path(scratch)
        write_ctc_truth(truth, folder / "GT", lineage=truth_lineage)
        write_ctc_result(predicted, folder / "RES", lineage=predicted_lineage)
        with contextlib.redirect_stdout(io.StringIO()):  # it reports its progress there
            result = evaluate_sequence(str(folder / "RES"), str(folder / "GT"),
                                       metrics=_METRICS, threads=0)
    return {name: _number(result.get(name)) for name in CTC_MEASURES}


def require_ctc_metrics() -> None:
    """Raise `ConfigError` if py-ctcmetrics is not installed (before any work needs it)."""
    if importlib.util.find_spec("ctc_metrics") is None:
        raise ConfigError("the Cell Tracking Challenge measures need py-ctcmetrics: "
                          "pip install 'fovflow[ctc]'")


def _number(value: object) -> float:
    """A measure as a float; None (not computed) as NaN."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else math.nan
