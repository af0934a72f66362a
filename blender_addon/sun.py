"""Find the dominant light source (the sun, a bright lamp) in an HDR panorama and take it out (numpy only).

Conventions:

* Panoramas are ``HxWx3`` linear RGB, row 0 at the top (zenith), equirectangular.
* Directions are in the frame of Blender's Environment Texture (equirectangular): the image centre (u = 0.5) looks
  along +X, u = 0.25 along +Y, u = 0.75 along -Y, the edges along -X, the top row along +Z. In Blender's code:
  ``u = (pi - atan2(y, x)) / (2 pi)``, ``v = 0.5 + asin(z) / pi`` (v up). :func:`pixel_directions` gives the
  direction of every pixel; :func:`world_direction` applies the Mapping node's Z rotation.
* Irradiance is Blender's unit: a world of radiance L everywhere gives a white floor the value L, and a Sun lamp of
  strength S (W/m^2) gives a surface facing it the irradiance S. So a small bright blob of radiance L_i over solid
  angles dOmega_i is replaced by a Sun of strength ``sum(L_i dOmega_i)``: the light the scene receives is unchanged.

Method (:func:`find_sun`): threshold the luminance at ``max(ratio x median, percentile)``, label the connected
bright blobs (wrapping around in azimuth), keep the one that sends the most light, then (:func:`extract_sun`) grow
it by a pixel or two, fill it with the median of a ring around it, and turn what was removed into the Sun's
irradiance (per channel: strength = the largest, colour = the ratios), direction (light-weighted mean of the pixel
directions) and angular diameter (from the bright core's solid angle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

LUMA_709 = (0.2126, 0.7152, 0.0722)


@dataclass
class Sun:
    """A light source found in a panorama (all in the Environment Texture's frame, before any rotation)."""

    direction: tuple[float, float, float]  #: unit vector towards the light
    irradiance: tuple[float, float, float]  #: RGB irradiance it sends, Blender W/m^2
    angle: float  #: angular diameter, radians
    solid_angle: float  #: of the bright core, steradians
    fraction: float  #: share of the panorama's total light (luminance x solid angle) it carries
    fill: tuple[float, float, float]  #: RGB radiance the replaced pixels get (median of a ring around them)
    mask: np.ndarray = field(repr=False)  #: HxW bool, the pixels that were replaced

    @property
    def strength(self) -> float:
        """Blender Sun strength: the largest channel of the irradiance."""
        return float(max(self.irradiance))

    @property
    def color(self) -> tuple[float, float, float]:
        s = self.strength
        return tuple(float(c / s) for c in self.irradiance) if s > 0 else (1.0, 1.0, 1.0)

    @property
    def elevation(self) -> float:
        """Degrees above the horizon."""
        return math.degrees(math.asin(max(-1.0, min(1.0, self.direction[2]))))


def luminance(rgb: np.ndarray) -> np.ndarray:
    return LUMA_709[0] * rgb[..., 0] + LUMA_709[1] * rgb[..., 1] + LUMA_709[2] * rgb[..., 2]


def pixel_solid_angles(h: int, w: int) -> np.ndarray:
    """Solid angle of one pixel in each row (``h``), steradians; they add up to 4 pi."""
    edges = np.cos(np.arange(h + 1) * (math.pi / h))
    return (edges[:-1] - edges[1:]) * (2.0 * math.pi / w)


def pixel_directions(h: int, w: int, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> np.ndarray:
    """Unit direction of pixel centres (all pixels, or the given ``rows``/``cols`` index arrays): ``...x3``."""
    if rows is None:
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    theta = (np.asarray(rows) + 0.5) * (math.pi / h)  # polar angle from +Z
    phi = math.pi - (np.asarray(cols) + 0.5) * (2.0 * math.pi / w)  # atan2(y, x)
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)


def direction_to_pixel(d, h: int, w: int) -> tuple[float, float]:
    """``(row, col)`` (fractional, row 0 at the top) where direction ``d`` lands in an ``h x w`` panorama."""
    x, y, z = (float(v) for v in d)
    n = math.sqrt(x * x + y * y + z * z)
    u = ((math.pi - math.atan2(y, x)) / (2.0 * math.pi)) % 1.0
    theta = math.acos(max(-1.0, min(1.0, z / n)))
    return theta / math.pi * h - 0.5, u * w - 0.5


def world_direction(d, rotation_z: float) -> tuple[float, float, float]:
    """Where texture direction ``d`` appears in the world when the Mapping node (type Point) rotates by
    ``rotation_z`` radians about Z: the texture is looked up at ``R(rotation_z) @ world``, so ``R(-rotation_z) @ d``."""
    c, s = math.cos(-rotation_z), math.sin(-rotation_z)
    x, y, z = (float(v) for v in d)
    return (c * x - s * y, s * x + c * y, z)


def _dilate(mask: np.ndarray, steps: int, wrap: bool) -> np.ndarray:
    """Binary dilation by ``steps`` pixels (3x3 square each step); columns wrap around if ``wrap``."""
    out = mask.copy()
    for _ in range(steps):
        m = out.copy()
        m[1:] |= out[:-1]
        m[:-1] |= out[1:]
        row = m.copy()
        if wrap:
            m |= np.roll(row, 1, axis=1) | np.roll(row, -1, axis=1)
        else:
            m[:, 1:] |= row[:, :-1]
            m[:, :-1] |= row[:, 1:]
        out = m
    return out


def label_blobs(mask: np.ndarray, wrap: bool = True) -> tuple[np.ndarray, int]:
    """8-connected components of ``mask`` (columns wrap if ``wrap``): ``(labels HxW int, count)``; 0 = background.

    Label propagation (each pixel takes the largest label among its neighbours) until nothing changes: meant for
    the few bright pixels of a reduced panorama, not for large masks.
    """
    h, w = mask.shape
    labels = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), 0)
    while True:
        m = labels.copy()
        m[1:] = np.maximum(m[1:], labels[:-1])
        m[:-1] = np.maximum(m[:-1], labels[1:])
        row = m.copy()
        if wrap:
            m = np.maximum(m, np.maximum(np.roll(row, 1, axis=1), np.roll(row, -1, axis=1)))
        else:
            m[:, 1:] = np.maximum(m[:, 1:], row[:, :-1])
            m[:, :-1] = np.maximum(m[:, :-1], row[:, 1:])
        m = np.where(mask, m, 0)
        if np.array_equal(m, labels):
            break
        labels = m
    uniq, inverse = np.unique(labels, return_inverse=True)
    if uniq[0] != 0:  # every pixel is bright
        return (inverse + 1).reshape(h, w), len(uniq)
    return inverse.reshape(h, w), len(uniq) - 1


def _block_reduce(a: np.ndarray, f: int, op) -> np.ndarray:
    h, w = a.shape
    hb, wb = -(-h // f), -(-w // f)
    pad = np.zeros((hb * f, wb * f), dtype=a.dtype)
    pad[:h, :w] = a
    return op(pad.reshape(hb, f, wb, f), axis=(1, 3))


def find_sun(hdr: np.ndarray, ratio: float = 10.0, percentile: float = 99.9, min_fraction: float = 0.0,
             max_label_width: int = 512) -> Sun | None:
    """The dominant light source of ``hdr`` (``HxWx3`` linear, equirectangular), or None if nothing stands out.

    Args:
        hdr: the panorama.
        ratio: a light must be brighter than ``ratio`` x the median luminance.
        percentile: ... and brighter than this luminance percentile (or half the peak if that is lower).
        min_fraction: ignore a light carrying less than this share of the panorama's total light.
        max_label_width: blobs are labelled on a max-pooled copy at most this wide (speed); the mask is exact.
    """
    h, w = hdr.shape[:2]
    lum = luminance(hdr.astype(np.float32, copy=False))
    step = max(1, int(math.sqrt(h * w / 262144)))
    sample = lum[::step, ::step]
    peak = float(lum.max())
    # the percentile raises the bar in bright scenes, but never above half the peak (a sun near a pole covers
    # many pixels of an equirectangular image)
    threshold = max(ratio * max(float(np.median(sample)), 1e-6), min(float(np.percentile(sample, percentile)),
                                                                      0.5 * peak))
    bright = lum > threshold
    if not bright.any():
        return None
    omega = pixel_solid_angles(h, w)[:, None]
    total = float((lum * omega).sum())
    f = max(1, -(-w // max_label_width))
    labels, count = label_blobs(_block_reduce(bright, f, np.any), wrap=(w % f == 0))
    power = _block_reduce(np.where(bright, lum * omega, 0.0), f, np.sum)
    per_blob = np.bincount(labels.ravel(), weights=power.ravel(), minlength=count + 1)
    best = int(np.argmax(per_blob[1:]) + 1)
    if total <= 0 or per_blob[best] / total < min_fraction:
        return None
    core = np.repeat(np.repeat(labels == best, f, axis=0), f, axis=1)[:h, :w] & bright
    return _measure(hdr, lum, core, omega[:, 0], total)


def _measure(hdr: np.ndarray, lum: np.ndarray, core: np.ndarray, omega: np.ndarray, total: float) -> Sun:
    """Grow the core, pick the fill colour from a ring around it and measure what removing it takes away."""
    h, w = core.shape
    cols = np.nonzero(core.any(axis=0))[0]
    ang = (cols + 0.5) * (2 * math.pi / w)
    centre = int(round((math.atan2(np.sin(ang).mean(), np.cos(ang).mean()) % (2 * math.pi)) / (2 * math.pi) * w))
    shift = w // 2 - centre  # roll the blob to the middle so its neighbourhood is one contiguous crop
    core_r = np.roll(core, shift, axis=1)
    grow = max(1, round(w / 1024))
    ring = max(2, 2 * grow)
    rr, cc = np.nonzero(core_r)
    r0, r1 = max(0, rr.min() - grow - ring), min(h, rr.max() + grow + ring + 1)
    c0, c1 = max(0, cc.min() - grow - ring), min(w, cc.max() + grow + ring + 1)
    full = c0 == 0 and c1 == w
    crop_core = core_r[r0:r1, c0:c1]
    mask = _dilate(crop_core, grow, wrap=full)
    around = _dilate(mask, ring, wrap=full) & ~mask
    crop = np.roll(hdr, shift, axis=1)[r0:r1, c0:c1].astype(np.float64)
    fill = np.median(crop[around], axis=0) if around.any() else np.zeros(3)
    rows, ccols = np.nonzero(mask)
    om = omega[r0:r1][rows]
    excess = (crop[rows, ccols] - fill) * om[:, None]  # RGB irradiance removed per pixel
    irradiance = np.maximum(excess.sum(axis=0), 0.0)
    weights = np.maximum(excess @ np.array(LUMA_709), 0.0)
    dirs = pixel_directions(h, w, rows + r0, (ccols + c0 - shift) % w)
    d = (dirs * (weights if weights.sum() > 0 else om)[:, None]).sum(axis=0)
    d = d / max(np.linalg.norm(d), 1e-12)
    solid = float((crop_core * omega[r0:r1, None]).sum())
    angle = 2.0 * math.acos(max(-1.0, 1.0 - solid / (2.0 * math.pi)))
    full_mask = np.zeros((h, w), bool)
    full_mask[r0:r1, c0:c1] = mask
    full_mask = np.roll(full_mask, -shift, axis=1)
    lum_removed = float(irradiance @ np.array(LUMA_709))
    return Sun(tuple(float(v) for v in d), tuple(float(v) for v in irradiance), angle, solid,
               lum_removed / total if total > 0 else 0.0, tuple(float(v) for v in fill), full_mask)


def remove_sun(hdr: np.ndarray, sun: Sun) -> np.ndarray:
    """A copy of ``hdr`` with the sun's pixels replaced by the median colour around them."""
    out = np.array(hdr, dtype=np.float32, copy=True)
    out[sun.mask] = np.asarray(sun.fill, dtype=np.float32)
    return out


def extract_sun(hdr: np.ndarray, **kw) -> tuple[np.ndarray, Sun | None]:
    """``(hdr without its dominant light, Sun)``, or ``(hdr, None)`` if no light stands out (see :func:`find_sun`)."""
    sun = find_sun(hdr, **kw)
    if sun is None:
        return hdr, None
    return remove_sun(hdr, sun), sun
