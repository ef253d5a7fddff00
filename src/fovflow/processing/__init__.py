"""Per-FOV image processing: pure functions over (lazy) stacks of frames, no I/O.

Each step reads one frame at a time and calls ``progress(done, total)`` after each frame; the
callback may raise `fovflow.errors.Cancelled` to stop the step at once.
"""

from fovflow.processing.background import correct_background, estimate_background
from fovflow.processing.extraction import (
    DEFAULT_FEATURES,
    FEATURES,
    Cells,
    extract_features,
    register_feature,
)
from fovflow.processing.overlaps import match_regions
from fovflow.processing.segmentation import (
    METHODS,
    estimate_diameter,
    register_method,
    segment_cells,
)
from fovflow.processing.tracking import track_cells

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "METHODS",
    "Cells",
    "correct_background",
    "estimate_background",
    "estimate_diameter",
    "extract_features",
    "match_regions",
    "register_feature",
    "register_method",
    "segment_cells",
    "track_cells",
]
