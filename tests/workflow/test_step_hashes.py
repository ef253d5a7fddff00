"""Step digests: a run folder of an earlier version resumes with only what changed redone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fovflow.io.metadata import DatasetMetadata
from fovflow.workflow.config import WorkflowConfig
from fovflow.workflow.steps import step_hashes

METADATA = DatasetMetadata(
    path=Path("movie.ome.tif"), format="ome-tiff", n_fovs=2, n_frames=8, n_channels=2,
    channel_names=("Phase", "GFP"), height=96, width=128, dtype="uint16",
    times=np.arange(16, dtype=float).reshape(2, 8) * 600, time_unit="s", pixel_size_um=0.65,
    fov_names=("a", "b"))
CONFIG = WorkflowConfig(input=Path("movie.ome.tif"), output=Path("out"), fl_channels=(1,))
# What commit e809d5c (before the background model and rejoin_pieces) computed for CONFIG: the
# digests its run folders hold in their manifests.
EARLIER = {"copy": "668c5738ed873d8c", "segmentation": "08bcd6909cf923e7",
           "background": "cc9356a3bdec1c2b", "tracking": "47858b46b8fb349f",
           "extraction": "e1d739ee597fee59"}


def test_an_earlier_run_folder_redoes_only_what_the_changed_defaults_change() -> None:
    now = step_hashes(CONFIG, METADATA, "fingerprint")
    # The corrected fluorescence became its model: background and extraction are redone.
    assert {step for step in EARLIER if now[step] != EARLIER[step]} == {"background",
                                                                          "extraction"}
    pixels = step_hashes(replace(CONFIG, corrected="pixels"), METADATA, "fingerprint")
    assert pixels == EARLIER  # with the corrected pixels kept, nothing at all


def test_rejoining_pieces_redoes_tracking_and_what_follows() -> None:
    now = step_hashes(CONFIG, METADATA, "fingerprint")
    rejoining = step_hashes(replace(CONFIG, tracking={"rejoin_pieces": True}), METADATA,
                            "fingerprint")
    assert {step for step in now if now[step] != rejoining[step]} == {"tracking", "extraction"}
    border = step_hashes(replace(CONFIG, tracking={"rejoin_pieces": True,
                                                   "min_rejoin_border": 0.6}),
                         METADATA, "fingerprint")
    assert border["tracking"] != rejoining["tracking"]


def test_bacteria_without_faint_seams_and_pale_cells_segments_as_before_them() -> None:
    # b32c7400c84caceb: what commit f424a92, before the two parameters, computed for
    # `--method bacteria`.
    before = {"method": "bacteria", "faint_seam": 0.0, "pale": 0.0}
    old = step_hashes(replace(CONFIG, segmentation=before), METADATA, "fingerprint")
    now = step_hashes(replace(CONFIG, segmentation={"method": "bacteria"}), METADATA,
                      "fingerprint")
    assert old["segmentation"] == "b32c7400c84caceb" != now["segmentation"]


def test_tracking_keys_added_later_count_only_where_they_change_the_tracking() -> None:
    def tracking_digest(tracking: dict[str, object]) -> str:
        return step_hashes(replace(CONFIG, tracking=tracking), METADATA, "fingerprint")[
            "tracking"]

    default = tracking_digest({})
    assert tracking_digest({"min_joined_cover": 0.5}) == default  # its switch is off
    assert tracking_digest({"min_merged_share": 0.5}) == default  # what split_merged did
    assert tracking_digest({"split_joined_daughters": True}) != default
    merged = tracking_digest({"split_merged": True})
    assert merged != default == tracking_digest({"min_merged_share": 0.2})
    assert tracking_digest({"split_merged": True, "min_merged_share": 0.2}) != merged


def test_the_brightness_splits_tracking_digest_is_that_of_the_same_tracking_given() -> None:
    brightness = {"method": "fluorescence", "split": "brightness"}
    suited = step_hashes(replace(CONFIG, segmentation=brightness), METADATA, "fingerprint")
    given = step_hashes(replace(CONFIG, segmentation=brightness, tracking={
        "rejoin_pieces": True, "min_daughter_overlap": 0.4, "split_joined_daughters": True}),
        METADATA, "fingerprint")
    plain = step_hashes(replace(CONFIG, segmentation=brightness, tracking={
        "rejoin_pieces": False, "min_daughter_overlap": 0.5, "split_joined_daughters": False}),
        METADATA, "fingerprint")
    assert suited == given and suited["tracking"] != plain["tracking"]


def test_steps_whose_algorithm_changed_are_redone_only_where_it_changed() -> None:
    # What commit 6b1157c, before the brightness split's border, the retrained network and
    # the wider rejoin and merged-share rules, computed: (segmentation, tracking) digests.
    brightness = {"method": "fluorescence", "split": "brightness"}
    suited = {"rejoin_pieces": True, "min_daughter_overlap": 0.4, "split_joined_daughters": True}
    earlier = {
        "brightness": ({"segmentation": brightness, "tracking": suited},
                       ("22d7fcfdbbdac7fb", "fbc533aede2cfb4a")),
        "shape": ({"segmentation": {"method": "fluorescence", "split": "shape"}},
                  ("d12c1687417374a4", "1b209bb4373e37df")),
        "shape 40 px": ({"segmentation": {"method": "fluorescence", "split": "shape",
                                          "diameter": 40}},
                        ("1b1f12fdc3bb6c12", "4f8012ebdf4272c8")),
        "learned": ({"segmentation": {"method": "learned"}},
                    ("7a71941ba9104ba1", "6cede6f765cf8d40")),
        "rejoin": ({"tracking": {"rejoin_pieces": True}},
                   ("08bcd6909cf923e7", "7052e925b5f2e866")),
        "merged 0.2": ({"tracking": {"split_merged": True, "min_merged_share": 0.2}},
                       ("08bcd6909cf923e7", "10240a3cf8e624e8")),
        "merged": ({"tracking": {"split_merged": True}},
                   ("08bcd6909cf923e7", "8ba7a482c31ae445")),
    }
    redone = {}
    for name, (changes, (segmentation, tracking)) in earlier.items():
        now = step_hashes(replace(CONFIG, **changes), METADATA, "fingerprint")
        redone[name] = (now["segmentation"] != segmentation, now["tracking"] != tracking)
    # The fluorescence diameter `auto` measures changed after it (`_nuclei_diameter`).
    assert redone == {"brightness": (True, True), "shape": (True, True),
                      "shape 40 px": (False, False),
                      "learned": (True, True), "rejoin": (False, True),
                      "merged 0.2": (False, True), "merged": (False, False)}
