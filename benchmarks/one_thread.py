"""Thread limits for benchmarks that time one core: call `limit_threads` before numpy,
OpenCV or scipy are imported, which read these variables once, at import."""

from __future__ import annotations

import os

_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "OPENCV_FOR_THREADS_NUM")


def limit_threads() -> None:
    """One thread for every numeric library of this process and its children."""
    for variable in _VARIABLES:
        os.environ[variable] = "1"
