"""Start values for the fitter: a grid over the nonlinear parameters, linear ones solved exactly.

Every built-in model is a sum of its linear parameters (``ktl``, ``G0``, ``Gu0``, ``offset``)
times functions of the others. For each point of a grid over the free nonlinear parameters the
best linear parameters of every trace follow from a small least-squares problem (variable
projection), so the grid scores each trace at its best, not at arbitrary amplitudes. The grid's
model curves depend only on the times, so they are computed once per table and the scoring of
many traces is a few matrix products.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fovflow.analysis.models import Model, Parameter
from fovflow.analysis.models.base import FloatArray

_RIDGE = 1e-10  # keeps the normal equations solvable where a basis column vanishes (all masked)


@dataclass(frozen=True)
class StartGrid:
    """Model curves on a grid over the free nonlinear parameters of one model and time axis.

    ``points[g]`` are the nonlinear values of grid point ``g``; ``basis[g, :, j]`` is the curve of
    free linear parameter ``j`` (scaled to unit norm by ``norms[g, j]``) and ``fixed[g]`` the
    model with every free linear parameter at 0.
    """

    model: Model
    shape: tuple[int, ...]  # points per nonlinear parameter; G is their product
    points: FloatArray  # (G, n_nonlinear)
    basis: FloatArray  # (G, T, n_linear)
    norms: FloatArray  # (G, n_linear)
    fixed: FloatArray  # (G, T)


def make_grid(model: Model, times_h: FloatArray, *, budget: int = 2000) -> StartGrid:
    """Evaluate `model` on about `budget` grid points over its free nonlinear parameters.

    Notes
    -----
    Costs ``budget * (n_linear + 1)`` model evaluations; do it once per time axis.
    """
    nonlinear = [p for p in model.free if not p.linear]
    linear = [p for p in model.free if p.linear]
    per_axis = max(3, round(budget ** (1 / len(nonlinear)))) if nonlinear else 1
    axes = [_axis(p, times_h, per_axis) for p in nonlinear]
    points = np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(nonlinear))
    base = {p.name: p.default for p in model.parameters} | {p.name: 0.0 for p in linear}
    n_t = len(times_h)
    basis = np.empty((len(points), n_t, len(linear)))
    fixed = np.empty((len(points), n_t))
    with np.errstate(all="ignore"):  # grid points at a model's pole give non-finite curves
        for g, point in enumerate(points):
            values = base | {p.name: v for p, v in zip(nonlinear, point, strict=True)}
            fixed[g] = model.evaluate(times_h, values)
            for j, p in enumerate(linear):
                basis[g, :, j] = model.evaluate(times_h, values | {p.name: 1.0}) - fixed[g]
    unusable = ~(np.isfinite(basis).all(axis=(1, 2)) & np.isfinite(fixed).all(axis=1))
    # The fit names a swappable pair in order, so starts come from the ordered half only, off
    # its diagonal: there the cost's slope across the diagonal vanishes and a fit stays on it.
    free_points = _assemble(model, points, np.ones((len(points), len(linear))))
    unusable |= np.array([bool(model.out_of_order(point, strict=False))
                          for point in free_points], dtype=bool)
    basis[unusable], fixed[unusable] = np.nan, np.nan  # scored as infinitely bad
    norms = np.linalg.norm(basis, axis=1)
    norms[(norms == 0) | unusable[:, None]] = 1.0
    shape = tuple(len(axis) for axis in axes) or (1,)
    return StartGrid(model, shape, points, basis / norms[:, None, :], norms, fixed)


def best_starts(grid: StartGrid, values: FloatArray, n_starts: int) -> list[FloatArray]:
    """Per trace, the best local minima over the grid, as free parameter vectors.

    A local minimum is a grid point scoring no worse than its neighbours along every axis;
    taking minima rather than the best points keeps the starts in different basins.

    Parameters
    ----------
    grid : StartGrid
        From `make_grid` on the traces' time axis.
    values : array (T, N)
        One trace per column; NaN marks a missing point.
    n_starts : int
        Starts per trace, best first.

    Returns
    -------
    list of arrays (k, n_free), 1 <= k <= n_starts
        One per trace, best first, in the order of ``grid.model.free``. A trace that no grid
        point fits within the linear parameters' bounds gets the model's defaults.

    Notes
    -----
    O(G T N) in three matrix products, then G N solves of n_linear x n_linear systems.
    """
    model = grid.model
    n_grid, _, n_lin = grid.basis.shape
    mask = np.isfinite(values).astype(float)
    y = np.where(mask > 0, values, 0.0)
    basis_y = np.einsum("gtj,tn->gjn", grid.basis, y, optimize=True)
    fixed_y = grid.fixed @ y
    fixed_fixed = (grid.fixed**2) @ mask
    basis_fixed = (grid.basis * grid.fixed[:, :, None]).transpose(0, 2, 1) @ mask
    gram = (grid.basis[:, :, :, None] * grid.basis[:, :, None, :]).transpose(0, 2, 3, 1) @ mask
    rhs = basis_y - basis_fixed  # B'(y - fixed) per grid point and trace
    residual_sq = (y**2).sum(axis=0) - 2 * fixed_y + fixed_fixed
    if n_lin:
        gram = gram.transpose(3, 0, 1, 2) + _RIDGE * np.eye(n_lin)  # (N, G, k, k)
        scaled = np.linalg.solve(gram, rhs.transpose(2, 0, 1)[..., None])[..., 0]  # (N, G, k)
        residual_sq = residual_sq - np.einsum("ngk,gkn->gn", scaled, rhs)
        linear = scaled / grid.norms[None]
        lin_params = [p for p in model.free if p.linear]
        lower = np.array([p.lower for p in lin_params])
        upper = np.array([p.upper for p in lin_params])
        feasible = ((linear >= lower) & (linear <= upper)).all(axis=2).T
        residual_sq = np.where(feasible, residual_sq, np.inf)
    else:
        linear = np.zeros((values.shape[1], n_grid, 0))
    residual_sq = np.where(np.isfinite(residual_sq), residual_sq, np.inf)
    residual_sq = _local_minima(residual_sq, grid.shape)
    best = np.argsort(residual_sq, axis=0)[:min(n_starts, n_grid)].T  # (N, k)
    scores = np.take_along_axis(residual_sq.T, best, 1)
    keep = np.isfinite(scores)  # a trace may have fewer minima than starts
    starts = _assemble(model, grid.points[best], np.take_along_axis(linear, best[..., None], 1))
    starts[~np.isfinite(scores[:, 0])] = [p.default for p in model.free]
    keep[:, 0] = True
    return [trace_starts[trace_keep] for trace_starts, trace_keep in zip(starts, keep, strict=True)]


def _local_minima(scores: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """`scores` (G, N) with every grid point that is not a local minimum set to infinity."""
    grid_scores = scores.T.reshape(-1, *shape)
    keep = np.isfinite(grid_scores)
    for axis in range(1, grid_scores.ndim):
        padding = [(0, 0)] * grid_scores.ndim
        padding[axis] = (1, 1)
        padded = np.pad(grid_scores, padding, constant_values=np.inf)
        size = grid_scores.shape[axis]
        keep &= grid_scores <= padded.take(range(size), axis=axis)
        keep &= grid_scores <= padded.take(range(2, size + 2), axis=axis)
    return np.where(keep, grid_scores, np.inf).reshape(len(grid_scores), -1).T


def _assemble(model: Model, nonlinear: FloatArray, linear: FloatArray) -> FloatArray:
    """Free parameter vectors from their nonlinear and linear parts, in ``model.free`` order."""
    columns, i_nl, i_lin = [], 0, 0
    for p in model.free:
        if p.linear:
            columns.append(linear[..., i_lin])
            i_lin += 1
        else:
            columns.append(nonlinear[..., i_nl])
            i_nl += 1
    return np.stack(columns, axis=-1)


def _axis(p: Parameter, times_h: FloatArray, n: int) -> FloatArray:
    """`n` grid values of one parameter, at the centres of equal cells of its search range.

    The onset ``t0`` is searched over the first three quarters of the recording (from a tenth of
    it before the first frame); other parameters over their bounds, geometrically when those
    span more than a factor 20, or a factor 10 around the default when unbounded.
    """
    if p.name == "t0":
        span = float(times_h.max() - times_h.min()) or 1.0
        lower = max(p.lower, float(times_h.min()) - 0.1 * span)
        upper = min(p.upper, float(times_h.min()) + 0.75 * span)
    else:
        size = 10 * max(abs(p.default), 1.0)
        lower = p.lower if np.isfinite(p.lower) else p.default - size
        upper = p.upper if np.isfinite(p.upper) else p.default + size
    if lower > 0 and upper / lower > 20:
        edges = np.geomspace(lower, upper, n + 1)
        return np.sqrt(edges[:-1] * edges[1:])
    edges = np.linspace(lower, upper, n + 1)
    return (edges[:-1] + edges[1:]) / 2
