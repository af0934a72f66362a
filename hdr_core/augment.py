"""Panorama data augmentation for training (method.md §3, stage 2 on full panoramas).

Geometric augmentations that keep an equirectangular panorama valid (azimuth rotation = exact circular column
shift, horizontal mirror), photometric ones on linear HDR (exposure in stops, white balance), and an inserted light
(:func:`insert_light`: a sun or lamp of a drawn share of the panorama's light, beyond the paper). Every function
accepts a numpy ``H x W x C`` array or a torch ``... x C x H x W`` tensor (:func:`insert_light`: one ``3 x H x W``
panorama) and returns a new one (the input is never modified); randomness comes only from the
``numpy.random.Generator`` passed in, so a seed fixes the result.
"""

from __future__ import annotations

import functools

import numpy as np

from hdr_core.color import LUMA_709, luminance

__all__ = ["rotate_azimuth", "flip_horizontal", "jitter_exposure", "jitter_white_balance", "random_pano_augment",
           "draw_pano_augment", "apply_pano_augment", "draw_inserted_light", "insert_light", "light_profile"]


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray)


def _width(x) -> int:
    return x.shape[1] if _is_numpy(x) else x.shape[-1]


def _scale_channels(x, gains: np.ndarray):
    """Multiply channel ``c`` by ``gains[c]`` (numpy: last axis; torch: dim -3). Keeps the dtype."""
    if _is_numpy(x):
        return x * gains.astype(x.dtype) if np.issubdtype(x.dtype, np.floating) else x * gains
    import torch

    g = torch.as_tensor(gains, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    return x * g


def rotate_azimuth(pano, shift_px: int = 0, *, fraction: float | None = None):
    """Rotate a panorama about the vertical axis by an exact circular shift of its columns.

    A positive shift moves the content towards larger columns, i.e. adds ``shift_px * 360 / W`` degrees to its
    azimuth ``phi`` (see :mod:`hdr_core.projections`). ``rotate_azimuth(rotate_azimuth(p, k), -k)`` is ``p``.

    Args:
        pano: ``H x W x C`` array or ``... x C x H x W`` tensor.
        shift_px: Shift in pixels (ignored when ``fraction`` is given).
        fraction: Shift as a fraction of a full turn, rounded to the nearest whole pixel.

    Returns:
        The rotated panorama (a new array/tensor).
    """
    width = _width(pano)
    if fraction is not None:
        shift_px = int(round(fraction * width))
    shift_px = int(shift_px) % width
    if _is_numpy(pano):
        return np.roll(pano, shift_px, axis=1)
    import torch

    return torch.roll(pano, shift_px, dims=-1)


def flip_horizontal(pano):
    """Mirror a panorama left-right (azimuth ``phi -> 2 pi - phi``); applying it twice gives the input back.

    Args:
        pano: ``H x W x C`` array or ``... x C x H x W`` tensor.

    Returns:
        The mirrored panorama (a new, contiguous array/tensor).
    """
    if _is_numpy(pano):
        return np.ascontiguousarray(pano[:, ::-1])
    return pano.flip(-1)


def jitter_exposure(hdr, rng: np.random.Generator, stops: tuple[float, float] = (-1.0, 1.0)):
    """Scale linear HDR by ``2 ** U(stops)``: one random exposure change for the whole image (or batch).

    Args:
        hdr: Linear HDR, ``H x W x C`` array or ``... x C x H x W`` tensor.
        rng: Random generator.
        stops: Range of the exposure change in stops (EV).

    Returns:
        The scaled image, same dtype.
    """
    return _expose(hdr, _draw_exposure(rng, stops))


def jitter_white_balance(hdr, rng: np.random.Generator, max_ratio: float = 1.1):
    """Random per-channel gains (white-balance shift) that leave the luminance of grey pixels unchanged.

    Each RGB gain is ``exp(U(-log max_ratio, log max_ratio))``, then all three are divided by their Rec. 709
    luminance-weighted mean, so ``sum_c LUMA_709[c] * gain[c] = 1``.

    Args:
        hdr: Linear RGB, ``H x W x 3`` array or ``... x 3 x H x W`` tensor.
        rng: Random generator.
        max_ratio: Largest gain of one channel relative to 1 before normalisation (``>= 1``).

    Returns:
        The re-balanced image, same dtype.
    """
    return _scale_channels(hdr, _draw_wb_gains(rng, max_ratio))


def _draw_exposure(rng: np.random.Generator, stops: tuple[float, float]) -> float:
    return 2.0 ** rng.uniform(*stops)


def _expose(hdr, scale: float):
    return _scale_channels(hdr, np.full(hdr.shape[-1] if _is_numpy(hdr) else hdr.shape[-3], scale))


def _draw_wb_gains(rng: np.random.Generator, max_ratio: float) -> np.ndarray:
    log_r = np.log(max_ratio)
    gains = np.exp(rng.uniform(-log_r, log_r, size=3))
    return gains / np.dot(LUMA_709, gains)


def draw_pano_augment(rng: np.random.Generator, width: int, *, flip_p: float = 0.5,
                      stops: tuple[float, float] = (-1.0, 1.0), wb_max_ratio: float = 1.1) -> dict:
    """The random numbers of :func:`random_pano_augment`, drawn in its order (the generator is consumed the same).

    Returns:
        ``shift`` (columns of the azimuth rotation), ``flip`` (mirror or not), ``scale`` (the exposure factor
        ``2 ** U(stops)``), ``wb`` (the 3 white-balance gains, as :func:`jitter_white_balance` makes them).
    """
    shift = int(rng.integers(width))
    flip = bool(rng.random() < flip_p)
    scale = _draw_exposure(rng, stops)
    return {"shift": shift, "flip": flip, "scale": scale, "wb": _draw_wb_gains(rng, wb_max_ratio)}


def apply_pano_augment(hdr, draws: dict):
    """:func:`random_pano_augment` with the numbers of :func:`draw_pano_augment` (a new array/tensor)."""
    out = rotate_azimuth(hdr, draws["shift"])
    if draws["flip"]:
        out = flip_horizontal(out)
    return _scale_channels(_expose(out, draws["scale"]), np.asarray(draws["wb"]))


def random_pano_augment(hdr, rng: np.random.Generator, *, flip_p: float = 0.5,
                        stops: tuple[float, float] = (-1.0, 1.0), wb_max_ratio: float = 1.1):
    """Random azimuth rotation (uniform whole-pixel shift), mirror with probability ``flip_p``, exposure, white balance.

    Args:
        hdr: Linear HDR panorama, ``H x W x 3`` array or ``... x 3 x H x W`` tensor.
        rng: Random generator (consumed in a fixed order: shift, flip, exposure, white balance;
            :func:`draw_pano_augment` draws the same numbers without an image).
        flip_p: Probability of :func:`flip_horizontal`.
        stops: Exposure range for :func:`jitter_exposure`.
        wb_max_ratio: ``max_ratio`` of :func:`jitter_white_balance`.

    Returns:
        The augmented panorama (a new array/tensor).
    """
    return apply_pano_augment(hdr, draw_pano_augment(rng, _width(hdr), flip_p=flip_p, stops=stops,
                                                     wb_max_ratio=wb_max_ratio))


#: Ranges :func:`draw_inserted_light` draws from: the core's angular radius (Gaussian sigma, degrees; log-uniform),
#: the aureole's e-folding angle (degrees; log-uniform), the aureole's share of the light (uniform), the sine of the
#: elevation (uniform: directions uniform over the sky from the horizon to 72 degrees) and how warm the colour is
#: (0 = white, 1 = (1, 0.85, 0.6) before normalising to luminance 1: a low sun or a tungsten lamp).
INSERTED_LIGHT_RANGES = {"core_deg": (0.25, 2.0), "aureole_deg": (2.0, 8.0), "aureole_frac": (0.05, 0.35),
                         "sin_elevation": (0.0, 0.95), "warmth": (0.0, 1.0)}


def draw_inserted_light(rng: np.random.Generator, share: tuple[float, float]) -> dict:
    """The random numbers of one inserted light (:func:`insert_light`), in a fixed order.

    Args:
        rng: Random generator.
        share: ``(lo, hi)``: the light's share of the panorama's light after insertion is ``U(lo, hi)``
            (``0 <= lo <= hi < 1``).

    Returns:
        ``azimuth`` and ``elevation`` (degrees, :mod:`hdr_core.projections`' conventions), ``core_deg``,
        ``aureole_deg``, ``aureole_frac`` (:func:`light_profile`), ``share``, and ``colour`` (3 gains with Rec. 709
        luminance 1).
    """
    r = INSERTED_LIGHT_RANGES
    loguni = lambda lo, hi: float(np.exp(rng.uniform(np.log(lo), np.log(hi))))  # noqa: E731
    azimuth = float(rng.uniform(0.0, 360.0))
    elevation = float(np.degrees(np.arcsin(rng.uniform(*r["sin_elevation"]))))
    core, aureole = loguni(*r["core_deg"]), loguni(*r["aureole_deg"])
    frac = float(rng.uniform(*r["aureole_frac"]))
    s = float(rng.uniform(*share))
    warmth = float(rng.uniform(*r["warmth"]))
    colour = np.array([1.0, 1.0 - 0.15 * warmth, 1.0 - 0.4 * warmth])
    colour = colour / np.dot(LUMA_709, colour)
    return {"azimuth": azimuth, "elevation": elevation, "core_deg": core, "aureole_deg": aureole,
            "aureole_frac": frac, "share": s, "colour": [float(c) for c in colour]}


@functools.lru_cache(maxsize=8)
def _directions(height: int, device):
    """:func:`hdr_core.lighting.pano_directions` in float64 on ``device``, kept per size and device (the inserted
    lights of a run are all made at one size)."""
    from hdr_core.lighting import pano_directions

    return pano_directions(height, device=device)


def light_profile(height: int, light: dict, dtype=None, device=None):
    """Radiance (``h x 2h`` torch tensor) of one light of unit energy (``sum L dw = 1`` over the panorama's pixels,
    :func:`hdr_core.lighting.pano_directions`) centred at ``light["azimuth"]``, ``light["elevation"]``.

    Its shape is a Gaussian core of angular sigma ``core_deg`` (widened to at least half a pixel, in quadrature, so a
    core smaller than a pixel keeps its energy and its place at any size) holding ``1 - aureole_frac`` of the
    energy, and an exponential aureole ``exp(-angle / aureole_deg)`` (at least a pixel wide) holding ``aureole_frac``:
    a clipped disc with a glow around it once a camera sees it, as a sun or a lamp is. Each part is normalised on the
    pixel grid, so the energy is exact at every size."""
    import torch

    d, omega = _directions(height, torch.device(device) if device is not None else torch.device("cpu"))
    az, el = np.radians(float(light["azimuth"])), np.radians(float(light["elevation"]))
    u = torch.tensor([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], dtype=d.dtype, device=d.device)
    angle = torch.rad2deg(torch.arccos((d @ u).clamp(-1.0, 1.0)))
    pitch = 180.0 / height
    sigma = float(np.hypot(float(light["core_deg"]), 0.5 * pitch))
    core = torch.exp(-0.5 * (angle / sigma) ** 2)
    aureole = torch.exp(-angle / max(float(light["aureole_deg"]), pitch))
    frac = float(light["aureole_frac"])
    radiance = (1.0 - frac) * core / (core * omega).sum() + frac * aureole / (aureole * omega).sum()
    return radiance.to(dtype=dtype or torch.float32, device=device)


def insert_light(pano, light: dict):
    """Add one light (:func:`light_profile`, colour ``light["colour"]``) to a linear HDR panorama, holding
    ``light["share"]`` of the result's light ``sum L dw`` (Rec. 709 luminance): its energy is
    ``share / (1 - share)`` times the panorama's own. A black panorama is returned unchanged.

    Args:
        pano: ``H x 2H x 3`` float array or ``3 x H x 2H`` tensor (one panorama, any device; computed in float64,
            returned in the input's dtype).
        light: From :func:`draw_inserted_light`.

    Returns:
        A new array/tensor.
    """
    import torch

    numpy_in = _is_numpy(pano)
    shape = tuple(pano.shape)
    if numpy_in:
        shape = shape[-1:] + shape[:-1] if len(shape) == 3 else shape
    if len(shape) != 3 or shape[0] != 3 or shape[2] != 2 * shape[1]:
        raise ValueError(f"insert_light: expected an H x 2H RGB panorama, got shape {tuple(pano.shape)}")
    t = torch.from_numpy(np.ascontiguousarray(pano.transpose(2, 0, 1))) if numpy_in else pano
    h = t.shape[1]
    x = t.double()
    _, omega = _directions(h, x.device)
    energy = (luminance(x.clamp_min(0), channel_axis=0) * omega).sum()  # a tensor: no device sync on a GPU
    s = float(light["share"])
    gains = torch.tensor(light["colour"], dtype=x.dtype, device=x.device).view(3, 1, 1)
    # a black (or non-finite) panorama has no light to take a share of: nothing is added
    scale = torch.where(torch.isfinite(energy) & (energy > 0), energy * (s / (1.0 - s)), torch.zeros_like(energy))
    out = x + scale * gains * light_profile(h, light, x.dtype, x.device)[None]
    out = out.to(t.dtype)
    return np.ascontiguousarray(out.numpy().transpose(1, 2, 0)) if numpy_in else out
