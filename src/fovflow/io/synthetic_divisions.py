"""Dividing cells and stage jumps of the packed kinds of simulated scenes.

A body divides about once per cell-cycle time (the first time at a uniformly random point of
its first cycle, so divisions are spread over the movie): it ends, and two daughters of about
half its area begin where it was, side by side along its long axis, touching (nuclei: a
little apart). Each daughter
carries half its mother's fluorescence, with her kinetics, so the daughters' totals add up to
the trace the mother would have had. Daughters divide again after 0.8-1.2 cycles.

In the kinds whose cells push each other aside (nuclei and small round cells, as in a
monolayer), the daughters and the cells around them are then moved apart in the division's
frame until no two are closer than the layout's spacing, instead of the daughters being
drawn over their neighbours, and the sisters move apart in the next frames as real ones do,
pushing their neighbours again: the divisions are taken in the order of time, each body keeps
its moves (`Body.pushes`), and daughters begin where their mother was moved to.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from fovflow.io.synthetic_config import SimulationConfig
from fovflow.io.synthetic_layouts import MAX_CELLS, Body, pushed_aside_spacing

_DAUGHTER_SEMI_AXES = (0.62, 0.85)  # of an elliptic mother's a and b: 0.53 of her area each
# Centre distances in daughter semi-axes: cells touch over a short border (a narrow neck);
# daughter nuclei lie apart, cytoplasm between them.
_APART = {False: 0.9, True: 1.15}
_PUSH_ROUNDS = 30  # rounds of pairwise separation per division and frame
_PUSH_REACH = 6.0  # bodies within this many largest reaches of a division may be moved
# Sisters move apart by this share of their mother's radius over the frames after their birth
# (Fluo-N2DH-SIM+ `01`, 26 divisions: median 0.31, quartiles 0.19-0.45, over 3 frames).
_SEPARATION, _SEPARATION_FRAMES = 0.31, 3


def divide_bodies(bodies: list[Body], config: SimulationConfig, drift: NDArray[np.float64],
                  rng: np.random.Generator) -> list[Body]:
    """The bodies with their divisions within the movie: mothers ended, daughters appended.

    Notes
    -----
    O(bodies + divisions).
    """
    assert config.cell_cycle_h is not None
    cycle = config.cell_cycle_h * 3600.0 / config.frame_interval_s  # in frames
    result: list[Body] = []
    next_id = max((body.id for body in bodies), default=0) + 1
    queue = deque((body, body.appear_frame + rng.uniform(0.0, cycle)) for body in bodies)
    while queue:
        body, when = queue.popleft()
        frame = math.ceil(when)
        if frame >= config.n_frames or next_id + 1 > MAX_CELLS:
            result.append(body)
            continue
        result.append(replace(body, end_frame=frame))
        for daughter in _daughters(body, frame, next_id, drift, _APART[config.kind == "nuclei"]):
            queue.append((daughter, frame + cycle * rng.uniform(0.8, 1.2)))
        next_id += 2
    result.sort(key=lambda body: body.id)
    spacing = pushed_aside_spacing(config.kind)
    return result if spacing is None else _pushed_aside(result, spacing, drift,
                                                        config.n_frames)


def _pushed_aside(bodies: list[Body], spacing: float, drift: NDArray[np.float64],
                  n_frames: int) -> list[Body]:
    """The bodies with the moves divisions make (see the module).

    In each division's frame, and in each of the `_SEPARATION_FRAMES` after it, in which the
    sisters move apart along their mother's axis (by `_SEPARATION` of her radius in all), the
    bodies present near the sisters are separated pair by pair (each of a pair moved half of
    what is missing, along the line of their centres) for a fixed number of rounds; only pairs
    with a body moved in it so far (the sisters first) take part, so cells far from the
    division, or already closer than the spacing, stay where they were.

    Notes
    -----
    O(divisions x bodies) to find the bodies near each division, plus the rounds over them.
    """
    by_id = {body.id: body for body in bodies}
    moves: dict[int, list[tuple[int, float, float]]] = {body.id: [] for body in bodies}
    children: dict[int, list[int]] = {}
    for body in bodies:
        if body.parent:
            children.setdefault(body.parent, []).append(body.id)
    reach = max(body.reach for body in bodies)
    # by frame, births first: daughters born in a frame inherit their mother's moves before
    # anything in it moves them
    events = sorted((body.end_frame + after, after > 0, body.id, after) for body in bodies
                    if body.id in children and body.end_frame is not None
                    for after in range(_SEPARATION_FRAMES + 1)
                    if body.end_frame + after < n_frames)
    for frame, _, mother_id, after in events:
        mother, sisters = by_id[mother_id], children[mother_id]
        if after == 0:
            inherited = _moved_by(moves[mother_id], frame)
            for daughter in sisters:
                moves[daughter].append((frame, *inherited))
        else:
            angle = mother.angle + mother.spin * mother.end_frame
            step = _SEPARATION * math.sqrt(mother.a * mother.b) / (2 * _SEPARATION_FRAMES)
            for side, daughter in zip((-1.0, 1.0), sisters, strict=True):
                moves[daughter].append((frame, side * step * math.cos(angle),
                                        side * step * math.sin(angle)))
        present = [body for body in bodies if body.present(frame)]
        centres = np.array([body.center(frame, drift) for body in present])
        centres += np.array([_moved_by(moves[body.id], frame) for body in present])
        ids = [body.id for body in present]
        if not np.isin(ids, sisters).any():  # both sisters divided again or left the movie
            continue
        here = centres[np.isin(ids, sisters)].mean(axis=0)
        near = np.flatnonzero(np.hypot(*(centres - here).T) < _PUSH_REACH * reach)
        ids = [ids[index] for index in near]
        start = centres[near]
        size = np.array([(by_id[i].a + by_id[i].b) / 2 for i in ids])
        positions = _separated(start, spacing * (size[:, None] + size[None, :]),
                               np.isin(ids, sisters))
        for body_id, (dx, dy) in zip(ids, (positions - start).tolist(), strict=True):
            if dx or dy:
                moves[body_id].append((frame, dx, dy))
    return [replace(body, pushes=tuple(moves[body.id])) for body in bodies]


def _moved_by(moves: list[tuple[int, float, float]], frame: int) -> tuple[float, float]:
    """The sum of the moves up to `frame`."""
    return (sum(dx for when, dx, _ in moves if when <= frame),
            sum(dy for when, _, dy in moves if when <= frame))


def _separated(positions: NDArray[np.float64], closest: NDArray[np.float64],
               moved: NDArray[np.bool_]) -> NDArray[np.float64]:
    """`positions` (n, 2) after rounds of moving every pair closer than `closest` (n, n) apart,
    among the pairs with a body that has `moved` (which grows as bodies are moved)."""
    positions, moved = positions.copy(), moved.copy()
    for _ in range(_PUSH_ROUNDS):
        apart = positions[None, :, :] - positions[:, None, :]  # [i, j]: from i to j
        distance = np.hypot(apart[..., 0], apart[..., 1])
        missing = np.where(moved[:, None] | moved[None, :], closest - distance, 0.0)
        np.fill_diagonal(missing, 0.0)
        missing = np.maximum(missing, 0.0)
        if not missing.any():
            break
        direction = apart / np.maximum(distance, 1e-6)[..., None]
        # each of a pair goes half the missing distance away from the other
        positions -= 0.5 * (missing[..., None] * direction).sum(axis=1)
        moved |= missing.any(axis=1)
    return positions


def _daughters(mother: Body, frame: int, first_id: int, drift: NDArray[np.float64],
               apart: float) -> tuple[Body, Body]:
    """Two halves of `mother` in `frame`, on either side of her centre along her axis, with the
    ids `first_id` and the next; elliptic daughters' centres are `apart` semi-axes away."""
    x, y = mother.center(frame, drift)
    angle = mother.angle + mother.spin * frame
    if mother.half_length > 0:  # a rod: two rods of half its length
        length = (mother.half_length + mother.a) / 2
        half_length, a, b, distance = max(length - mother.a, 0.0), mother.a, mother.b, length
    else:
        a, b = mother.a * _DAUGHTER_SEMI_AXES[0], mother.b * _DAUGHTER_SEMI_AXES[1]
        half_length, distance = 0.0, a * apart
    daughters = []
    for number, side in enumerate((-1.0, 1.0)):
        # World position at frame 0 that puts the daughter's centre there in `frame`.
        daughter = replace(
            mother, id=first_id + number,
            x=x + side * distance * math.cos(angle) + drift[0] * frame,
            y=y + side * distance * math.sin(angle) + drift[1] * frame, half_length=half_length,
            a=a, b=b, angle=mother.angle, wobble=0.0, appear_frame=frame, end_frame=None,
            parent=mother.id, share=mother.share / 2)
        daughters.append(daughter)
    return daughters[0], daughters[1]


def stage_jump(config: SimulationConfig, rng: np.random.Generator) -> NDArray[np.float64]:
    """The stage's jump (x, y) in pixels: a cell's diameter in a random direction (0 without)."""
    if config.stage_jump_frame is None:
        return np.zeros(2)
    angle = rng.uniform(0.0, 2 * math.pi)
    return 2.0 * config.effective_cell_radius_px * np.array([math.cos(angle), math.sin(angle)])
