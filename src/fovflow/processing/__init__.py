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
from fovflow.processing.segmentation import segment_frame, segment_phase_contrast
from fovflow.processing.tracking import match_regions, track_cells

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "Cells",
    "correct_background",
    "estimate_background",
    "extract_features",
    "match_regions",
    "register_feature",
    "segment_frame",
    "segment_phase_contrast",
    "track_cells",
]
