"""What a kinetic model is: a formula over time in hours and its named, bounded parameters."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fovflow.errors import ConfigError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Parameter:
    """One model parameter.

    Parameters
    ----------
    name : str
        Keyword the model's function takes.
    default : float
        Starting value of a naive fit, and the value used when the parameter is fixed without one.
    lower, upper : float
        Bounds of the fit (``-inf``/``inf`` for none).
    linear : bool
        The model is a sum of its linear parameters times functions of the others (no constant
        term). The fitter then solves these parameters exactly when it searches for start values.
    fixed : bool
        Held at `default` instead of fitted.
    unit, description : str
        For listings and reports.
    rationale : str
        Why the default and bounds are what they are (shown by ``fovflow models``).
    """

    name: str
    default: float
    lower: float = -math.inf
    upper: float = math.inf
    linear: bool = False
    fixed: bool = False
    unit: str = ""
    description: str = ""
    rationale: str = ""


@dataclass(frozen=True)
class Model:
    """A kinetic model: ``function(t_hours, **parameters) -> values`` with its parameters.

    Models are built once (the built-ins, or a plugin's ``MODELS`` list) and then constrained per
    fit with `constrain`, which returns a new model.

    ``swappable`` lists pairs of parameters the curve cannot tell apart (swapping their values
    leaves it unchanged); a fit names the larger value of each pair by the pair's first name.
    """

    name: str
    function: Callable[..., FloatArray]
    parameters: tuple[Parameter, ...]
    description: str = ""
    source: str = field(default="built-in", compare=False)
    swappable: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def free(self) -> tuple[Parameter, ...]:
        """The parameters the fit varies, in order."""
        return tuple(p for p in self.parameters if not p.fixed)

    def parameter(self, name: str) -> Parameter:
        """The parameter called `name`; a `ConfigError` listing the valid names otherwise."""
        for candidate in self.parameters:
            if candidate.name == name:
                return candidate
        raise ConfigError(f"model {self.name!r} has no parameter {name!r}; "
                          f"its parameters are {', '.join(self.names)}")

    def evaluate(self, t: ArrayLike, values: Mapping[str, float]) -> FloatArray:
        """The model at times `t` (hours) for a full set of parameter `values`."""
        return np.asarray(self.function(np.asarray(t, dtype=np.float64), **values), dtype=float)

    def full_values(self, free_values: Sequence[float]) -> dict[str, float]:
        """All parameter values from the free ones (in `free` order) and the fixed defaults."""
        given = iter(free_values)
        return {p.name: p.default if p.fixed else float(next(given)) for p in self.parameters}

    def out_of_order(
        self, free_values: Sequence[float], *, strict: bool = True
    ) -> list[tuple[int, int]]:
        """Positions ``(i, j)`` in `free` of the swappable pairs whose second value exceeds the
        first (or equals it, unless `strict`); only pairs with both parameters free and the
        same bounds count (otherwise the bounds already tell them apart)."""
        index = {p.name: i for i, p in enumerate(self.free)}
        pairs = []
        for first, second in self.swappable:
            if first in index and second in index:
                i, j = index[first], index[second]
                same_bounds = (self.free[i].lower, self.free[i].upper) == (self.free[j].lower,
                                                                           self.free[j].upper)
                before = operator.lt if strict else operator.le
                if same_bounds and before(free_values[i], free_values[j]):
                    pairs.append((i, j))
        return pairs

    def constrain(
        self,
        *,
        fixed: Mapping[str, float] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
    ) -> Model:
        """A copy with some parameters fixed at values and others given new bounds.

        A parameter given bounds is fitted within them, even if the model fixes it by default.

        Raises
        ------
        ConfigError
            For an unknown parameter name, a reversed or empty bound, a fixed value outside its
            parameter's bounds, or a fit left with no free parameter.
        """
        updated = {p.name: p for p in self.parameters}
        for name, (lower, upper) in (bounds or {}).items():
            if not lower < upper:
                raise ConfigError(f"bounds of {name!r} must have lower < upper, "
                                  f"not {lower:g}:{upper:g}")
            old = self.parameter(name)
            default = min(max(old.default, lower), upper)
            updated[name] = replace(old, lower=float(lower), upper=float(upper), default=default,
                                    fixed=False)
        for name, value in (fixed or {}).items():
            old = updated[self.parameter(name).name]
            if not old.lower <= value <= old.upper:
                raise ConfigError(f"fixed value {name}={value:g} is outside its bounds "
                                  f"[{old.lower:g}, {old.upper:g}]; re-bound it or fix another "
                                  f"value")
            updated[name] = replace(old, default=float(value), fixed=True)
        constrained = replace(self, parameters=tuple(updated[n] for n in self.names))
        if not constrained.free:
            raise ConfigError(f"every parameter of {self.name!r} is fixed: leave one free")
        return constrained
