"""Dividing cells and stage jumps of the packed kinds of simulated scenes.

A body divides about once per cell-cycle time (the first time at a uniformly random point of
its first cycle, so divisions are spread over the movie): it ends, and two daughters of about
half its area begin where it was, side by side along its long axis, touching (nuclei: a
little apart). Each daughter
carries half its mother's fluorescence, with her kinetics, so the daughters' totals add up to
the trace the mother would have had. Daughters divide again after 0.8-1.2 cycles.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from fovflow.io.synthetic_config import SimulationConfig
from fovflow.io.synthetic_layouts import MAX_CELLS, Body

_DAUGHTER_SEMI_AXES = (0.62, 0.85)  # of an elliptic mother's a and b: 0.53 of her area each
# Centre distances in daughter semi-axes: cells touch over a short border (a narrow neck);
# daughter nuclei lie apart, cytoplasm between them.
_APART = {False: 0.9, True: 1.15}


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
    return sorted(result, key=lambda body: body.id)


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
