"""Standard errors and confidence intervals of fitted parameters from the Jacobian at the optimum.

Linearising the model at the optimum gives the covariance ``s² (JᵀJ)⁻¹`` with the residual
variance ``s² = RSS / (n - p)``; a 95 % interval is the estimate ± the t quantile for
``n - p`` degrees of freedom times the standard error. The Jacobian's columns are scaled to
unit norm before the decomposition, so parameters of very different size (amplitudes of 1e5,
rates of 1e-2) do not pass for a singular matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import t as student_t

from fovflow.analysis.models.base import FloatArray

LEVEL = 0.95
# A direction of parameter space whose singular value is below this fraction of the largest
# changes the curve by less than rounding noise: the data cannot fix the parameters along it.
_SINGULAR = 1e-9
_LOADING = 0.1  # a parameter counts as part of such a direction above this loading


@dataclass(frozen=True)
class Uncertainty:
    """Per free parameter: standard error, interval ends, and whether the data fix it."""

    errors: FloatArray
    lower: FloatArray
    upper: FloatArray
    identifiable: NDArray[np.bool_]


def parameter_uncertainty(
    jacobian: FloatArray,
    rss: float,
    x: FloatArray,
    bounds: tuple[FloatArray, FloatArray],
) -> Uncertainty:
    """Standard errors and 95 % intervals (clipped to `bounds`) of the parameters `x`.

    Parameters
    ----------
    jacobian : array (n, p)
        Derivatives of the residuals at `x`, in the same units as `rss`.
    rss : float
        Residual sum of squares at `x`.
    x : array (p,)
        The fitted free parameters.
    bounds : (lower, upper) arrays (p,)
        The fit's bounds.

    Returns
    -------
    Uncertainty
        A parameter is not identifiable when its interval is wider than its bounds or when it
        takes part in a direction the Jacobian does not resolve (its error is then infinite).

    Notes
    -----
    One SVD of an (n, p) matrix: O(n p²).
    """
    n, p = jacobian.shape
    lower, upper = bounds
    if n <= p:
        infinite = np.full(p, np.inf)
        return Uncertainty(infinite, lower.copy(), upper.copy(), np.zeros(p, dtype=bool))
    norms = np.linalg.norm(jacobian, axis=0)
    norms[norms == 0] = 1.0
    _, singular, v_t = np.linalg.svd(jacobian / norms, full_matrices=False)
    resolved = singular > _SINGULAR * singular[0]
    unresolved = (np.abs(v_t[~resolved]) > _LOADING).any(axis=0)
    inverse = (v_t[resolved].T / singular[resolved] ** 2) @ v_t[resolved]
    variance = rss / (n - p) * np.diag(inverse) / norms**2
    errors = np.where(unresolved, np.inf, np.sqrt(variance))
    half_width = student_t.ppf(0.5 + LEVEL / 2, n - p) * errors
    identifiable = ~unresolved & (2 * half_width <= upper - lower)
    return Uncertainty(errors, np.maximum(x - half_width, lower),
                       np.minimum(x + half_width, upper), identifiable)
