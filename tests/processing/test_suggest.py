"""Suggesting a segmentation method: from a channel's name, else from one frame's pixels."""

from __future__ import annotations

import numpy as np
import pytest

from fovflow.io.synthetic import SimulatedFov, SimulationConfig, simulate_fov
from fovflow.processing.suggest import (
    PHASE_DARK_TAIL,
    dark_tail_width,
    holds_signal,
    method_from_name,
    suggest_channels,
    suggest_method,
)

PHASE_KINDS = ("isolated", "crowded", "bacteria", "small")
KINDS = (*PHASE_KINDS, "nuclei")


def _simulated(kind: str, seed: int = 0) -> SimulatedFov:
    """Two frames of 256x256: the first before the reporters mature, the second long after."""
    config = SimulationConfig(kind=kind, n_fovs=1, n_frames=2, height=256, width=256,
                              n_fluorescence=2, frame_interval_s=40 * 600.0, seed=seed)
    return simulate_fov(config, 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", PHASE_KINDS)
def test_phase_contrast_of_every_kind_looks_phase(kind: str, seed: int) -> None:
    for frame in _simulated(kind, seed).phase:
        assert suggest_method(frame) == "phase", dark_tail_width(frame)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fluorescent_nuclei_look_fluorescence(seed: int) -> None:
    for frame in _simulated("nuclei", seed).phase:
        assert suggest_method(frame) == "fluorescence", dark_tail_width(frame)


@pytest.mark.parametrize("kind", KINDS)
def test_fluorescence_channels_look_fluorescence_dark_bright_or_confluent(kind: str) -> None:
    # Frame 0 is noise alone; frame 1 holds bright cells (confluent ones for kind crowded,
    # where the median lies inside the cells and the histogram is not skewed).
    for frame in _simulated(kind).fluorescence.reshape(-1, 256, 256):
        assert suggest_method(frame) == "fluorescence", dark_tail_width(frame)


def test_an_uneven_fluorescence_background_still_looks_fluorescence() -> None:
    nuclei = _simulated("nuclei").phase[1].astype(np.float64)
    yy, xx = np.mgrid[:256, :256]
    # The background rises by 60 % of its level from the corners to the centre.
    falloff = 1.0 - ((yy - 128.0) ** 2 + (xx - 128.0) ** 2) / (2 * 128.0 ** 2)
    uneven = np.round(nuclei + 0.6 * np.percentile(nuclei, 5) * falloff).astype(np.uint16)
    assert suggest_method(uneven) == "fluorescence"


def test_gaussian_noise_alone_spreads_its_dark_tail_over_one_and_a_half_widths() -> None:
    noise = np.random.default_rng(0).normal(1000.0, 20.0, (512, 512))
    assert dark_tail_width(noise) == pytest.approx(1.45, abs=0.1)
    assert suggest_method(noise) == "fluorescence"
    assert not holds_signal(noise)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_a_flat_frame_holds_no_signal_and_looks_fluorescence(dtype: type) -> None:
    flat = np.full((64, 64), 7, dtype)
    assert dark_tail_width(flat) == 0.0
    assert suggest_method(flat) == "fluorescence" and not holds_signal(flat)


def test_a_noise_free_float_frame_with_dark_cells_looks_phase() -> None:
    frame = np.full((64, 64), 0.5)
    frame[10:30, 10:30] = np.linspace(0.1, 0.4, 20)  # dark cells of graded darkness
    assert dark_tail_width(frame) == np.inf and suggest_method(frame) == "phase"


def test_the_threshold_lies_between_noise_and_phase_contrast() -> None:
    assert 1.45 < PHASE_DARK_TAIL < min(dark_tail_width(_simulated(kind).phase[0])
                                        for kind in PHASE_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_frames_with_cells_hold_signal_and_unexpressed_reporters_do_not(kind: str) -> None:
    simulated = _simulated(kind)
    assert all(holds_signal(frame) for frame in simulated.phase)
    dark, bright = simulated.fluorescence[0]
    assert not holds_signal(dark) and holds_signal(bright)


@pytest.mark.parametrize("frame", [np.zeros((2, 8, 8)), np.zeros(8)], ids=["3-D", "1-D"])
def test_a_frame_that_is_not_2d_is_refused(frame: np.ndarray) -> None:
    for look in (suggest_method, dark_tail_width, holds_signal):
        with pytest.raises(ValueError, match="2-D frame"):
            look(frame)


def test_a_frame_with_nan_is_refused() -> None:
    frame = np.zeros((8, 8))
    frame[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        suggest_method(frame)


@pytest.mark.parametrize("name", ["Phase", "phase contrast", "PC", "PhC", "BF", "Brightfield",
                                  "Bright field", "DIC", "TL-BF", "Trans"])
def test_transmitted_light_names_say_phase(name: str) -> None:
    assert method_from_name(name) == "phase"


@pytest.mark.parametrize("name", ["DAPI", "Hoechst 33342", "GFP", "EGFP", "mCherry", "RFP",
                                  "YFP", "TagBFP", "Nuclei", "H2B-mCherry", "PCNA", "SiR-DNA",
                                  "Cy5", "488 nm", "Alexa Fluor 647", "tdTomato"])
def test_dye_protein_and_nuclear_marker_names_say_fluorescence(name: str) -> None:
    assert method_from_name(name) == "fluorescence"


@pytest.mark.parametrize("name", ["", "Channel:0:0", "C1", "ch2", "Phase GFP", "Default"])
def test_plain_or_contradictory_names_say_nothing(name: str) -> None:
    assert method_from_name(name) is None


def test_the_first_phase_channel_is_segmented_and_fluorescence_measured() -> None:
    methods = ["fluorescence", "phase", "fluorescence", "phase"]
    assert suggest_channels(methods, ["GFP", "BF", "mCherry", "DIC"]) == (1, (0, 2))


def test_without_phase_a_nuclear_marker_is_segmented() -> None:
    methods = ["fluorescence"] * 3
    assert suggest_channels(methods, ["GFP", "H2B-mCherry", "YFP"]) == (1, (0, 2))
    assert suggest_channels(methods, ["GFP", "RFP", "YFP"]) == (0, (1, 2))


def test_a_lone_channel_is_segmented_and_measured() -> None:
    assert suggest_channels(["phase"], ["Phase"]) == (0, (0,))
    assert suggest_channels(["phase", "phase"], ["BF", "DIC"]) == (0, (0,))


def test_one_name_per_channel_is_required() -> None:
    with pytest.raises(ValueError, match="one name per channel"):
        suggest_channels(["phase", "fluorescence"], ["Phase"])
