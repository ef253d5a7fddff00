"""Fit a kinetic model to many traces: bounded least squares per trace from a global search.

A grid search with the linear parameters solved exactly (see `_starts`) finds each trace's best
local minima; `scipy.optimize.least_squares` (trust region reflective, within the parameters'
bounds, forward-difference Jacobians in one broadcast call) polishes the best `n_starts` of them
and the lowest cost wins. On simulated traces of every built-in model one start reaches the
global optimum (see `benchmarks/RESULTS.md`). Traces are fitted in chunks, serially or with the
engine's executors; a chunk is fitted by the top-level `fit_chunk`, so worker processes run it.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, least_squares
from threadpoolctl import threadpool_limits

from fovflow.analysis._jacobian import batch_evaluator, forward_jacobian
from fovflow.analysis._starts import StartGrid, best_starts, make_grid
from fovflow.analysis._uncertainty import parameter_uncertainty
from fovflow.analysis.models import Model, get_model
from fovflow.analysis.models.base import FloatArray
from fovflow.errors import Cancelled, ConfigError
from fovflow.execution import CancelToken, Executor, ExecutorSpec, TaskContext
from fovflow.progress import Progress

RESULT_COLUMNS = ("success", "r_squared", "rmse", "cost", "n_points", "at_bound",
                  "not_identifiable", "evaluations", "message")
UNCERTAINTY_SUFFIXES = ("_se", "_ci_low", "_ci_high")
# Evaluations per free parameter: converged fits need tens; slow valleys (free km) several
# hundred; scipy's default (100) stopped some of those before they converged.
_BUDGET_PER_PARAMETER = 1000
_AT_BOUND = 1e-6  # relative distance to a bound (or to the other rate of an ordered pair)


def uncertainty_columns(model: Model) -> list[str]:
    """``<param>_se, <param>_ci_low, <param>_ci_high`` for every free parameter."""
    return [p.name + suffix for p in model.free for suffix in UNCERTAINTY_SUFFIXES]


@dataclass(frozen=True)
class FitSettings:
    """Which model to fit and how: picklable, so worker processes rebuild the same model.

    Use `FitSettings.create` to build it from mappings.
    """

    model: str
    fixed: tuple[tuple[str, float], ...] = ()
    bounds: tuple[tuple[str, tuple[float, float]], ...] = ()
    plugins: tuple[str, ...] = ()
    n_starts: int = 1

    @classmethod
    def create(
        cls,
        model: str,
        *,
        fixed: Mapping[str, float] | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        plugins: Sequence[str] = (),
        n_starts: int = 1,
    ) -> FitSettings:
        """Settings with `fixed` values and new `bounds` for some parameters; checked at once."""
        if n_starts < 1:
            raise ConfigError(f"n_starts must be at least 1, not {n_starts}")
        settings = cls(model, tuple(sorted((fixed or {}).items())),
                       tuple(sorted((bounds or {}).items())), tuple(map(str, plugins)), n_starts)
        settings.resolve()
        return settings

    def resolve(self) -> Model:
        """The constrained model (cached per process)."""
        return _resolve(self)


@functools.lru_cache(maxsize=16)
def _resolve(settings: FitSettings) -> Model:
    model = get_model(settings.model, settings.plugins)
    return model.constrain(fixed=dict(settings.fixed), bounds=dict(settings.bounds))


@dataclass(frozen=True)
class TraceFit:
    """The fit of one trace.

    `values` holds every parameter (fixed ones too), `uncertainty` the `uncertainty_columns`.
    `at_bound` names the parameters a bound decides (``"delta=lower beta=upper"``, or
    ``"delta=beta"`` where an ordered pair meets) and `not_identifiable` those the data do not
    fix (space-separated). `success` means the optimiser converged; `message` says why not.
    """

    values: dict[str, float]
    uncertainty: dict[str, float]
    success: bool
    r_squared: float
    rmse: float
    cost: float
    n_points: int
    at_bound: str
    not_identifiable: str
    evaluations: int
    message: str


def fit_trace(model: Model, times_h: FloatArray, trace: FloatArray, starts: FloatArray) -> TraceFit:
    """Fit one trace from each start (rows of free parameter values) and keep the best.

    The residuals are divided by the trace's largest absolute value, so `cost` is
    ``0.5 * sum(residual**2) / scale**2`` whatever the trace's brightness. A trace with fewer
    valid points than free parameters plus one, or none at all, is returned as failed. When the
    best fit has a swappable pair out of order it is refitted within the ordered part of the
    bounds (`Model.swappable`).
    """
    valid = np.isfinite(trace)
    t, y = times_h[valid], trace[valid]
    if len(y) <= len(model.free):
        return _failed(model, len(y), f"{len(y)} valid points, need more than {len(model.free)}")
    problem = _Problem(model, t, y)
    best = None
    evaluations = 0
    with np.errstate(all="ignore"):
        for start in starts:
            result = problem.solve(start, problem.bounds)
            evaluations += result.nfev
            if math.isfinite(result.cost) and (best is None or result.cost < best.cost):
                best = result
        if best is not None and model.out_of_order(best.x):
            best = problem.solve_in_order(best.x)
            evaluations += best.nfev
    if best is None:
        return _failed(model, len(y), "no start gave finite residuals")
    return problem.summarise(best, evaluations)


class _Problem:
    """One trace's least-squares problem: residuals scaled by the trace's maximum."""

    def __init__(self, model: Model, t: FloatArray, y: FloatArray) -> None:
        self.model, self.y = model, y
        self.scale = float(np.max(np.abs(y))) or 1.0
        self.bounds = (np.array([p.lower for p in model.free]),
                       np.array([p.upper for p in model.free]))
        self.evaluate = batch_evaluator(model, t)
        self.everywhere = np.ones((1, len(y)), dtype=bool)

    def residuals(self, x: FloatArray) -> FloatArray:
        return (self.evaluate(x[None])[0] - self.y) / self.scale

    def jacobian(self, x: FloatArray) -> FloatArray:
        return forward_jacobian(self.evaluate, x[None], self.bounds[1], self.everywhere,
                                np.array([[self.scale]]))[0]

    def solve(self, start: FloatArray, bounds: tuple[FloatArray, FloatArray]) -> OptimizeResult:
        return least_squares(self.residuals, np.clip(start, *bounds), jac=self.jacobian,
                             bounds=bounds, method="trf", x_scale="jac",
                             max_nfev=_BUDGET_PER_PARAMETER * len(start))

    def solve_in_order(self, x: FloatArray) -> OptimizeResult:
        """Refit from `x` with its out-of-order pairs swapped, each pair's first parameter
        bounded from below and its second from above by their geometric mean, a box inside
        the ordered part of the bounds."""
        lower, upper = (b.copy() for b in self.bounds)
        start = x.copy()
        for i, j in self.model.out_of_order(x):
            start[[i, j]] = x[[j, i]]
            middle = math.sqrt(x[i] * x[j]) if x[i] > 0 else (x[i] + x[j]) / 2
            lower[i], upper[j] = middle, middle
        return self.solve(start, (lower, upper))

    def summarise(self, result: OptimizeResult, evaluations: int) -> TraceFit:
        model, free = self.model, self.model.free
        x = result.x
        rss = 2 * result.cost * self.scale**2
        total = float(np.sum((self.y - self.y.mean()) ** 2))
        spread = parameter_uncertainty(self.jacobian(x) * self.scale, rss, x, self.bounds)
        uncertainty = {}
        for k, p in enumerate(free):
            uncertainty |= dict(zip((p.name + s for s in UNCERTAINTY_SUFFIXES),
                                    (spread.errors[k], spread.lower[k], spread.upper[k]),
                                    strict=True))
        message = "" if result.success else (f"stopped after {result.nfev} evaluations: "
                                             f"{result.message}")
        return TraceFit(
            model.full_values(x), {k: float(v) for k, v in uncertainty.items()},
            bool(result.success), 1.0 - rss / total if total > 0 else math.nan,
            math.sqrt(rss / len(self.y)), float(result.cost), len(self.y),
            " ".join(self._decided_by_bounds(x)),
            " ".join(p.name for p, ok in zip(free, spread.identifiable, strict=True) if not ok),
            evaluations, message)

    def _decided_by_bounds(self, x: FloatArray) -> list[str]:
        free = self.model.free
        decided = []
        for k, p in enumerate(free):
            for side, bound in (("lower", p.lower), ("upper", p.upper)):
                if math.isfinite(bound) and abs(x[k] - bound) <= _AT_BOUND * max(abs(bound),
                                                                                 1e-300):
                    decided.append(f"{p.name}={side}")
        names = {p.name: k for k, p in enumerate(free)}
        for first, second in self.model.swappable:
            if first in names and second in names:
                a, b = x[names[first]], x[names[second]]
                if abs(a - b) <= _AT_BOUND * max(abs(a), abs(b)):
                    decided.append(f"{first}={second}")
        return decided


def _failed(model: Model, n_points: int, message: str) -> TraceFit:
    return TraceFit({name: math.nan for name in model.names},
                    dict.fromkeys(uncertainty_columns(model), math.nan), False, math.nan,
                    math.nan, math.nan, n_points, "", "", 0, message)


@dataclass(frozen=True)
class FitChunk:
    """Consecutive traces (columns `first` onwards of a table) on one time axis."""

    settings: FitSettings
    times_h: FloatArray
    values: FloatArray  # (T, n)
    first: int


def fit_chunk(chunk: FitChunk, context: TaskContext) -> pd.DataFrame:
    """Fit every trace of a chunk (an executor task); checks cancellation before each trace.

    Returns one row per trace, indexed by trace number, with the parameters and
    `RESULT_COLUMNS`.
    """
    model = chunk.settings.resolve()
    # One BLAS thread wherever the chunk runs, as in the engine's worker processes: the order of
    # a product's sums depends on the thread count, and the optimiser's path on those last
    # digits (a serial fit's interval bound differed from a worker's by 3e-5 of it).
    with threadpool_limits(1, user_api="blas"):
        grid = _grid(chunk.settings, chunk.times_h.tobytes())
        starts = best_starts(grid, chunk.values, chunk.settings.n_starts)
        fits = []
        for i in range(chunk.values.shape[1]):
            context.cancel.raise_if_cancelled()
            fits.append(fit_trace(model, chunk.times_h, chunk.values[:, i], starts[i]))
    return _frame(model, fits, chunk.first)


def _failed_chunk(chunk: FitChunk, error: str | None) -> pd.DataFrame:
    """Rows for the traces of a chunk whose task failed (e.g. its worker process died)."""
    model = chunk.settings.resolve()
    return _frame(model, [_failed(model, 0, f"not fitted: {error}")] * chunk.values.shape[1],
                  chunk.first)


def _frame(model: Model, fits: list[TraceFit], first: int) -> pd.DataFrame:
    rows = [fit.values | fit.uncertainty | {c: getattr(fit, c) for c in RESULT_COLUMNS}
            for fit in fits]
    index = pd.RangeIndex(first, first + len(rows), name="trace")
    return pd.DataFrame(rows, index=index, columns=_columns(model))


def _columns(model: Model) -> list[str]:
    return [*model.names, *uncertainty_columns(model), *RESULT_COLUMNS]


@functools.lru_cache(maxsize=8)
def _grid(settings: FitSettings, times: bytes) -> StartGrid:
    return make_grid(settings.resolve(), np.frombuffer(times, dtype=np.float64))


def fit_traces(
    settings: FitSettings,
    times_h: FloatArray,
    values: FloatArray,
    *,
    n_workers: int | None = 1,
    executor: Executor | None = None,
    chunk_size: int | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """Fit the model of `settings` to every column of `values`.

    Parameters
    ----------
    settings : FitSettings
        Model, fixed values, bounds, plugins and starts per trace.
    times_h : array (T,)
        Times in hours, shared by all traces.
    values : array (T, N)
        One trace per column; NaN marks missing points.
    n_workers : int or None
        Without an `executor`: 1 fits in the caller's thread, more in as many worker
        processes (None: one per core).
    executor : Executor, optional
        A running executor to fit on instead (it is not shut down); its `n_workers` sets the
        chunks.
    chunk_size : int, optional
        Traces per task; by default about four tasks per worker, at most 64 traces each.
    progress : callable, optional
        ``progress(done, total)`` after each chunk; it may raise `Cancelled` to stop.
    cancel : CancelToken, optional
        Another way to stop: set it from any thread.

    Returns
    -------
    DataFrame
        One row per trace (index = column number in `values`): every parameter, then
        `RESULT_COLUMNS`. Failed traces have NaN parameters and ``success`` False.

    Raises
    ------
    Cancelled
        When cancelled; nothing is returned.
    """
    times_h = np.ascontiguousarray(times_h, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(len(times_h), -1)
    total = values.shape[1]
    spec = fitting_spec(n_workers)
    workers = executor.n_workers if executor is not None else spec.workers
    size = chunk_size or max(1, min(64, math.ceil(total / (4 * workers))))
    chunks = [FitChunk(settings, times_h, values[:, i:i + size], i)
              for i in range(0, total, size)]
    token = cancel or CancelToken()
    parts, done, stopped = [], 0, False
    running: contextlib.AbstractContextManager[Executor] = (
        contextlib.nullcontext(executor) if executor is not None
        else (spec if len(chunks) > 1 else ExecutorSpec("serial", 1)).build())
    with running as pool:
        for outcome in pool.map_unordered(fit_chunk, chunks, cancel=token):
            if outcome.cancelled or stopped:
                stopped = True
                continue
            part = outcome.result if outcome.ok else _failed_chunk(outcome.item, outcome.error)
            parts.append(part)
            done += len(part)
            if progress is not None:
                try:
                    progress(done, total)
                except Cancelled:
                    token.cancel()
                    stopped = True
    if stopped or token.cancelled:
        raise Cancelled
    return pd.concat(parts).sort_index() if parts else pd.DataFrame(
        columns=_columns(settings.resolve()))


def fitting_spec(n_workers: int | None) -> ExecutorSpec:
    """Fits in the caller's thread for one worker, else in `n_workers` worker processes (None:
    one per core)."""
    spec = ExecutorSpec("process", n_workers)
    return spec if spec.workers > 1 else ExecutorSpec("serial", 1)
