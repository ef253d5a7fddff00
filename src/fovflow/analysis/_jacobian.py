"""Model curves for many parameter vectors at once, and forward-difference Jacobians.

`scipy.optimize.least_squares`'s own finite differences cost about 1 ms per Jacobian in
overhead; evaluating all shifted parameter vectors in one broadcast call costs a few dozen µs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fovflow.analysis.models import Model
from fovflow.analysis.models.base import FloatArray

_STEP = np.sqrt(np.finfo(float).eps)
Evaluator = Callable[[FloatArray], FloatArray]


def batch_evaluator(model: Model, times_h: FloatArray) -> Evaluator:
    """A function mapping free parameter rows (M, P) to model curves (M, T).

    Uses one broadcast call when the model's function gives the same values that way as row
    by row (the check runs once), and otherwise calls it per row.
    """
    names = [q.name for q in model.free]
    fixed = {q.name: q.default for q in model.parameters if q.fixed}
    t_row = times_h[None, :]

    def broadcast(x: FloatArray) -> FloatArray:
        columns = {name: x[:, j:j + 1] for j, name in enumerate(names)}
        return np.broadcast_to(model.evaluate(t_row, fixed | columns), (len(x), len(times_h)))

    def row_by_row(x: FloatArray) -> FloatArray:
        return np.stack([model.evaluate(times_h, model.full_values(row)) for row in x])

    probe = np.array([[q.default for q in model.free]] * 2)
    probe[1] = np.clip(probe[1] * 1.1 + 0.01, [q.lower for q in model.free],
                       [q.upper for q in model.free])
    try:
        agrees = np.allclose(broadcast(probe), row_by_row(probe), equal_nan=True)
    except (ValueError, TypeError):  # e.g. an ``if rate == 0`` on an array
        agrees = False
    return broadcast if agrees else row_by_row


def forward_jacobian(
    evaluate: Evaluator, x: FloatArray, upper: FloatArray, mask: FloatArray, scale: FloatArray
) -> FloatArray:
    """Forward differences (M, T, P) of the residuals ``(curve - data) / scale`` at rows `x`.

    All rows and parameters take one call of `evaluate`; points where `mask` is False get 0.
    """
    m, p = x.shape
    h = _STEP * np.maximum(np.abs(x), 1e-3)
    h = np.where(x + h > upper, -h, h)  # step inwards at an upper bound
    shifted = np.repeat(x[:, None, :], p + 1, axis=1)
    shifted[:, 1:, :] += h[:, :, None] * np.eye(p)
    curves = evaluate(shifted.reshape(-1, p)).reshape(m, p + 1, -1)
    jac = (curves[:, 1:, :] - curves[:, :1, :]) / h[:, :, None] / scale[:, :, None]
    return np.where(mask[:, None, :] & np.isfinite(jac), jac, 0.0).transpose(0, 2, 1)
