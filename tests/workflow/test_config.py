"""Effective step parameters: the algorithms' defaults, those that suit the segmentation
method, and the user's overrides, in that order."""

from __future__ import annotations

import pytest

from fovflow.errors import ConfigError
from fovflow.processing.segmentation import SUITED_TRACKING
from fovflow.processing.tracking import track_cells
from fovflow.workflow.config import _defaults_of, effective_parameters

BRIGHTNESS = {"segmentation": {"method": "fluorescence", "split": "brightness"}}


def test_the_brightness_split_brings_the_tracking_that_suits_its_labels() -> None:
    tracking = effective_parameters(BRIGHTNESS)["tracking"]
    own = _defaults_of(track_cells)
    changed = {name: value for name, value in tracking.items() if value != own[name]}
    assert changed == {"rejoin_pieces": True, "min_daughter_overlap": 0.4,
                       "split_joined_daughters": True}
    assert effective_parameters({"segmentation": {"method": "fluorescence"}}) == \
        effective_parameters(BRIGHTNESS)  # the fluorescence method's default split
    shape = {"segmentation": {"method": "fluorescence", "split": "shape"}}
    assert effective_parameters(shape)["tracking"] == own
    assert effective_parameters({"segmentation": {"method": "phase"}})["tracking"] == own


def test_the_users_tracking_wins_over_the_methods_and_is_checked_like_any() -> None:
    tracking = effective_parameters({**BRIGHTNESS, "tracking": {
        "rejoin_pieces": False, "min_daughter_overlap": 0.6}})["tracking"]
    assert not tracking["rejoin_pieces"] and tracking["min_daughter_overlap"] == 0.6
    assert tracking["split_joined_daughters"]
    with pytest.raises(ConfigError, match=r"min_daughter_overlap must be like 0\.4"):
        effective_parameters({**BRIGHTNESS, "tracking": {"min_daughter_overlap": "high"}})


def test_a_plugin_method_can_bring_its_own_tracking(monkeypatch) -> None:
    monkeypatch.setitem(SUITED_TRACKING, "phase", lambda parameters: {"max_gap": 3})
    assert effective_parameters({})["tracking"]["max_gap"] == 3


def test_a_plugins_tracking_defaults_with_an_unknown_name_are_refused(monkeypatch) -> None:
    monkeypatch.setitem(SUITED_TRACKING, "phase", lambda parameters: {"max_gapp": 3})
    with pytest.raises(ConfigError, match=r"phase method's tracking defaults .*'max_gapp'"):
        effective_parameters({})
