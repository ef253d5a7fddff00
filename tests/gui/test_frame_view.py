"""`fovflow.gui.frame_view.render`: outlines on every side of a cell, an optional fill, opaque."""

from __future__ import annotations

import numpy as np

from fovflow.gui.frame_view import BAD_RGB, GOOD_RGB, render


def _square_cell() -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((12, 12), np.int32)
    labels[3:9, 2:10] = 4
    return np.full(labels.shape, 100, np.uint8), labels


def test_every_side_of_a_cell_is_outlined_and_nothing_outside_it() -> None:
    gray, labels = _square_cell()
    outline = (render(gray, labels, {4: True}, None)[..., :3] == GOOD_RGB).all(axis=2)
    inside = labels == 4
    border = inside & ~np.pad(inside, 1)[2:, 1:-1] | inside & ~np.pad(inside, 1)[:-2, 1:-1]
    border |= inside & ~np.pad(inside, 1)[1:-1, 2:] | inside & ~np.pad(inside, 1)[1:-1, :-2]
    np.testing.assert_array_equal(outline, border)  # top, bottom, left and right rows
    assert outline[8, 2:10].all() and outline[3:9, 9].all()  # the bottom and right edges


def test_two_touching_cells_each_keep_their_outline_where_they_meet() -> None:
    gray, labels = _square_cell()
    labels[3:9, 6:10] = 5
    rgb = render(gray, labels, {4: True, 5: False}, None)[..., :3]
    assert (rgb[5, 5] == GOOD_RGB).all() and (rgb[5, 6] == BAD_RGB).all()


def test_fill_tints_the_inside_and_leaves_the_background() -> None:
    gray, labels = _square_cell()
    plain = render(gray, labels, {4: True}, None)[..., :3]
    filled = render(gray, labels, {4: True}, None, fill=0.5)[..., :3]
    assert (filled[5, 5] == (np.array(GOOD_RGB) * 0.5 + 50).astype(np.uint8)).all()
    assert (plain[5, 5] == 100).all() and (filled[0, 0] == 100).all()


def test_the_image_is_opaque_rgba() -> None:
    gray, labels = _square_cell()
    rgba = render(gray, labels, {4: True}, None, fill=0.3)
    assert rgba.shape == (12, 12, 4) and rgba.dtype == np.uint8 and (rgba[..., 3] == 255).all()
