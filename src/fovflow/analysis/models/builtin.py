"""The lab's three kinetic models, with defaults and bounds (time in hours, rates per hour).

The formulas are `fovflow.kinetics`'s. Rates may lie anywhere from 1e-3/h (half-life 29 days:
stable proteins) to 10/h (4 minutes: unstable mRNA), so no default bound excludes a real
system; a fit that ends at one is flagged. Where data cannot tell two rates apart the model
names them by order, not by a bound between them: `trivial` is symmetric in ``delta`` and
``beta``, and `maturation` nearly so when maturation is fast (swapping them shifts the curve
by less than noise), so the fit calls the faster rate ``delta`` (mRNA decays faster than
protein).

`maturation` fixes ``km`` at 1.28/h (the maturation rate of GFP-like proteins, a property of
the reporter, not of the cell): with ``km`` free ``delta`` and ``beta + km`` can swap without
changing the curve. Re-bound ``km`` (``--bounds km=LOW:HIGH``) to fit it anyway.

In `maturation_blocked` ``t0``, the time translation is blocked, is fixed at 0 by default: when
it precedes the first frame the data cannot tell it from ``G0`` and ``Gu0``. Fix it at the time
of the block, or give it bounds to fit it.
"""

from __future__ import annotations

import math

from fovflow import kinetics
from fovflow.analysis.models.base import Model, Parameter

_INF = math.inf
_SLOWEST, _FASTEST = 1e-3, 10.0  # per hour: half-lives of 29 days and of 4 minutes
_RATE_RANGE = "1e-3/h (half-life 29 d) to 10/h (4 min) covers real mRNAs and proteins"

_T0 = Parameter("t0", 1.0, -10.0, 100.0, unit="h", description="onset of expression",
                rationale="from 10 h before the movie (cells transfected earlier) to 100 h")
_OFFSET = Parameter("offset", 0.0, -_INF, _INF, linear=True, unit="a.u.",
                    description="background level", rationale="unbounded: any background")
_KTL = Parameter("ktl", 1000.0, 0.0, _INF, linear=True, unit="a.u./h",
                 description="translation rate times initial mRNA",
                 rationale="any non-negative amplitude")
_DELTA = Parameter("delta", 0.5, _SLOWEST, _FASTEST, unit="1/h",
                   description="mRNA degradation rate", rationale=_RATE_RANGE)
_BETA = Parameter("beta", 0.05, _SLOWEST, _FASTEST, unit="1/h",
                  description="protein degradation rate", rationale=_RATE_RANGE)
_KM = Parameter("km", 1.28, _SLOWEST, _FASTEST, fixed=True, unit="1/h",
                description="maturation rate",
                rationale="fixed: a property of the fluorescent protein (1.28/h, the lab's "
                          "value for its GFP); --bounds km=LOW:HIGH fits it")

TRIVIAL = Model(
    "trivial", kinetics.trivial, (_T0, _KTL, _DELTA, _BETA, _OFFSET),
    description="translation from decaying mRNA, protein decay",
    swappable=(("delta", "beta"),),
)
MATURATION = Model(
    "maturation", kinetics.maturation, (_T0, _KTL, _DELTA, _BETA, _KM, _OFFSET),
    description="as trivial, protein fluoresces after maturation",
    swappable=(("delta", "beta"),),
)
MATURATION_BLOCKED = Model(
    "maturation_blocked",
    kinetics.maturation_blocked,
    (
        Parameter("t0", 0.0, -10.0, 100.0, fixed=True, unit="h",
                  description="time translation is blocked",
                  rationale="fixed: before the first frame it cannot be told from G0 and Gu0"),
        Parameter("G0", 1000.0, 0.0, _INF, linear=True, unit="a.u.",
                  description="mature protein at t0", rationale="any non-negative amount"),
        Parameter("Gu0", 1000.0, 0.0, _INF, linear=True, unit="a.u.",
                  description="maturing protein at t0", rationale="any non-negative amount"),
        Parameter("beta", 0.2, _SLOWEST, _FASTEST, unit="1/h",
                  description="protein degradation rate", rationale=_RATE_RANGE),
        Parameter("km", 1.28, _SLOWEST, _FASTEST, unit="1/h", description="maturation rate",
                  rationale="free: the maturing pool's decay shows it; fix it with "
                            "--fix km=1.28"),
        _OFFSET,
    ),
    description="decay of mature and maturing protein after translation is blocked",
)

BUILTIN_MODELS: tuple[Model, ...] = (TRIVIAL, MATURATION, MATURATION_BLOCKED)
