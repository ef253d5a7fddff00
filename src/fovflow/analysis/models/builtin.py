"""The lab's three kinetic models, with defaults and bounds (time in hours, rates per hour).

The formulas are `fovflow.kinetics`'s. In `trivial`, ``delta`` and ``beta`` enter symmetrically
(swapping them gives the same curve), so their default bounds do not overlap: mRNA decays faster
than protein (``delta >= 0.25/h >= beta``). Re-bound them if a system differs. `maturation` is
likewise unchanged when ``delta`` and ``beta + km`` swap (two first-order steps in a row), so fix
``km`` (a property of the fluorescent protein) to tell them apart.

In `maturation_blocked` ``t0``, the time translation is blocked, is fixed at 0 by default: when
it precedes the first frame the data cannot tell it from ``G0`` and ``Gu0``. Fix it at the time
of the block, or give it bounds to fit it.
"""

from __future__ import annotations

import math

from fovflow import kinetics
from fovflow.analysis.models.base import Model, Parameter

_INF = math.inf

_T0 = Parameter("t0", 1.0, -10.0, 100.0, unit="h", description="onset of expression")
_OFFSET = Parameter("offset", 0.0, -_INF, _INF, linear=True, unit="a.u.",
                    description="background level")
_KTL = Parameter("ktl", 1000.0, 0.0, _INF, linear=True, unit="a.u./h",
                 description="translation rate times initial mRNA")
_DELTA = Parameter("delta", 0.5, 0.25, 10.0, unit="1/h", description="mRNA degradation rate")
_BETA = Parameter("beta", 0.05, 1e-4, 0.25, unit="1/h", description="protein degradation rate")
_KM = Parameter("km", 1.0, 1e-3, 10.0, unit="1/h", description="maturation rate")

TRIVIAL = Model(
    "trivial", kinetics.trivial, (_T0, _KTL, _DELTA, _BETA, _OFFSET),
    description="translation from decaying mRNA, protein decay",
)
MATURATION = Model(
    "maturation", kinetics.maturation, (_T0, _KTL, _DELTA, _BETA, _KM, _OFFSET),
    description="as trivial, protein fluoresces after maturation",
)
MATURATION_BLOCKED = Model(
    "maturation_blocked",
    kinetics.maturation_blocked,
    (
        Parameter("t0", 0.0, -10.0, 100.0, fixed=True, unit="h",
                  description="time translation is blocked"),
        Parameter("G0", 1000.0, 0.0, _INF, linear=True, unit="a.u.",
                  description="mature protein at t0"),
        Parameter("Gu0", 1000.0, 0.0, _INF, linear=True, unit="a.u.",
                  description="maturing protein at t0"),
        Parameter("beta", 0.2, 1e-4, 5.0, unit="1/h", description="protein degradation rate"),
        _KM,
        _OFFSET,
    ),
    description="decay of mature and maturing protein after translation is blocked",
)

BUILTIN_MODELS: tuple[Model, ...] = (TRIVIAL, MATURATION, MATURATION_BLOCKED)
