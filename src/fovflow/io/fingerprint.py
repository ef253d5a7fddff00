"""The input's fingerprint: what identifies a microscopy file's content wherever it lies.

Its own module so that the readers of the run folder (`fovflow.io.ngff`) check an input
without importing the writers (`fovflow.io.store`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FINGERPRINT_SPAN = 1 << 20  # bytes hashed at each end of an input file


def input_fingerprint(path: Path) -> str:
    """What identifies an input file's content wherever it lies: sha256 of its size and of its
    first and last `FINGERPRINT_SPAN` bytes (the whole file if it is smaller).

    Those ends hold the headers and metadata blocks of OME-TIFF, ND2 and CZI files (with the
    acquisition's UUIDs and time stamps), so a copy or a move keeps the fingerprint and
    another recording does not. O(1): two reads of 1 MiB.
    """
    digest = hashlib.sha256()
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        digest.update(str(size).encode())
        digest.update(file.read(FINGERPRINT_SPAN))
        if size > FINGERPRINT_SPAN:
            file.seek(max(FINGERPRINT_SPAN, size - FINGERPRINT_SPAN))
            digest.update(file.read(FINGERPRINT_SPAN))
    return digest.hexdigest()
