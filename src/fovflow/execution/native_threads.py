"""One thread per worker inside numerical libraries: the executor's workers are the parallelism.

A spawned worker imports the caller's main module, and with it numpy, before any fovflow code
runs in it, so OpenBLAS has already started a thread per core; after each matrix product
those threads spin waiting for more work. Measured on 4 FOVs of 1024x1024 x 30 frames, serial:
2.9 s of CPU in OpenBLAS's spare thread against 5.5 s in the main thread, for no gain in wall
time; with two worker processes that spinning takes the other worker's core (benchmarks/
RESULTS.md, Engine). Environment variables only reach libraries loaded later, so pools already
loaded are resized through threadpoolctl, and OpenCV through its own call.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import cv2
import numcodecs.blosc
from threadpoolctl import threadpool_limits

ONE_THREAD_ENVIRONMENT = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                  "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")}


def use_one_thread_per_worker() -> None:
    """For a worker process: one thread in BLAS, OpenMP, OpenCV and Blosc from now on."""
    os.environ.update(ONE_THREAD_ENVIRONMENT)  # for libraries loaded later
    threadpool_limits(1)
    cv2.setNumThreads(1)
    numcodecs.blosc.use_threads = False  # else Blosc starts a thread per core in a main thread


@contextlib.contextmanager
def one_thread_per_worker() -> Iterator[None]:
    """For workers that are threads of the caller's process: the same, then the caller's own.

    Blosc needs nothing here: it starts no threads when called outside the main thread. OpenMP
    keeps its thread count per calling thread, so each worker thread also calls
    `use_one_openmp_thread` as it starts.
    """
    opencv_threads = cv2.getNumThreads()
    with threadpool_limits(1):
        cv2.setNumThreads(1)
        try:
            yield
        finally:
            cv2.setNumThreads(opencv_threads)


def use_one_openmp_thread() -> None:
    """One thread in OpenMP regions this thread starts (OpenMP's setting is per thread)."""
    threadpool_limits(1, user_api="openmp")
