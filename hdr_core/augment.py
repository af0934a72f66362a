"""Panorama data augmentation for training (method.md §3, stage 2 on full panoramas).

Geometric augmentations that keep an equirectangular panorama valid (azimuth rotation = exact circular column
shift, horizontal mirror) and photometric ones on linear HDR (exposure in stops, white balance). Every function
accepts a numpy ``H x W x C`` array or a torch ``... x C x H x W`` tensor and returns a new one (the input is never
modified); randomness comes only from the ``numpy.random.Generator`` passed in, so a seed fixes the result.
"""

from __future__ import annotations

import numpy as np

from hdr_core.color import LUMA_709

__all__ = ["rotate_azimuth", "flip_horizontal", "jitter_exposure", "jitter_white_balance", "random_pano_augment",
           "draw_pano_augment", "apply_pano_augment"]


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
