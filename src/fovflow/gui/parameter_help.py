"""What each processing parameter does and its unit, for the parameter table's unit column and
help line (a parameter not listed here, e.g. a plugin's, shows its name only)."""

from __future__ import annotations

from fovflow.execution import EXECUTORS

# name in the table -> (unit, what it does)
STEP_HELP: dict[str, tuple[str, str]] = {
    "fovs": ("", "FOVs to process, e.g. 0-9,12 (all: every FOV of the file)"),
    "z": ("", "Z stacks: a plane index, max or mean projection per frame (none: a 2-D file)"),
    "n_workers": ("", "worker processes or threads that process FOVs at the same time"),
    "max_in_flight": ("FOVs", "most FOVs in flight at once, which bounds memory (auto: "
                              "n_workers)"),
    "executor": ("", f"how FOVs run in parallel: {', '.join(EXECUTORS)} (serial: one at a time, "
                     "for debugging)"),
    "background.weight": ("0-1", "fraction of the estimated background surface subtracted "
                                 "from the fluorescence"),
    "background.tile_size": ("px", "side of the tiles whose median background is smoothed "
                                   "into a surface"),
    "background.dilation": ("px", "how far around the cells pixels are left out of the "
                                  "background estimate"),
    "tracking.min_iou": ("0-1", "smallest overlap (intersection over union) for a cell in "
                                "two frames to be the same cell"),
    "tracking.min_size": ("px²", "smallest region kept as a cell"),
    "tracking.max_size": ("px²", "largest region kept as a cell (none: no upper bound)"),
    "tracking.connectivity": ("4 or 8", "pixel neighbourhood of a region"),
    "tracking.max_gap": ("frames", "most consecutive frames a cell may be missing and keep "
                                   "its track"),
    "tracking.split_merged": ("true/false", "split a region holding two cells of the previous "
                                            "frame between them"),
    "tracking.min_merged_share": ("0-1", "with split_merged: a cell with this share of itself "
                                         "in a region holding most of another also gets a part "
                                         "(a daughter joined with her neighbour)"),
    "tracking.split_joined_daughters": ("true/false", "split a mother's last region between "
                                                      "her daughters when it was the two of "
                                                      "them joined, as the next frame shows"),
    "tracking.border_daughters": ("true/false", "judge a daughter the frame's edge cuts by "
                                                "the round cell her visible part shows, and "
                                                "keep a division whose daughter leaves the "
                                                "frame (cells dividing near the edge)"),
    "tracking.min_joined_cover": ("0-1", "smallest overlap (IoU) of that region with the two "
                                         "daughters together"),
    "tracking.rejoin_pieces": ("true/false", "join regions cut out of one cell of the previous "
                                             "frame along a long border (for split: brightness)"),
    "tracking.min_rejoin_border": ("×", "shortest shared border to rejoin, in equivalent "
                                        "diameters of the smaller piece"),
    "tracking.divisions": ("true/false", "detect divisions: daughters get their mother as "
                                         "parent"),
    "tracking.min_daughter_overlap": ("0-1", "share of a daughter's area that must lie inside "
                                             "its mother"),
    "tracking.max_division_area_change": ("0-1", "most relative difference between the "
                                                 "daughters' summed area and the mother's"),
    "tracking.min_daughter_balance": ("0-1", "smallest area of the smaller daughter relative "
                                             "to the larger"),
    "tracking.min_daughter_frames": ("frames", "a division whose daughter vanishes sooner was "
                                               "a passing segmentation cut: undone"),
    "tracking.drift": ("true/false", "estimate and undo the stage's shift between frames"),
    "tracking.drift_downsample": ("×", "reduction of the frames for the shift estimate"),
    "extraction.min_length": ("frames", "a cell present in fewer frames is not good (left out "
                                        "of merged samples)"),
    "extraction.border": ("px", "a cell closer than this to the frame's edge in any frame is "
                                "not good (0: no exclusion)"),
}
