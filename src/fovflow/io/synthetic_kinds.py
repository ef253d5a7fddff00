"""Kinds ``crowded``, ``bacteria``, ``nuclei`` and ``small``: cells that touch, frame by frame.

The bodies of a FOV (`synthetic_layouts`) are drawn onto a canvas a little larger than the frame.
A pixel inside several outlines goes to the body it is relatively deepest in, so touching cells
share a border and every cell keeps its centre. The canvas gives the truth labels, the cells'
share of each fluorescence total (spread evenly over their whole area, also the part outside
the frame) and, through the kind's `Look` (`synthetic_optics`), channel 0.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage import measure

from fovflow.io.synthetic_config import SimulatedFrame, SimulationConfig
from fovflow.io.synthetic_divisions import divide_bodies, stage_jump
from fovflow.io.synthetic_layouts import Body, lay_out_bodies
from fovflow.io.synthetic_optics import LOOKS, Canvas, texture_tile
from fovflow.io.synthetic_shared import (
    model_values,
    scaled_kinetics,
    smooth_field,
    stage_drift,
    to_uint16,
)


class PackedScene:
    """The bodies, optics and backgrounds of one FOV of a packed kind, rendered frame by frame."""

    def __init__(self, config: SimulationConfig, fov: int) -> None:
        self.config = config
        self.fov = fov
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, fov, 2]))
        self.drift = stage_drift(rng)
        self.bodies = lay_out_bodies(config, self.drift, rng)
        # Own random streams, so movies without divisions or jumps stay as they were.
        if config.cell_cycle_h is not None:
            self.bodies = divide_bodies(self.bodies, config, self.drift, np.random.default_rng(
                np.random.SeedSequence([config.seed, fov, 4])))
        self.jump = stage_jump(config, np.random.default_rng(
            np.random.SeedSequence([config.seed, fov, 5])))
        self.look = LOOKS[config.kind]
        self.background = smooth_field(config.height, config.width, rng,
                                       self.look.background_level, self.look.background_span)
        self.fl_background = [
            smooth_field(config.height, config.width, rng, rng.uniform(80, 160), 0.4)
            for _ in range(config.n_fluorescence)
        ]
        self.texture = texture_tile(rng)
        self._outlines = {body.id: _outline_radii(body) for body in self.bodies if body.lobes}
        # a body with a pixel in the frame (or its pad) lies wholly within twice its reach
        reach = max((body.reach for body in self.bodies), default=0.0)
        self.margin = 2 * math.ceil(reach) + 2 + self.look.pad_px
        times_h = config.times_s / 3600.0
        self._times_h = times_h
        # totals[channel, id, frame]; row 0 (the background) stays 0
        self._totals = np.zeros((config.n_fluorescence, len(self.bodies) + 1, config.n_frames))
        for body in self.bodies:
            for channel, params in enumerate(body.kinetics):
                self._totals[channel, body.id] = body.share * model_values(config.model, params,
                                                                           times_h)

    def cell_rows(self, seen: set[int]) -> list[dict[str, float | int | str]]:
        """Ground-truth parameters of the cells in `seen` (those visible in some frame)."""
        rows: list[dict[str, float | int | str]] = []
        for body in (body for body in self.bodies if body.id in seen):
            lineage = {} if self.config.cell_cycle_h is None else {"parent": body.parent}
            for channel, params in enumerate(body.kinetics, start=1):
                rows.append({
                    "fov": self.fov, "cell": body.id, **lineage, "channel": channel,
                    "model": self.config.model, "appear_frame": body.appear_frame,
                    "semi_major_px": round(body.half_length + body.a, 3),
                    "semi_minor_px": round(body.b, 3),
                    **scaled_kinetics(self.config.model, params, body.share),
                })
        return rows

    def parents(self) -> dict[int, int]:
        """The mother of every daughter cell."""
        return {body.id: body.parent for body in self.bodies if body.parent}

    def render(self, t: int) -> SimulatedFrame:
        """Frame `t`: channel 0, fluorescence, labels and one truth row per visible cell.

        Notes
        -----
        O(canvas pixels + pixels of the visible cells' boxes).
        """
        cfg = self.config
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, self.fov, 3, t]))
        owner, interior = self._draw(t)
        full_area = np.bincount(owner.ravel(), minlength=len(self.bodies) + 1)
        # the look needs only the light that reaches the frame: a border of pad_px
        trim = (slice(self.margin - self.look.pad_px, owner.shape[0] - self.margin
                      + self.look.pad_px),
                slice(self.margin - self.look.pad_px, owner.shape[1] - self.margin
                      + self.look.pad_px))
        canvas = Canvas(owner=owner[trim], interior=interior[trim], margin=self.look.pad_px)
        labels = canvas.crop(canvas.owner).copy()
        per_pixel = self._totals[:, :, t] / np.maximum(full_area, 1)
        truth = self._truth_rows(labels, per_pixel, t)
        first = self.look.render(canvas, self.background, rng)
        fluorescence = tuple(
            to_uint16(background + signal + rng.normal(0, 1, signal.shape).astype(np.float32)
                      * np.sqrt(background + signal))
            for background, signal in (
                (background, per_pixel[channel][labels].astype(np.float32))
                for channel, background in enumerate(self.fl_background)
            )
        )
        return SimulatedFrame(to_uint16(first), fluorescence, labels, truth)

    def _draw(self, t: int) -> tuple[NDArray[np.uint16], NDArray[np.float32]]:
        """Owner and interior profile of every pixel of the frame and its margin.

        Each pixel goes to the body it lies relatively deepest in. Only bodies that reach the
        frame or its pad are drawn; the margin holds the rest of their outline.
        """
        cfg = self.config
        m = self.margin
        shape = (cfg.height + 2 * m, cfg.width + 2 * m)
        near_lo, near_hi = m - self.look.pad_px, (m + cfg.height + self.look.pad_px,
                                                  m + cfg.width + self.look.pad_px)
        owner = np.zeros(shape, np.uint16)
        depth = np.full(shape, np.inf, np.float32)
        interior = np.zeros(shape, np.float32)
        jump = self.jump if t >= (cfg.stage_jump_frame or cfg.n_frames) else np.zeros(2)
        for body in self.bodies:
            if not body.present(t):
                continue
            cx, cy = body.center(t, self.drift)
            cx, cy = cx - jump[0] + m, cy - jump[1] + m
            angle = body.angle + body.spin * t
            half_x, half_y = body.half_extents(angle)
            x0, x1 = max(math.floor(cx - half_x), 0), min(math.ceil(cx + half_x) + 1, shape[1])
            y0, y1 = max(math.floor(cy - half_y), 0), min(math.ceil(cy + half_y) + 1, shape[0])
            if x1 <= near_lo or y1 <= near_lo or x0 >= near_hi[1] or y0 >= near_hi[0]:
                continue
            ys, xs, u, v, rho = _claimed_pixels(body, angle, cx - x0, cy - y0,
                                                depth[y0:y1, x0:x1], self._outlines.get(body.id))
            ys += y0
            xs += x0
            depth[ys, xs] = rho
            owner[ys, xs] = body.id
            interior[ys, xs] = self.look.interior(rho, u, v, self._grain(body, u, v), body)
        _merge_stray_pieces(owner)
        return owner, interior

    def _grain(self, body: Body, u: NDArray[np.float32], v: NDArray[np.float32]) -> NDArray:
        """The texture tile read at body coordinates, each body from its own part of the tile."""
        size = self.texture.shape[0]
        row = (np.rint(v).astype(np.int64) + body.id * 71) % size
        column = (np.rint(u).astype(np.int64) + body.id * 113) % size
        return self.texture[row, column]

    def _truth_rows(
        self, labels: NDArray[np.uint16], per_pixel: NDArray[np.float64], t: int
    ) -> list[dict[str, float | int | str]]:
        """One row per cell visible in the frame: area, centroid, true fluorescence totals."""
        n_ids = len(self.bodies) + 1
        flat = np.flatnonzero(labels)
        ids = labels.ravel()[flat]
        area = np.bincount(ids, minlength=n_ids)
        sum_x = np.bincount(ids, weights=flat % labels.shape[1], minlength=n_ids)
        sum_y = np.bincount(ids, weights=flat // labels.shape[1], minlength=n_ids)
        rows: list[dict[str, float | int | str]] = []
        for cell in np.flatnonzero(area):
            row: dict[str, float | int | str] = {
                "fov": self.fov, "cell": int(cell), "frame": t,
                "time_h": round(float(self._times_h[t]), 6), "area": int(area[cell]),
                "position_x": float(sum_x[cell] / area[cell]),
                "position_y": float(sum_y[cell] / area[cell]),
            }
            for channel in range(self.config.n_fluorescence):
                row[f"intensity_total_ch_{channel + 1}"] = float(per_pixel[channel, cell]
                                                                 * area[cell])
            rows.append(row)
        return rows


def _claimed_pixels(
    body: Body, angle: float, cx: float, cy: float, depth: NDArray[np.float32],
    outline: NDArray[np.float32] | None,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float32], NDArray[np.float32],
           NDArray[np.float32]]:
    """The pixels of a box a body takes, with their body coordinates and relative depth.

    A body takes the pixels inside its outline that lie relatively deeper in it than in the body
    that holds them now (`depth`, infinite where free). The relative depth is 0 on the axis and 1
    on the outline: the distance to the capsule's straight middle, scaled by the semi-axes and by
    the lobed outline's radius in that direction (`outline`, from `_outline_radii`; None for
    a smooth outline). (cx, cy) is the centre relative to the box.

    Returns
    -------
    rows, columns, u, v, depth
        Positions in the box, coordinates along and across the body's axis, relative depth.
    """
    height, width = depth.shape
    dy = (np.arange(height, dtype=np.float32) - np.float32(cy))[:, None]
    dx = (np.arange(width, dtype=np.float32) - np.float32(cx))[None, :]
    cos, sin = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    u = dx * cos + dy * sin
    v = dy * cos - dx * sin
    along = np.maximum(np.abs(u) - np.float32(body.half_length), 0.0) / np.float32(body.a)
    across = v / np.float32(body.b)
    rho = np.sqrt(along**2 + across**2)
    limit = np.minimum(depth, 1.0)
    rows, columns = np.nonzero(rho < limit * np.float32(1.0 + sum(body.lobes)))
    u, v, rho, limit = u[rows, columns], v[rows, columns], rho[rows, columns], limit[rows, columns]
    if outline is not None:
        direction = np.arctan2(across[rows, columns], np.copysign(along[rows, columns], u))
        step = np.float32(len(outline) / (2 * math.pi))
        rho = rho / outline[((direction + np.float32(math.pi)) * step).astype(np.intp)
                            % len(outline)]
    taken = rho < limit
    return rows[taken], columns[taken], u[taken], v[taken], rho[taken]


def _outline_radii(body: Body, n_directions: int = 1024) -> NDArray[np.float32]:
    """Radius of a lobed outline, relative to its ellipse, at `n_directions` from -pi to pi."""
    direction = np.linspace(-math.pi, math.pi, n_directions, endpoint=False)
    radius = np.ones(n_directions)
    for k, (amplitude, phase) in enumerate(zip(body.lobes, body.lobe_phases, strict=True), 2):
        radius += amplitude * np.cos(k * direction + phase)
    return radius.astype(np.float32)


def _merge_stray_pieces(owner: NDArray[np.uint16]) -> None:
    """Give the pieces a body lost to its neighbours' outlines to the body around them, in place.

    Where neighbours overlap much, a body can keep a sliver cut off from its main part; every
    body keeps only its largest connected piece (4-connectivity), each other piece goes to the
    body that holds most of the pixels around it (or to the background).

    Notes
    -----
    O(pixels) per frame for the labelling, plus the boxes of the (few) stray pieces.
    """
    pieces = measure.label(owner, background=0, connectivity=1)
    n_pieces = int(pieces.max())
    body_of_piece = np.zeros(n_pieces + 1, np.int64)
    body_of_piece[pieces.ravel()] = owner.ravel()
    if n_pieces == np.count_nonzero(np.bincount(body_of_piece[1:])):
        return  # one piece per body
    size = np.bincount(pieces.ravel(), minlength=n_pieces + 1)
    size[0] = 0
    largest = np.zeros(int(owner.max()) + 1, np.int64)
    order = np.argsort(size, kind="stable")  # the largest piece of each body is written last
    largest[body_of_piece[order]] = order
    stray = np.flatnonzero(largest[body_of_piece] != np.arange(n_pieces + 1))
    boxes = ndimage.find_objects(pieces)
    for piece in stray[stray > 0]:
        rows, columns = boxes[piece - 1]
        box = (slice(max(rows.start - 1, 0), rows.stop + 1),
               slice(max(columns.start - 1, 0), columns.stop + 1))
        inside = pieces[box] == piece
        around = owner[box][ndimage.binary_dilation(inside) & ~inside]
        around = around[around != 0]
        owner[box][inside] = np.bincount(around).argmax() if around.size else 0
