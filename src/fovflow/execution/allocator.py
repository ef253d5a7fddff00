"""Keep freed frame-sized buffers inside the worker process while a FOV runs; hand them back
after it.

glibc returns large freed blocks to the kernel (blocks above ``M_MMAP_THRESHOLD`` are
unmapped, and free memory at the top of the heap above ``M_TRIM_THRESHOLD`` is trimmed), so
every frame's temporaries are page-faulted in again, zero-filled by the kernel. Measured on a
1024x1024 FOV of 30 frames: 9,230 minor page faults per frame with glibc's defaults, 540 with
the buffers kept, and the kernel's share of the time 1.46 s -> 0.5 s (benchmarks/RESULTS.md).

Kept buffers fragment the heap a little more with every FOV (RSS +12 MB per 2048x2048 FOV of
60 frames), so `release_freed_buffers` returns free memory to the kernel once a FOV ends.
"""

from __future__ import annotations

import ctypes
import functools
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024**2  # glibc's ceiling on 64-bit: a 2048x2048 float64 frame
_TRIM_THRESHOLD = 1024**3


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    # glibc has both; without them (musl, others) the allocator keeps its defaults.
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@functools.cache
def reuse_freed_buffers() -> bool:
    """Tune this process's allocator once (glibc only); True if it took effect.

    Peak memory is unchanged: the process keeps what it already needed at its peak, up to
    1 GiB of it free for the next frame, rather than returning and re-faulting it.
    """
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def release_freed_buffers() -> None:
    """Give the process's free memory back to the kernel (between FOVs; a few ms)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
