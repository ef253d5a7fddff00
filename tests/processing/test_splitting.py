"""Specification of `fovflow.processing.splitting`: a foreground mask becomes cell instances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fovflow.processing.splitting import (
    fill_holes,
    label_instances,
    split_by_bodies,
    split_by_intensity,
    split_touching,
)

EIGHT = np.ones((3, 3), bool)  # 8-connectivity, as the masks' pieces are counted


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def ellipse(shape: tuple[int, int], semi_axes: tuple[float, float], degrees: float
            ) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    y, x = yy - shape[0] / 2, xx - shape[1] / 2
    angle = np.deg2rad(degrees)
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    return (u / semi_axes[0]) ** 2 + (v / semi_axes[1]) ** 2 <= 1


def irregular_blob(shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    """A lumpy cell of radius about 30 px: a circle with four harmonics added to its outline."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    y, x = yy - shape[0] / 2, xx - shape[1] / 2
    theta = np.arctan2(y, x)
    outline = 30 + sum(amplitude * np.cos(k * theta + phase)
                       for k, amplitude, phase in [(2, 4.8, 3.2), (3, 4.9, 0.5),
                                                   (4, 3.4, 2.4), (5, 4.2, 1.1)])
    return np.hypot(y, x) <= outline


def random_mask(seed: int) -> tuple[np.ndarray, float, float]:
    """Blobs (diamonds, some touching, some only at a corner), a diameter and a neck."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(8, 90)), int(rng.integers(8, 90)))
    seeds = rng.random(shape) < rng.uniform(0.005, 0.05)
    mask = ndimage.binary_dilation(seeds, iterations=int(rng.integers(1, 8)))
    return mask, float(rng.uniform(4, 40)), float(rng.uniform(0, 1))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label images cut the same pixels into the same regions (ids may differ)."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = {(int(p), int(q)) for p, q in zip(a[a > 0], b[b > 0], strict=True)}
    return len(pairs) == len({p for p, _ in pairs}) == len({q for _, q in pairs})


def test_two_overlapping_discs_become_two_cells_each_close_to_its_disc() -> None:
    first, second = disc((100, 140), (50, 50), 20), disc((100, 140), (50, 84), 20)
    labels = split_touching(first | second, diameter=40)
    assert labels.max() == 2
    # Measured: IoU 0.96 and 0.98 (the cut follows the neck).
    assert iou(labels == labels[50, 50], first) > 0.85
    assert iou(labels == labels[50, 84], second) > 0.85


def test_three_discs_in_a_row_give_three_cells() -> None:
    shape = (100, 130)
    mask = disc(shape, (50, 30), 20) | disc(shape, (50, 64), 20) | disc(shape, (50, 98), 20)
    labels = split_touching(mask, diameter=40)
    assert labels.max() == 3
    assert len({labels[50, 30], labels[50, 64], labels[50, 98]}) == 3


def test_a_cell_with_a_shallow_waist_stays_one_cell() -> None:
    # Centres 20 px apart: the waist is 0.87 of the discs' width, wider than `neck` (0.7).
    mask = disc((100, 140), (50, 60), 20) | disc((100, 140), (50, 80), 20)
    assert split_touching(mask, diameter=40).max() == 1


def test_an_elongated_cell_stays_one_cell_although_its_distance_map_has_several_summits(
) -> None:
    cell = ellipse((120, 160), (40, 18), degrees=17)  # 80 x 36 px
    assert split_touching(cell, diameter=36, neck=1.0).max() > 1, (
        "this ellipse no longer has several summits: choose a shape that tests the merge guard")
    assert split_touching(cell, diameter=36).max() == 1


def test_an_irregular_blob_stays_one_cell() -> None:
    blob = irregular_blob()
    assert split_touching(blob, diameter=30, neck=1.0).max() > 1, (
        "this blob no longer has several summits: choose a shape that tests the merge guard")
    for diameter in (30, 40, 60):
        assert split_touching(blob, diameter=diameter).max() == 1


def test_neck_zero_never_splits_touching_cells() -> None:
    first, second = disc((100, 140), (50, 50), 20), disc((100, 140), (50, 74), 20)
    labels = split_touching(first | second, diameter=40, neck=0.0)
    assert labels.max() == 1 and np.array_equal(labels > 0, first | second)


@pytest.mark.parametrize("seed", range(20))
def test_neck_zero_gives_the_8_connected_pieces_of_the_mask(seed: int) -> None:
    mask, diameter, _ = random_mask(seed)
    pieces, _ = ndimage.label(mask, EIGHT)
    assert same_partition(split_touching(mask, diameter=diameter, neck=0.0), pieces)


@pytest.mark.parametrize("seed", range(20))
def test_cells_cover_the_mask_exactly_with_compact_labels(seed: int) -> None:
    mask, diameter, neck = random_mask(seed)
    labels = split_touching(mask.astype(np.uint8) * 7, diameter=diameter, neck=neck)
    assert labels.dtype == np.int32 and labels.shape == mask.shape
    assert np.array_equal(labels > 0, mask)
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    pieces, _ = ndimage.label(mask, EIGHT)
    for cell in range(1, labels.max() + 1):  # a split never joins two separate pieces
        assert len(np.unique(pieces[labels == cell])) == 1


def test_a_piece_joined_at_a_corner_belongs_to_the_cell_it_touches() -> None:
    # Two discs to split, and a 5x5 square meeting the left disc only diagonally, at one
    # corner pixel: one 8-connected object, whose square must not become a cell of its own.
    shape = (64, 90)
    mask = disc(shape, (30, 30), 12) | disc(shape, (30, 52), 12)
    mask[43:48, 31:36] = True
    assert ndimage.label(mask, EIGHT)[1] == 1 and ndimage.label(mask)[1] == 2
    labels = split_touching(mask, diameter=24)
    assert labels.max() == 2
    assert labels[45, 33] == labels[30, 30] != labels[30, 52]


def test_every_cell_is_one_connected_piece() -> None:
    for seed in range(300):
        mask, diameter, neck = random_mask(seed)
        labels = split_touching(mask, diameter=diameter, neck=neck)
        scattered = [cell for cell in range(1, labels.max() + 1)
                     if ndimage.label(labels == cell, EIGHT)[1] != 1]
        assert not scattered, f"seed {seed}: cells {scattered} are in several pieces"


def test_min_area_drops_small_cells_and_keeps_labels_compact() -> None:
    shape = (80, 120)
    mask = (disc(shape, (40, 30), 15) | disc(shape, (10, 100), 3) | disc(shape, (60, 90), 12)
            | disc(shape, (70, 20), 2))
    labels = split_touching(mask, diameter=30, min_area=100)
    assert np.array_equal(np.unique(labels), [0, 1, 2])
    assert labels[40, 30] > 0 and labels[60, 90] > 0
    assert labels[10, 100] == 0 and labels[70, 20] == 0
    # A cell cut off a larger one by the split is measured on its own (243 px here).
    touching = disc(shape, (40, 40), 20) | disc(shape, (40, 68), 9)
    assert split_touching(touching, diameter=40).max() == 2
    kept = split_touching(touching, diameter=40, min_area=300)
    assert kept.max() == 1 and kept[40, 40] == 1 and kept[40, 72] == 0


@pytest.mark.parametrize(("parameters", "message"), [
    ({"diameter": 0}, "diameter must be positive"),
    ({"diameter": -5}, "diameter must be positive"),
    ({"diameter": 20, "neck": -0.1}, "neck must be between 0 and 1"),
    ({"diameter": 20, "neck": 1.5}, "neck must be between 0 and 1"),
])
def test_bad_parameters_are_refused(parameters: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_touching(disc((40, 40), (20, 20), 10), **parameters)


def test_an_empty_mask_has_no_cells() -> None:
    labels = split_touching(np.zeros((30, 40), bool), diameter=10)
    assert labels.dtype == np.int32 and not labels.any()


def test_split_by_intensity_cuts_two_dark_bodies_at_the_bright_seam_between_them() -> None:
    mask = np.zeros((80, 120), bool)
    mask[20:60, 20:100] = True
    image = np.full(mask.shape, 1000.0)
    image[mask] = 500  # dark cell bodies, as in phase contrast ...
    image[20:60, 58:62] = 1500  # ... with a bright halo where they touch
    labels = split_by_intensity(mask, image, diameter=40)
    assert labels.max() == 2
    assert labels[40, 30] == labels[40, 57] != labels[40, 62] == labels[40, 90]
    uniform = np.where(mask, 500.0, 1000.0)
    assert split_by_intensity(mask, uniform, diameter=40).max() == 1


@pytest.mark.parametrize(("split", "covers_mask"), [(split_by_intensity, True),
                                                    (split_by_bodies, False)])
def test_image_splits_give_compact_connected_cells_inside_the_mask(split, covers_mask: bool
                                                                    ) -> None:
    # The split by intensity labels all of the mask; the split by bodies leaves the seams and
    # halos out, but never labels outside the mask.
    for seed in range(100):
        mask, diameter, _ = random_mask(seed)
        rng = np.random.default_rng(seed + 1000)
        image = ndimage.gaussian_filter(rng.normal(1000, 200, mask.shape), 2)
        labels = split(mask, image, diameter=diameter)
        assert labels.dtype == np.int32 and not (labels[~mask] > 0).any(), seed
        assert not covers_mask or np.array_equal(labels > 0, mask), seed
        assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1)), seed
        scattered = [cell for cell in range(1, labels.max() + 1)
                     if ndimage.label(labels == cell, EIGHT)[1] != 1]
        assert not scattered, f"seed {seed}: cells {scattered} are in several pieces"


def test_split_by_intensity_refuses_a_diameter_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="diameter must be positive"):
        split_by_intensity(np.ones((8, 8), bool), np.ones((8, 8)), diameter=0)


def _touching_rods(seam: float) -> tuple[np.ndarray, np.ndarray]:
    """A mask of two dark rods side by side (10 px wide, 60 long) with no gap between them in
    the mask, and a phase-contrast image of them with a seam of brightness `seam` between."""
    mask = np.zeros((60, 100), bool)
    mask[10:50, 20:80] = True
    image = np.full(mask.shape, 1000.0)
    image[15:25, 20:80] = image[27:37, 20:80] = 400  # two rods ...
    image[25:27, 20:80] = seam  # ... touching along a seam
    image[10:15, 20:80] = image[37:50, 20:80] = 1200  # halo, inside the mask
    return mask, image


def test_split_by_bodies_separates_touching_rods_at_their_seam_and_trims_the_halo() -> None:
    mask, image = _touching_rods(seam=1100)
    labels = split_by_bodies(mask, image, diameter=20)
    assert labels.max() == 2
    assert labels[20, 50] != labels[31, 50] and labels[20, 50] > 0 and labels[31, 50] > 0
    assert labels[45, 50] == 0, "the halo below the rods is not cell"
    for cell in (1, 2):  # each grows back to about its rod: 10 x 60 px
        assert 450 <= (labels == cell).sum() <= 1000


def test_split_by_bodies_keeps_one_uniform_dark_cell_whole() -> None:
    mask = disc((80, 80), (40, 40), 20)
    image = np.where(mask, 500.0, 1000.0)
    labels = split_by_bodies(mask, image, diameter=40)
    assert labels.max() == 1 and (labels > 0).sum() >= 0.9 * mask.sum()


def _ring_of_dark_cells(n_cells: int, ring_radius: float, cell_radius: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """A foreground disc and an image of `n_cells` dark discs in a ring, touching, around a
    bright inside: a colony's cells around the gap between them, or, with one cell of the
    ring's size, the dark rim of a phase-bright cell."""
    shape = (160, 160)
    mask = disc(shape, (80, 80), ring_radius + cell_radius + 2)
    image = np.full(shape, 1000.0)
    image[disc(shape, (80, 80), ring_radius + cell_radius)] = 1300  # the bright inside
    for angle in np.linspace(0, 2 * np.pi, n_cells, endpoint=False):
        centre = (80 + ring_radius * np.sin(angle), 80 + ring_radius * np.cos(angle))
        image[disc(shape, centre, cell_radius)] = 400
    return mask, image


def test_split_by_bodies_leaves_the_gap_a_colony_encloses_out_of_its_cells() -> None:
    mask, image = _ring_of_dark_cells(n_cells=14, ring_radius=45, cell_radius=11)
    labels = split_by_bodies(mask, image, diameter=22)
    assert labels[80, 80] == 0, "the gap between the cells is filled into them"
    assert labels.max() >= 10


def test_split_by_bodies_fills_the_bright_inside_of_a_dark_rimmed_cell() -> None:
    shape = (80, 80)
    mask = disc(shape, (40, 40), 16)
    image = np.where(disc(shape, (40, 40), 15), 400.0, 1000.0)
    image[disc(shape, (40, 40), 11)] = 1300  # a phase-bright cell: a dark rim 4 px wide
    labels = split_by_bodies(mask, image, diameter=30)
    assert labels.max() == 1 and labels[40, 40] == 1


def test_split_by_bodies_refuses_a_diameter_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="diameter must be positive"):
        split_by_bodies(np.ones((8, 8), bool), np.ones((8, 8)), diameter=-1)


def _relabel_by_hand(labels: np.ndarray, min_area: int) -> np.ndarray:
    """`label_instances` written plainly: surviving ids in increasing order become 1..n."""
    areas = {int(v): int((labels == v).sum()) for v in np.unique(labels) if v != 0}
    kept = sorted(v for v, area in areas.items() if area >= min_area)
    new_id = {old: new for new, old in enumerate(kept, start=1)}
    out = np.zeros(labels.shape, np.int32)
    for (y, x), value in np.ndenumerate(labels):
        out[y, x] = new_id.get(int(value), 0)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_label_instances_equals_a_relabelling_by_hand(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 500), size=int(rng.integers(1, 12)), replace=False)
    labels = rng.choice(np.concatenate([[0, 0, 0], ids]), size=(int(rng.integers(1, 30)), 23))
    labels = labels.astype([np.uint16, np.int32, np.uint32, np.int64][seed % 4])
    min_area = int(rng.integers(0, 40))
    result = label_instances(labels, min_area=min_area)
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, _relabel_by_hand(labels, min_area))


def test_label_instances_of_compact_labels_changes_nothing() -> None:
    labels = np.array([[0, 1, 1], [2, 2, 0], [3, 0, 0]], np.uint8)
    np.testing.assert_array_equal(label_instances(labels), labels)
    assert not label_instances(np.zeros((4, 4), np.int32)).any()


@pytest.mark.parametrize("seed", range(8))
def test_fill_holes_fills_background_not_4_connected_to_the_border(seed: int) -> None:
    rng = np.random.default_rng(seed)
    binary = ndimage.binary_dilation(rng.random((50, 60)) < 0.04, EIGHT).astype(np.uint8)
    binary[10:30, 10:30] = 1
    binary[15:25, 15:25] = 0  # a hole for sure
    expected = ndimage.binary_fill_holes(binary)  # its default cross: 4-connected background
    result = fill_holes(binary)
    assert result.dtype == np.uint8 and result[20, 20] == 1
    np.testing.assert_array_equal(result.astype(bool), expected)
