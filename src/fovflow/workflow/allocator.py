"""Keep freed frame-sized buffers inside the worker process instead of handing them back.

glibc returns large freed blocks to the kernel (blocks above ``M_MMAP_THRESHOLD`` are
unmapped, and free memory at the top of the heap above ``M_TRIM_THRESHOLD`` is trimmed), so
every frame's temporaries are page-faulted in again, zero-filled by the kernel. Measured on a
1024x1024 FOV: 9,200 minor page faults per frame, and the steps took about twice as long as
with the buffers kept (see benchmarks/RESULTS.md). Two workers faulting at once also slow
each other down, which is what held the engine's scaling back.
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
def reuse_freed_buffers() -> bool:
    """Tune this process's allocator once (glibc only); True if it took effect.

    Peak memory is unchanged: the process keeps what it already needed at its peak, up to
    1 GiB of it free for the next frame, rather than returning and re-faulting it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library symbol to call: leave the defaults
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
