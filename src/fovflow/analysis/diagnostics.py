"""What a user should know about a fitted table: bounds that decided fits, parameters the data
do not fix, fits that did not converge, and how uncertain each parameter is."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from fovflow.analysis.models import Model


def bound_counts(fitted: pd.DataFrame) -> Counter[str]:
    """How many fits have each ``at_bound`` entry (``"delta=lower"``, ``"delta=beta"``, ...)."""
    return Counter(flag for flags in _words(fitted, "at_bound") for flag in flags)


def relative_uncertainty(fitted: pd.DataFrame, parameters: list[str]) -> dict[str, float]:
    """Median over successful fits of ``se / |value|`` per parameter (NaN without fits)."""
    ok = fitted[fitted["success"].astype(bool)]
    return {name: float(np.nanmedian(ok[f"{name}_se"] / ok[name].abs()))
            if len(ok) and f"{name}_se" in ok else np.nan for name in parameters}


def fit_notes(fitted: pd.DataFrame, model: Model) -> list[str]:
    """Sentences about a fitted table worth reading before its numbers; none when all is well
    but the parameters' median relative uncertainty."""
    notes = []
    bounds = {p.name: p for p in model.parameters}
    for flag, count in sorted(bound_counts(fitted).items()):
        name, _, side = flag.partition("=")
        fits = _fits(count)
        if side in bounds:
            notes.append(f"{name} equals {side} in {fits}: the data cannot order them (the "
                         f"fit calls the faster rate {name})")
        else:
            value = getattr(bounds[name], side)
            notes.append(f"{name} is at its {side} bound ({value:g}) in {fits}: the bound "
                         f"decides these fits; widen it with --bounds {name}=LOW:HIGH")
    unfixed = Counter(name for names in _words(fitted, "not_identifiable") for name in names)
    for name, count in sorted(unfixed.items()):
        notes.append(f"{name} is not identifiable in {_fits(count)}: its 95 % interval is "
                     f"wider than its bounds or the data do not resolve it")
    failed = ~fitted["success"].astype(bool)
    stopped = int((failed & fitted["r_squared"].notna()).sum())
    if stopped:
        notes.append(f"not converged: {_fits(stopped)} (see the message column)")
    unfitted = int((failed & fitted["r_squared"].isna()).sum())
    if unfitted:
        notes.append(f"not fitted: {_fits(unfitted)} with too few valid points")
    spread = relative_uncertainty(fitted, [p.name for p in model.free])
    if any(np.isfinite(v) for v in spread.values()):
        notes.append("median relative uncertainty (standard error / value): " + ", ".join(
            f"{name} {value:.1%}" for name, value in spread.items() if np.isfinite(value)))
    return notes


def _fits(count: int) -> str:
    return f"{count} fit{'s' if count != 1 else ''}"


def flag_words(value: object) -> list[str]:
    """The names in one ``at_bound`` or ``not_identifiable`` cell (empty cells read as NaN)."""
    return value.split() if isinstance(value, str) else []


def _words(fitted: pd.DataFrame, column: str) -> list[list[str]]:
    return [flag_words(value) for value in fitted[column]] if column in fitted else []
