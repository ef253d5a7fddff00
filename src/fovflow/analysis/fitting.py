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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from fovflow.analysis._jacobian import batch_evaluator, forward_jacobian
from fovflow.analysis._starts import StartGrid, best_starts, make_grid
from fovflow.analysis.models import Model, get_model
from fovflow.analysis.models.base import FloatArray
from fovflow.errors import Cancelled, ConfigError
from fovflow.workflow.cancel import CancelToken
from fovflow.workflow.executors import Executor, TaskContext, make_executor

Progress = Callable[[int, int], None]
RESULT_COLUMNS = ("success", "r_squared", "rmse", "cost", "n_points", "message")


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
    """The fit of one trace; `values` holds every parameter (fixed ones too)."""

    values: dict[str, float]
    success: bool
    r_squared: float
    rmse: float
    cost: float
    n_points: int
    message: str


def fit_trace(model: Model, times_h: FloatArray, trace: FloatArray, starts: FloatArray) -> TraceFit:
    """Fit one trace from each start (rows of free parameter values) and keep the best.

    The residuals are divided by the trace's largest absolute value, so `cost` is
    ``0.5 * sum(residual**2) / scale**2`` whatever the trace's brightness. A trace with fewer
    valid points than free parameters plus one, or none at all, is returned as failed.
    """
    valid = np.isfinite(trace)
    t, y = times_h[valid], trace[valid]
    free = model.free
    if len(y) <= len(free):
        return _failed(model, len(y), f"{len(y)} valid points, need more than {len(free)}")
    scale = float(np.max(np.abs(y))) or 1.0
    lower = np.array([p.lower for p in free])
    upper = np.array([p.upper for p in free])

    evaluate = batch_evaluator(model, t)
    everywhere = np.ones((1, len(y)), dtype=bool)

    def residuals(x: FloatArray) -> FloatArray:
        return (evaluate(x[None])[0] - y) / scale

    def jacobian(x: FloatArray) -> FloatArray:
        return forward_jacobian(evaluate, x[None], upper, everywhere, np.array([[scale]]))[0]

    best = None
    with np.errstate(all="ignore"):
        for start in starts:
            result = least_squares(residuals, np.clip(start, lower, upper), jac=jacobian,
                                   bounds=(lower, upper), method="trf", x_scale="jac")
            if math.isfinite(result.cost) and (best is None or result.cost < best.cost):
                best = result
    if best is None:
        return _failed(model, len(y), "no start gave finite residuals")
    rss = 2 * best.cost * scale**2
    total = float(np.sum((y - y.mean()) ** 2))
    return TraceFit(model.full_values(best.x), bool(best.success),
                    1.0 - rss / total if total > 0 else math.nan, math.sqrt(rss / len(y)),
                    float(best.cost), len(y), "" if best.success else best.message)


def _failed(model: Model, n_points: int, message: str) -> TraceFit:
    return TraceFit({name: math.nan for name in model.names}, False, math.nan, math.nan,
                    math.nan, n_points, message)


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
    rows = [fit.values | {c: getattr(fit, c) for c in RESULT_COLUMNS} for fit in fits]
    index = pd.RangeIndex(first, first + len(rows), name="trace")
    return pd.DataFrame(rows, index=index, columns=[*model.names, *RESULT_COLUMNS])


@functools.lru_cache(maxsize=8)
def _grid(settings: FitSettings, times: bytes) -> StartGrid:
    return make_grid(settings.resolve(), np.frombuffer(times, dtype=np.float64))


def fit_traces(
    settings: FitSettings,
    times_h: FloatArray,
    values: FloatArray,
    *,
    n_workers: int = 1,
    executor: str | Executor = "process",
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
    n_workers : int
        1 fits in the caller's thread; more use `executor` (``process``, ``thread``, ``dask``).
    executor : str or Executor
        An executor's kind, or a running executor to reuse (it is not shut down).
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
    if isinstance(executor, Executor):
        n_workers = executor.n_workers
    size = chunk_size or max(1, min(64, math.ceil(total / (4 * n_workers))))
    chunks = [FitChunk(settings, times_h, values[:, i:i + size], i)
              for i in range(0, total, size)]
    token = cancel or CancelToken()
    parts, done, stopped = [], 0, False
    if isinstance(executor, Executor):
        running: contextlib.AbstractContextManager[Executor] = contextlib.nullcontext(executor)
    else:
        kind = "serial" if n_workers == 1 or len(chunks) == 1 else executor
        running = make_executor(kind, n_workers=n_workers)
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
    model = settings.resolve()
    columns = [*model.names, *RESULT_COLUMNS]
    return pd.concat(parts).sort_index() if parts else pd.DataFrame(columns=columns)
