"""How the packed kinds look in channel 0: phase contrast of cells, rods or small round cells,
or a fluorescent nuclear marker.

A scene first draws a `Canvas`: which body owns each pixel and the owner's interior profile
there (`Look.interior`, e.g. optical thickness). A `Look` turns the canvas into the image. Phase
contrast follows the usual linear model of its halo: the image darkens with the optical
thickness and brightens with a blurred copy of it, so cells are dark with a bright halo around
them and bright seams between touching cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from fovflow.io.synthetic_layouts import Body

FloatImage = NDArray[np.float32]


@dataclass(frozen=True)
class Canvas:
    """A frame grown by `margin` px on every side, drawn body by body.

    Attributes
    ----------
    owner
        Id of the body that owns each pixel, 0 for background.
    interior
        The owner's interior profile (`Look.interior`), 0 on the background.
    margin
        Width of the border around the frame, px.
    """

    owner: NDArray[np.uint16]
    interior: FloatImage
    margin: int

    def crop(self, image: NDArray) -> NDArray:
        """The frame's part of a canvas-sized image."""
        m = self.margin
        return image[m : image.shape[0] - m, m : image.shape[1] - m]


class Look(Protocol):
    """What a kind looks like in channel 0."""

    background_level: float  # mean of the smooth background (illumination or dark level)
    background_span: float  # its relative unevenness
    pad_px: int  # how far light spreads from a cell (halo, blur), px

    def interior(
        self, depth: FloatImage, u: FloatImage, v: FloatImage, grain: FloatImage, body: Body
    ) -> FloatImage:
        """Profile inside `body` at pixels of relative depth `depth`, body coordinates (u, v) and
        texture `grain` (zero mean, unit spread, fixed to the body so it moves with it)."""
        ...

    def render(
        self, canvas: Canvas, background: FloatImage, rng: np.random.Generator
    ) -> FloatImage:
        """Channel 0 of the frame (cropped from the canvas), before rounding to uint16."""
        ...


@dataclass(frozen=True)
class PhaseContrast:
    """Dark cells with a bright halo and bright seams between touching cells.

    The interior is an optical thickness: a dome over the cell, granular texture and, for spread
    cells (`with_nucleus`), a thin lamella around a smoother nucleus with dark nucleoli.
    """

    with_nucleus: bool
    darkening: float = 0.9  # relative darkening per unit of thickness
    halo: float = 0.6  # relative brightening per unit of blurred thickness
    halo_sigma_px: float = 5.0
    psf_sigma_px: float = 1.0
    texture: float = 0.25
    seam: float = 0.6  # thinning where two cells meet
    background_level: float = 2000.0
    background_span: float = 0.25

    @property
    def pad_px(self) -> int:
        return math.ceil(3 * self.halo_sigma_px)

    def interior(
        self, depth: FloatImage, u: FloatImage, v: FloatImage, grain: FloatImage, body: Body
    ) -> FloatImage:
        if not self.with_nucleus:
            dome = np.sqrt(np.maximum(1.0 - depth**4, 0.0))
            return (body.contrast * dome * (1.0 + self.texture * grain)).astype(np.float32)
        du, dv, size = body.nucleus
        inner = (((u - du * body.a) / (size * body.a)) ** 2
                 + ((v - dv * body.b) / (size * body.b)) ** 2)
        in_nucleus = np.clip((1.0 - inner) * 4.0, 0.0, 1.0)
        lamella = 0.5 * np.sqrt(np.maximum(1.0 - depth**2, 0.0)) ** 0.7
        cytoplasm = lamella * (1.0 + self.texture * grain)
        nucleoli = np.clip(grain - 1.3, 0.0, None) * 0.5
        envelope = 0.2 * np.exp(-(((1.0 - inner) * 3.0) ** 2))
        nucleus = 0.45 + 0.05 * grain + nucleoli + envelope
        thickness = cytoplasm * (1.0 - in_nucleus) + nucleus * in_nucleus
        return (body.contrast * thickness).astype(np.float32)

    def render(
        self, canvas: Canvas, background: FloatImage, rng: np.random.Generator
    ) -> FloatImage:
        seams = 1.0 - self.seam * _borders(canvas.owner, include_background=False)
        thickness = ndimage.gaussian_filter(canvas.interior * seams, self.psf_sigma_px)
        surround = ndimage.gaussian_filter(thickness, self.halo_sigma_px, truncate=3.0)
        relative = 1.0 - self.darkening * thickness + self.halo * surround
        return _with_camera_noise(background * canvas.crop(relative), rng)


@dataclass(frozen=True)
class BrightRimmed:
    """Small rounded cells in phase contrast: bright interior, dark rim."""

    brightness: float = 0.55
    rim: float = 0.45
    background_level: float = 2000.0
    background_span: float = 0.25
    pad_px: int = 4

    def interior(
        self, depth: FloatImage, u: FloatImage, v: FloatImage, grain: FloatImage, body: Body
    ) -> FloatImage:
        core = np.clip(1.2 * (1.0 - depth**2), 0.0, 1.0) * (1.0 + 0.08 * grain)
        return (body.contrast * core).astype(np.float32)

    def render(
        self, canvas: Canvas, background: FloatImage, rng: np.random.Generator
    ) -> FloatImage:
        core = ndimage.gaussian_filter(canvas.interior, 0.7)
        rim = ndimage.gaussian_filter(_borders(canvas.owner).astype(np.float32), 0.8)
        relative = 1.0 + self.brightness * core - self.rim * rim
        return _with_camera_noise(background * canvas.crop(relative), rng)


@dataclass(frozen=True)
class NuclearMarker:
    """Fluorescent nuclei: flat-topped, textured chromatin, brightness spread over a decade.

    Two nuclei that touch keep their own rim: the marker fades to 0 over `contact_px` towards
    the border they share, so a dim valley runs between them. On the touching nuclei of the
    real GOWT1 sequence the border is about half as bright as the dimmer nucleus (median of
    18 pairs 0.53, quartiles 0.41-0.71, `benchmarks/RESULTS.md`); 2 px gives 0.61-0.64 here.
    """

    peak_counts: float = 1800.0  # above the background, for a nucleus of median brightness
    psf_sigma_px: float = 1.2
    texture: float = 0.3
    contact_px: float = 2.0
    background_level: float = 110.0
    background_span: float = 0.3
    pad_px: int = 4

    def interior(
        self, depth: FloatImage, u: FloatImage, v: FloatImage, grain: FloatImage, body: Body
    ) -> FloatImage:
        plateau = np.sqrt(np.maximum(1.0 - depth**6, 0.0))
        chromatin = np.clip(1.0 + self.texture * grain, 0.3, None)
        return (body.contrast * plateau * chromatin).astype(np.float32)

    def render(
        self, canvas: Canvas, background: FloatImage, rng: np.random.Generator
    ) -> FloatImage:
        shared = _borders(canvas.owner, include_background=False)
        to_contact = ndimage.distance_transform_edt(~shared) if shared.any() else np.inf
        rim = np.minimum(to_contact / self.contact_px, 1.0).astype(np.float32)
        signal = ndimage.gaussian_filter(canvas.interior * rim, self.psf_sigma_px)
        image = background + self.peak_counts * canvas.crop(signal)
        shot = rng.normal(0.0, 1.0, image.shape).astype(np.float32) * np.sqrt(image)
        return image + shot + rng.normal(0.0, 3.0, image.shape).astype(np.float32)


LOOKS: dict[str, Look] = {
    "crowded": PhaseContrast(with_nucleus=True, darkening=0.9, halo=0.5, halo_sigma_px=4.0),
    "bacteria": PhaseContrast(with_nucleus=False, darkening=0.95, halo=0.7, halo_sigma_px=4.0,
                              texture=0.1, seam=0.3),
    "small": BrightRimmed(),
    "nuclei": NuclearMarker(),
}


def texture_tile(rng: np.random.Generator, size: int = 256) -> FloatImage:
    """A periodic texture of unit spread: fine grain over coarser blotches (chromatin, granules).

    Bodies sample it in their own coordinates, so their texture moves and turns with them.
    """
    fine = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (size, size)), 1.0, mode="wrap")
    coarse = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (size, size)), 3.0, mode="wrap")
    tile = fine / fine.std() + 1.5 * coarse / coarse.std()
    return (tile / tile.std()).astype(np.float32)


def _borders(owner: NDArray[np.uint16], *, include_background: bool = True) -> NDArray[np.bool_]:
    """Pixels of a body with a 4-neighbour of another id (or the background, if included)."""
    border = np.zeros(owner.shape, bool)
    for axis in (0, 1):
        ahead = np.swapaxes(owner, 0, axis)
        edge = ahead[1:] != ahead[:-1]
        if not include_background:
            edge &= (ahead[1:] != 0) & (ahead[:-1] != 0)
        marked = np.swapaxes(border, 0, axis)
        marked[1:] |= edge
        marked[:-1] |= edge
    return border & (owner != 0)


def _with_camera_noise(image: FloatImage, rng: np.random.Generator) -> FloatImage:
    """Frame-wide flicker and 1 % pixel noise, as in the isolated kind."""
    flicker = 1.0 + rng.normal(0.0, 0.02)
    return image * flicker * (1.0 + rng.normal(0.0, 0.01, image.shape).astype(np.float32))
